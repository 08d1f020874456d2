import { ServiceError, SluiceError } from '../errors';
import type { ConsumedRecord } from '../kafka';
import { parseAvroType } from '../schema/avro';
import { RegistryError, type RegistryClient } from '../schema/client';
import { SchemaCodec } from '../schema/codec';
import { defineStream } from './definition';
import type { DedupClaim, Deduplicator } from './ports';
import { MAX_KEPT_RELEASES, MAX_KEPT_UNKNOWN_SCHEMAS, StreamTask } from './task';
import { StreamWindows } from './windows';
import { count, defineWindows, tumbling, ungrouped } from '../window';
import {
  MemorySnapshotStore,
  offsetOfSnapshot,
  REDIS_LOSS_WINDOW_MS,
  releasesOf,
  snapshotId,
  snapshotsOf,
  stateMetadata,
  unknownSchemasOf,
  type PartitionSnapshot,
  type UnknownSchema,
} from '../state';

interface Ev {
  id: string;
  n: number;
}

const definition = defineStream<Ev>({
  name: 'task-test',
  source: { topic: 'in', schema: 'unused' },
  validate: (v) =>
    typeof v.id === 'string' && typeof v.n === 'number'
      ? { ok: true, event: { id: v.id, n: v.n } }
      : { ok: false, errors: ['id and n are required'] },
  eventTime: (e) => e.n,
  dedup: { id: (e) => e.id, ttlSeconds: 60, onUnavailable: 'pause' },
  raw: { table: 'raw', toRow: (e, meta) => ({ id: e.id, offset: meta.offset }) },
  tables: [],
});

/** A commit of partition 0 of `in` in its first incarnation, without windows (no snapshot, releases or unknown schemas). */
const plainCommit = (offset: string) => ({
  topic: 'in',
  partition: 0,
  offset,
  incarnation: 1,
  snapshot: undefined,
  releases: [],
  unknownSchemas: [],
  closedAtEnd: false,
});

/** Decodes JSON; bytes starting with '!' stand for a registry outage. */
const decoder = {
  async decode(value: Buffer) {
    if (value[0] === 0x21) throw new ServiceError('registry', 'registry down', { retriable: true });
    return JSON.parse(value.toString()) as Record<string, unknown>;
  },
};

/** First claim of an id wins; the same record claiming again is let through (its own mark). */
class FakeDedup implements Deduplicator {
  owners = new Map<string, string>();
  down = false;
  async claim(records: DedupClaim[]): Promise<boolean[]> {
    if (this.down) throw new ServiceError('redis', 'redis down', { retriable: true });
    return records.map((r) => {
      const me = `${r.topic}/${r.partition}/${r.offset}`;
      const owner = this.owners.get(r.id);
      if (owner === undefined) this.owners.set(r.id, me);
      return owner === undefined || owner === me;
    });
  }
}

const record = (offset: number, value: string | null): ConsumedRecord => ({
  topic: 'in',
  partition: 0,
  offset: String(offset),
  timestamp: '0',
  key: null,
  value: value === null ? null : Buffer.from(value),
  headers: { h: 'x' },
});

describe('StreamTask', () => {
  let dedup: FakeDedup;
  let task: StreamTask<Ev>;
  beforeEach(() => {
    dedup = new FakeDedup();
    task = new StreamTask(definition, { decoder, dedup, now: () => 0 }, undefined);
    task.assign('in', 0, '10', undefined);
  });

  it('sends undecodable, invalid and tombstone records to dead letters with their original bytes, and keeps going', async () => {
    await task.processBatch('in', 0, [
      record(10, '{"id":"a","n":1}'),
      record(11, 'not json'),
      record(12, '{"id":"b"}'),
      record(13, null),
      record(14, '{"id":"c","n":2}'),
    ]);
    const cp = task.takeCheckpoint();
    expect(cp.rows.get('raw')!.rows).toEqual([
      { id: 'a', offset: '10' },
      { id: 'c', offset: '14' },
    ]);
    expect(cp.deadLetters.map((d) => [d.source.offset, d.errorClass, d.source.value?.toString() ?? null])).toEqual([
      ['11', 'VALUE_UNDECODABLE', 'not json'],
      ['12', 'EVENT_INVALID', '{"id":"b"}'],
      ['13', 'VALUE_MISSING', null],
    ]);
    expect(cp.offsets).toEqual([plainCommit('15')]);
  });

  it('drops duplicates but lets a redelivered record that owns its mark through again', async () => {
    await task.processBatch('in', 0, [record(10, '{"id":"a","n":1}'), record(11, '{"id":"a","n":1}')]);
    expect(task.takeCheckpoint().rows.get('raw')!.rows).toEqual([{ id: 'a', offset: '10' }]);
    // The process "crashed" before the sink: a new task starts again at offset 10.
    const again = new StreamTask(definition, { decoder, dedup, now: () => 0 }, undefined);
    again.assign('in', 0, '10', undefined);
    await again.processBatch('in', 0, [record(10, '{"id":"a","n":1}'), record(11, '{"id":"a","n":1}')]);
    expect(again.takeCheckpoint().rows.get('raw')!.rows).toEqual([{ id: 'a', offset: '10' }]);
    expect(again.counters.deduplicated).toBe(1);
  });

  it('changes nothing when a dependency is down, and processes the same records once it is back', async () => {
    dedup.down = true;
    await expect(task.processBatch('in', 0, [record(10, '{"id":"a","n":1}')])).rejects.toThrow('redis down');
    await expect(task.processBatch('in', 0, [record(10, '!')])).rejects.toThrow('registry down');
    expect(task.idle()).toBe(true);
    expect(task.nextOffset('in', 0)).toBe('10');
    dedup.down = false;
    await task.processBatch('in', 0, [record(10, '{"id":"a","n":1}')]);
    expect(task.takeCheckpoint().offsets).toEqual([plainCommit('11')]);
  });

  it('ignores records it already processed when a paused partition is fetched again', async () => {
    await task.processBatch('in', 0, [record(10, '{"id":"a","n":1}'), record(11, '{"id":"b","n":1}')]);
    await task.processBatch('in', 0, [record(11, '{"id":"b","n":1}'), record(12, '{"id":"c","n":1}')]);
    expect(
      task
        .takeCheckpoint()
        .rows.get('raw')!
        .rows.map((r) => r.id),
    ).toEqual(['a', 'b', 'c']);
  });

  it('hands over rows without committing, and side records and offsets with the next commit', async () => {
    await task.processBatch('in', 0, [record(10, '{"id":"a","n":1}'), record(11, 'bad')]);
    const flush = task.takeCheckpoint(false);
    expect(flush.rows.get('raw')).toMatchObject({
      rows: [{ id: 'a', offset: '10' }],
      positions: [{ topic: 'in', partition: 0, fromOffset: '10', toOffset: '12' }],
    });
    // Dead letters go in the same transaction as the offsets they cover: not before the commit.
    expect([flush.deadLetters, flush.offsets, flush.snapshots]).toEqual([[], [], []]);
    expect([task.idle(false), task.idle(true)]).toEqual([true, false]);

    await task.processBatch('in', 0, [record(12, '{"id":"b","n":1}')]);
    const commit = task.takeCheckpoint(true);
    // Rows start where the flush left off; the offset and the dead letters cover everything processed.
    expect(commit.rows.get('raw')).toMatchObject({
      rows: [{ id: 'b', offset: '12' }],
      positions: [{ topic: 'in', partition: 0, fromOffset: '12', toOffset: '13' }],
    });
    expect(commit.deadLetters.map((d) => d.source.offset)).toEqual(['11']);
    expect(commit.offsets).toEqual([plainCommit('13')]);
    expect([task.idle(false), task.idle(true)]).toEqual([true, true]);
  });

  it('commits a kept partition again when a rebalance fenced its commit, even with no new records', async () => {
    await task.processBatch('in', 0, [record(10, '{"id":"a","n":1}')]);
    expect(task.takeCheckpoint(true).offsets).toEqual([plainCommit('11')]);
    expect(task.idle()).toBe(true);
    task.commitLost('in', 0);
    expect(task.idle()).toBe(false);
    expect(task.takeCheckpoint(true).offsets).toEqual([plainCommit('11')]);
  });

  it('discards the uncommitted work of a revoked partition', async () => {
    await task.processBatch('in', 0, [record(10, '{"id":"a","n":1}')]);
    task.revoke('in', 0);
    const cp = task.takeCheckpoint();
    expect(cp.rows.size).toBe(0);
    expect(cp.offsets).toEqual([]);
  });
});

/** A committing checkpoint, its snapshots saved and its commit acknowledged, as the runner does it. */
async function commit(task: StreamTask<Ev>, store: MemorySnapshotStore) {
  const cp = task.takeCheckpoint(true);
  await store.save(cp.snapshots);
  for (const o of cp.offsets) task.committed(o.topic, o.partition, o.offset, o.snapshot);
  return cp;
}

/** A stream counting events per 1-minute tumbling window into table `w`, closing at the watermark. */
function minuteCounts(name: string, idleTimeoutMs: number) {
  return defineStream<Ev>({
    ...definition,
    name,
    windowed: {
      definition: defineWindows({
        assigner: tumbling(60_000),
        groupBy: ungrouped(),
        aggregate: { events: count<Ev>() },
        allowedLatenessMs: 0,
      }),
      outOfOrdernessMs: 0,
      idleTimeoutMs,
      table: 'w',
      toRow: (w) => ({ start: w.windowStart, events: w.aggregates.events }),
    },
  });
}

describe('StreamTask with an event-time range (a replay of a range)', () => {
  const MIN = 60_000;
  const windowed = minuteCounts('task-range-test', 10_000);
  // Record timestamps far ahead: the record-time bound on the watermark plays no part here.
  const at = (offset: number, id: string, t: number): ConsumedRecord => ({
    ...record(offset, JSON.stringify({ id, n: t })),
    timestamp: String(100 * MIN),
  });
  // The partition as a backfill leaves it: newer events (minute 50), the old range's (minutes 1-2), newer again.
  const backfilled = [
    at(0, 'new-1', 50 * MIN),
    at(1, 'old-1', 1 * MIN + 5),
    at(2, 'old-2', 1 * MIN + 10),
    at(3, 'old-3', 2 * MIN + 1),
    at(4, 'new-2', 51 * MIN),
    at(5, 'old-4', 2 * MIN + 2),
  ];
  const run = async (range?: { from: number | null; to: number | null }) => {
    const task = new StreamTask(
      windowed,
      { decoder, dedup: new FakeDedup(), now: () => 0 },
      new StreamWindows(windowed.windowed!, 'in'),
      { eventTimeRange: range },
    );
    task.assign('in', 0, '0', undefined);
    await task.processBatch('in', 0, backfilled);
    task.closeAllWindows();
    const cp = task.takeCheckpoint();
    return { task, windows: cp.rows.get('w')?.rows ?? [], raw: cp.rows.get('raw')?.rows ?? [] };
  };

  it('without a range (a live run) the old events are late behind the newer ones', async () => {
    const { task, windows } = await run();
    expect(task.counters.late).toBe(4);
    expect(windows).toEqual([
      { start: 50 * MIN, events: 1 },
      { start: 51 * MIN, events: 1 },
    ]);
  });

  it('windows the range from its own events: the others neither count nor move the watermark', async () => {
    const { task, windows, raw } = await run({ from: 0, to: 10 * MIN });
    expect(task.counters).toMatchObject({ recordsIn: 6, outsideRange: 2, decoded: 4, late: 0 });
    expect(windows).toEqual([
      { start: 1 * MIN, events: 2 },
      { start: 2 * MIN, events: 2 },
    ]);
    expect(raw.map((r) => r.id)).toEqual(['old-1', 'old-2', 'old-3', 'old-4']);
    // The watermark is the range's own: minute 2, not minute 51.
    expect(task.eventTime().watermark).toBe(2 * MIN + 2);
  });

  it('an event outside the range is no part of the run, not even as a duplicate', async () => {
    const { task } = await run({ from: 50 * MIN, to: null });
    expect(task.counters).toMatchObject({ outsideRange: 4, decoded: 2, deduplicated: 0, late: 0, deadLettered: 0 });
  });

  it('an event outside the range claims its id: a copy of it inside the range is a duplicate, as it was live', async () => {
    // A retry that re-stamped its event time: first copy before the range, second inside it.
    const records = [at(0, 'retried', 0 * MIN + 40_000), at(1, 'retried', 1 * MIN + 15_000), at(2, 'other', 1 * MIN)];
    const dedup = new FakeDedup();
    const task = new StreamTask(
      windowed,
      { decoder, dedup, now: () => 0 },
      new StreamWindows(windowed.windowed!, 'in'),
      { eventTimeRange: { from: MIN, to: 10 * MIN } },
    );
    task.assign('in', 0, '0', undefined);
    await task.processBatch('in', 0, records);
    task.closeAllWindows();
    const cp = task.takeCheckpoint();
    expect(cp.rows.get('raw')!.rows.map((r) => r.id)).toEqual(['other']);
    expect(cp.rows.get('w')!.rows).toEqual([{ start: MIN, events: 1 }]);
    // The claim outside the range is counted nowhere; its copy inside the range is the duplicate.
    expect(task.counters).toMatchObject({ outsideRange: 1, decoded: 2, deduplicated: 1 });
    expect(dedup.owners.get('retried')).toBe('in/0/0');
  });
});

describe('StreamTask restored from an older snapshot (Redis lost the newest)', () => {
  const MIN = 60_000;
  const windowed = minuteCounts('task-fallback-test', 10 * MIN);
  const at = (offset: number, id: string, t: number): ConsumedRecord => ({
    ...record(offset, JSON.stringify({ id, n: t })),
    timestamp: String(100 * MIN),
  });
  // 2 is a dead letter, 3 closes minute 1, 4 is late for it.
  const log = [
    at(0, 'a', MIN + 1),
    at(1, 'b', MIN + 2),
    { ...record(2, 'bad'), timestamp: String(100 * MIN) },
    at(3, 'c', 2 * MIN + 1),
    at(4, 'd', MIN + 3),
    at(5, 'e', 2 * MIN + 2),
  ];
  const ref = { topic: 'in', partition: 0 };
  const taskOn = (dedup: FakeDedup) =>
    new StreamTask(windowed, { decoder, dedup, now: () => 0 }, new StreamWindows(windowed.windowed!, 'in'));

  it('commits forward of a re-read, naming the new snapshot: after a crash no side record is published twice', async () => {
    const store = new MemorySnapshotStore();
    const dedup = new FakeDedup();
    const empty: PartitionSnapshot = { id: '0.0.e', offset: '0', savedAt: 0, watermark: null, windows: undefined };
    await store.save([{ ref, snapshot: empty }]);
    // The live member: commits at 2 (snapshot s2), then at 5 (s5, with 2's dead letter and 4's late event).
    const live = taskOn(dedup);
    live.assign('in', 0, '0', { snapshot: empty });
    await live.processBatch('in', 0, log.slice(0, 2));
    const s2 = (await commit(live, store)).offsets[0]!.snapshot!;
    await live.processBatch('in', 0, log.slice(2, 5));
    const first = await commit(live, store);
    expect([first.offsets[0]!.offset, first.deadLetters.length, first.late.length]).toEqual(['5', 1, 1]);
    const s5 = first.offsets[0]!.snapshot!;
    // Redis loses s5: the next owner restores s2 under the commit at 5 and reads 2 and 3 again.
    store.lose(ref, s5);
    const again = taskOn(dedup);
    const loaded = await store.load(ref, [s5, s2]);
    expect(loaded?.id).toBe(s2);
    expect(again.assign('in', 0, '5', { snapshot: loaded! })).toBe('2');
    await again.processBatch('in', 0, log.slice(2, 4));
    const mid = await commit(again, store);
    // Kafka's offset stays at 5 (committing 4 would move it back); the commit names the snapshot taken at 4.
    expect(mid.offsets).toHaveLength(1);
    expect(mid.offsets[0]!.offset).toBe('5');
    const s4 = mid.offsets[0]!.snapshot!;
    expect(offsetOfSnapshot(s4)).toBe('4');
    expect([mid.deadLetters, mid.late]).toEqual([[], []]);
    expect(again.committedSnapshots('in', 0)).toEqual([s4, s2]);
    expect(again.idle(true)).toBe(true);
    // A crash right then: the next owner restores s4 under the commit at 5, reads 4 again without
    // publishing its late event, and goes on from 5 with the windows as they were at 4.
    const last = taskOn(dedup);
    const named = await store.load(ref, [s4, s2]);
    expect(named?.id).toBe(s4);
    expect(last.assign('in', 0, '5', { snapshot: named! })).toBe('4');
    await last.processBatch('in', 0, log.slice(4));
    last.closeAllWindows();
    const end = last.takeCheckpoint(true);
    expect(end.offsets[0]!.offset).toBe('6');
    expect([end.deadLetters, end.late]).toEqual([[], []]);
    expect(end.rows.get('w')?.rows).toEqual([{ start: 2 * MIN, events: 2 }]);
    expect(last.counters).toMatchObject({ late: 1, deadLettered: 0 });
  });

  it('names as fallback the newest snapshot committed a Redis loss window before, however often it commits', async () => {
    const store = new MemorySnapshotStore();
    let now = 0;
    const task = new StreamTask(
      windowed,
      { decoder, dedup: new FakeDedup(), now: () => now },
      new StreamWindows(windowed.windowed!, 'in'),
    );
    task.assign('in', 0, '0');
    const ids: string[] = [];
    const W = REDIS_LOSS_WINDOW_MS;
    for (let i = 0; i < 5; i++) {
      now = i * 0.4 * W; // commits 0.4 of a loss window apart
      await task.processBatch('in', 0, log.slice(i, i + 1));
      ids.push((await commit(task, store)).offsets[0]!.snapshot!);
    }
    now = 1.7 * W;
    await task.processBatch('in', 0, log.slice(5));
    const restorePoint = task.takeCheckpoint(true).offsets[0]!.snapshot!;
    // Committed at 0, 0.4, 0.8, 1.2 and 1.6 windows: at 1.7 the newest committed at least a window before is the
    // one of 0.4 (the one of 1.6, "the one before", is as likely as the new one to be lost in a crash now).
    expect(task.fallbackSnapshot('in', 0, restorePoint)).toBe(ids[1]);
    // The older ones are not kept once a settled one is: the list stops at it.
    expect(task.committedSnapshots('in', 0)).toEqual([ids[4], ids[3], ids[2], ids[1]]);
    // Nothing settled yet (a partition just restored, commits in quick succession): the oldest kept.
    const fresh = new StreamTask(
      windowed,
      { decoder, dedup: new FakeDedup(), now: () => now },
      new StreamWindows(windowed.windowed!, 'in'),
    );
    fresh.assign('in', 0, '0');
    await fresh.processBatch('in', 0, log.slice(0, 1));
    const a = (await commit(fresh, store)).offsets[0]!.snapshot!;
    now += 100;
    await fresh.processBatch('in', 0, log.slice(1, 2));
    const b = (await commit(fresh, store)).offsets[0]!.snapshot!;
    now += 100;
    expect(fresh.fallbackSnapshot('in', 0, 'new')).toBe(a);
    expect(fresh.fallbackSnapshot('in', 0, b)).toBe(a);
  });
});

describe('StreamTask timing its commits', () => {
  it('times commits on the monotonic clock: a wall clock stepped forward does not make a young snapshot the fallback', async () => {
    const windowed = minuteCounts('task-elapsed-test', 60_000);
    const store = new MemorySnapshotStore();
    const clocks = { wall: 0, elapsed: 0 };
    const task = new StreamTask(
      windowed,
      { decoder, dedup: new FakeDedup(), now: () => clocks.wall, elapsed: () => clocks.elapsed },
      new StreamWindows(windowed.windowed!, 'in'),
    );
    task.assign('in', 0, '0', {
      snapshot: { id: '0.0.a', offset: '0', savedAt: 0, watermark: null, windows: undefined },
    });
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      await task.processBatch('in', 0, [{ ...record(i, JSON.stringify({ id: `e${i}`, n: i })), timestamp: '1' }]);
      ids.push((await commit(task, store)).offsets[0]!.snapshot!);
      clocks.elapsed += 100;
      clocks.wall += i === 0 ? 3_600_000 : 100; // NTP steps the wall clock an hour forward after the first commit
    }
    // 200 ms after the first commit: nothing but the snapshot of the assignment is settled.
    expect(task.fallbackSnapshot('in', 0, 'new')).toBe('0.0.a');
  });
});

describe('StreamTask idle releases (windows closed at the stream watermark while a partition was idle)', () => {
  const MIN = 60_000;
  const IDLE = 1000;
  const windowed = minuteCounts('task-release-test', IDLE);
  const on = (partition: number, offset: number, id: string, t: number): ConsumedRecord => ({
    ...record(offset, JSON.stringify({ id, n: t })),
    partition,
    timestamp: String(100 * MIN),
  });
  const ref = { topic: 'in', partition: 1 };
  const setup = () => {
    const clock = { now: 0 };
    const task = new StreamTask(
      windowed,
      { decoder, dedup: new FakeDedup(), now: () => clock.now },
      new StreamWindows(windowed.windowed!, 'in'),
    );
    return { clock, task };
  };

  it('records the release with its offset, and a restore from a snapshot before it applies it there: the late event stays late', async () => {
    const store = new MemorySnapshotStore();
    const { clock, task } = setup();
    task.assign('in', 0, '0');
    task.assign('in', 1, '0');
    // Partition 1 counts one event in minute 1 and commits (snapshot s1, at offset 1).
    await task.processBatch('in', 1, [on(1, 0, 'a', MIN + 1)]);
    const s1 = (await commit(task, store)).offsets.find((o) => o.partition === 1)!.snapshot!;
    // Partition 1 goes quiet; partition 0 moves to minute 3. Partition 1 is idle: its minute 1 closes at 3:00.
    clock.now = 5 * IDLE;
    await task.processBatch('in', 0, [on(0, 0, 'x', 3 * MIN)]);
    // Its next event, of minute 1, is late; the commit carries it with the release.
    await task.processBatch('in', 1, [on(1, 1, 'b', MIN + 2)]);
    const live = await commit(task, store);
    const p1 = live.offsets.find((o) => o.partition === 1)!;
    expect(p1.releases).toEqual([{ offset: '1', watermark: 3 * MIN }]);
    expect(live.late.map((l) => l.source.offset)).toEqual(['1']);
    expect(live.rows.get('w')!.rows).toEqual([{ start: MIN, events: 1 }]);

    // Redis lost the newest snapshot: a new owner restores s1, and reads offset 1 again.
    const restoreFrom = async (releases: { offset: string; watermark: number }[]) => {
      const again = setup();
      const snapshot = (await store.load(ref, [s1]))!;
      expect(again.task.assign('in', 1, '2', { snapshot, releases })).toBe('1');
      // Re-reading, partition 1 is never released live (here it would be, at partition 0's 10:00).
      again.task.assign('in', 0, '0');
      await again.task.processBatch('in', 0, [on(0, 0, 'y', 10 * MIN)]);
      again.clock.now = 5 * IDLE;
      again.task.closeWindows();
      await again.task.processBatch('in', 1, [on(1, 1, 'b', MIN + 2)]);
      again.task.closeAllWindows();
      const cp = again.task.takeCheckpoint(true);
      const minute1 = cp.rows.get('w')!.rows.filter((r) => r.start === MIN);
      return { late: again.task.counters.late, published: cp.late.length, minute1 };
    };
    // With the release the commit recorded, the re-read judges the event late as the live stream did (its late
    // event was published then, not again): minute 1 counts one event.
    expect(await restoreFrom(p1.releases)).toEqual({
      late: 1,
      published: 0,
      minute1: [{ start: MIN, events: 1 }],
    });
    // Without it, the same re-read counts it in minute 1 too: the double count the record prevents.
    expect((await restoreFrom([])).minute1).toEqual([{ start: MIN, events: 2 }]);
  });

  it('records a release at a watermark JavaScript prints in exponent form, and it reads back from the commit metadata', async () => {
    const { clock, task } = setup();
    task.assign('in', 0, '0');
    task.assign('in', 1, '0');
    await task.processBatch('in', 1, [on(1, 0, 'a', MIN + 1)]);
    clock.now = 5 * IDLE;
    // A record without a usable timestamp does not bound its event time: partition 0's watermark goes to 2e21.
    await task.processBatch('in', 0, [{ ...on(0, 0, 'x', 2e21), timestamp: '0' }]);
    const p1 = task.takeCheckpoint(true).offsets.find((o) => o.partition === 1)!;
    expect(p1.releases).toEqual([{ offset: '1', watermark: 2e21 }]);
    expect(releasesOf(stateMetadata(0, [p1.snapshot ?? 's'], p1.releases), 0)).toEqual(p1.releases);
  });

  it(`keeps at most ${MAX_KEPT_RELEASES} releases for a commit: past that an idle partition waits for its own watermark, until commits settle`, async () => {
    const store = new MemorySnapshotStore();
    const { clock, task } = setup();
    task.assign('in', 0, '0', {
      snapshot: { id: '0.0.a', offset: '0', savedAt: 0, watermark: null, windows: undefined },
    });
    task.assign('in', 1, '0', {
      snapshot: { id: '0.0.b', offset: '0', savedAt: 0, watermark: null, windows: undefined },
    });
    const released: number[] = [];
    const minute1Of = (i: number) => 3 * i * MIN;
    for (let i = 0; i <= MAX_KEPT_RELEASES; i++) {
      // Partition 1 reads an event of its i-th minute, goes idle, and partition 0 moves on two minutes past it.
      await task.processBatch('in', 1, [on(1, i, `p1-${i}`, minute1Of(i) + 1)]);
      clock.now += 2 * IDLE;
      await task.processBatch('in', 0, [on(0, i, `p0-${i}`, minute1Of(i) + 2 * MIN)]);
      const rows = task.takeCheckpoint(false).rows.get('w')?.rows ?? [];
      if (rows.some((r) => r.start === minute1Of(i))) released.push(i);
    }
    // Nothing committed, so every release is kept: the last one waits.
    expect(released).toEqual([...Array(MAX_KEPT_RELEASES).keys()]);
    expect(task.counters.late).toBe(0);
    // The partition held back is due a commit, though idle: once two of its commits settle, the releases
    // before them go, and it is released.
    await commit(task, store);
    clock.now += 2 * REDIS_LOSS_WINDOW_MS;
    task.closeWindows();
    expect(task.idle(true)).toBe(false);
    await commit(task, store);
    clock.now += 2 * REDIS_LOSS_WINDOW_MS;
    task.closeWindows();
    const rows = task.takeCheckpoint(false).rows.get('w')?.rows ?? [];
    expect(rows).toEqual([{ start: minute1Of(MAX_KEPT_RELEASES), events: 1 }]);
  });
});

describe('StreamTask records of a schema the registry did not know when the live stream read them', () => {
  const MIN = 60_000;
  const windowed = minuteCounts('task-unknown-schema-test', 60_000);
  /** JSON values naming the schema they were "written with"; ids not in `registered` are unknown to the registry. */
  const registry = (registered: Set<number>) => ({
    async decode(value: Buffer) {
      const parsed = JSON.parse(value.toString()) as Record<string, unknown> & { schema: number };
      if (!registered.has(parsed.schema))
        throw new SluiceError('SCHEMA_UNKNOWN', `schema id ${parsed.schema} is not in the schema registry`);
      return parsed;
    },
    schemaOf: (value: Buffer) => (JSON.parse(value.toString()) as { schema: number }).schema,
  });
  const at = (offset: number, id: string, t: number, schema = 1): ConsumedRecord => ({
    ...record(offset, JSON.stringify({ id, n: t, schema })),
    timestamp: String(100 * MIN),
  });
  const ref = { topic: 'in', partition: 0 };
  const setup = (registered: Set<number>, clock = { elapsed: 0 }) =>
    new StreamTask(
      windowed,
      { decoder: registry(registered), dedup: new FakeDedup(), now: () => 0, elapsed: () => clock.elapsed },
      new StreamWindows(windowed.windowed!, 'in'),
    );
  // Offset 1 names schema 9, not registered when the live stream read it: a dead letter. Had it been
  // decoded, its event of minute 3 would have closed minute 1, and offset 2 (minute 1) would be late.
  const records = [at(0, 'a', MIN + 1), at(1, 'x', 3 * MIN, 9), at(2, 'b', MIN + 2)];
  /** The live member, having read and committed `a` (offset 0): the snapshot at 1 is its restore point. */
  async function committedAfterA(registered: Set<number>) {
    const store = new MemorySnapshotStore();
    const live = setup(registered);
    live.assign('in', 0, '0');
    await live.processBatch('in', 0, records.slice(0, 1));
    const s1 = (await commit(live, store)).offsets[0]!.snapshot!;
    return { store, live, s1 };
  }

  it('keeps the verdict for the commit, and a re-read after an older snapshot dead-letters the record again once the schema is registered', async () => {
    const registered = new Set([1]);
    const { store, live, s1 } = await committedAfterA(registered);
    await live.processBatch('in', 0, records.slice(1));
    const cp = await commit(live, store);
    const p0 = cp.offsets[0]!;
    expect(p0.unknownSchemas).toEqual([{ schemaId: 9, from: '1', through: '1' }]);
    expect(cp.deadLetters.map((d) => [d.source.offset, d.errorClass])).toEqual([['1', 'SCHEMA_UNKNOWN']]);
    expect(unknownSchemasOf(stateMetadata(0, [p0.snapshot!], [], p0.unknownSchemas), 0)).toEqual(p0.unknownSchemas);

    // Schema 9 is registered since; Redis lost the newest snapshot: a new owner restores s1 and reads 1 and 2 again.
    registered.add(9);
    const restoreFrom = async (unknownSchemas: UnknownSchema[]) => {
      const again = setup(registered);
      const snapshot = (await store.load(ref, [s1]))!;
      expect(again.assign('in', 0, '3', { snapshot, unknownSchemas })).toBe('1');
      await again.processBatch('in', 0, records.slice(1));
      again.closeAllWindows();
      const out = again.takeCheckpoint(true);
      return {
        minute1: out.rows.get('w')!.rows.filter((r) => r.start === MIN),
        deadLettered: again.counters.deadLettered,
        published: out.deadLetters.length + out.late.length,
      };
    };
    // Judged as the live stream did: offset 1 a dead letter again (published then, not again), minute 1 counts a and b.
    expect(await restoreFrom(p0.unknownSchemas)).toEqual({
      minute1: [{ start: MIN, events: 2 }],
      deadLettered: 1,
      published: 0,
    });
    // Without the verdict, offset 1 is counted and b judged late, and its late event is not published again: b is lost.
    expect((await restoreFrom([])).minute1).toEqual([{ start: MIN, events: 1 }]);
  });

  /**
   * Found by a fifth review: a member dead-lettered x, counted b, flushed minute 1's row (between commits) and
   * died; the member redoing its work after schema 9 was registered decoded x, judged b late and left the
   * dead member's row of minute 1 in ClickHouse, with b also published late.
   */
  it('a checkpoint carries a verdict its rows may follow from, with the committed offset, until Kafka has it; a redo with it judges as the live stream did', async () => {
    const { store, live, s1 } = await committedAfterA(new Set([1]));
    await live.processBatch('in', 0, records.slice(1));
    live.closeAllWindows();
    const flush = live.takeCheckpoint(false);
    const span = { schemaId: 9, from: '1', through: '1' };
    expect(flush.verdicts).toEqual([
      {
        topic: 'in',
        partition: 0,
        incarnation: 1,
        offset: '1',
        snapshot: s1,
        releases: [],
        unknownSchemas: [span],
        closedAtEnd: false,
      },
    ]);
    expect(flush.rows.get('w')!.rows).toEqual([{ start: MIN, events: 2 }]);
    expect(live.hasUnrecordedVerdicts()).toBe(true);
    live.verdictsRecorded('in', 0, 1, flush.verdicts[0]!.unknownSchemas);
    expect(live.hasUnrecordedVerdicts()).toBe(false);
    // Another record of schema 9 extends the span: recorded only as far as offset 1, it is a verdict to record again.
    await live.processBatch('in', 0, [at(3, 'y', 4 * MIN, 9)]);
    expect(live.takeCheckpoint(true).verdicts.map((v) => v.unknownSchemas)).toEqual([[{ ...span, through: '3' }]]);

    // The member redoing the work from the committed offset, with the verdict in the offset's metadata.
    const metadata = stateMetadata(0, [s1], [], flush.verdicts[0]!.unknownSchemas);
    const redo = setup(new Set([1, 9]));
    const restored = { snapshot: (await store.load(ref, [s1]))!, unknownSchemas: unknownSchemasOf(metadata, 0) };
    expect(redo.assign('in', 0, '1', restored)).toBe('1');
    await redo.processBatch('in', 0, records.slice(1));
    redo.closeAllWindows();
    const out = redo.takeCheckpoint(true);
    expect(out.rows.get('w')!.rows).toEqual([{ start: MIN, events: 2 }]);
    // x's dead letter was never committed: published now. Nothing late; the restored verdict is recorded.
    expect(out.deadLetters.map((d) => [d.source.offset, d.errorClass])).toEqual([['1', 'SCHEMA_UNKNOWN']]);
    expect(out.late).toEqual([]);
    expect(out.verdicts).toEqual([]);
  });

  it('keeps a span past the committed offset over newer ones: rows that followed from it may be in ClickHouse (found by a sixth review)', async () => {
    const registered = new Set([1]);
    const { store, live, s1 } = await committedAfterA(registered);
    // x (schema 9: a dead letter), b counted, c closes minute 1: its row is written once the verdict is recorded.
    const after = [...records.slice(1), at(3, 'c', 2 * MIN + 1)];
    await live.processBatch('in', 0, after);
    const flush = live.takeCheckpoint(false);
    live.verdictsRecorded('in', 0, 1, flush.verdicts[0]!.unknownSchemas);
    const written = flush.rows.get('w')!.rows;
    expect(written).toEqual([{ start: MIN, events: 2 }]);
    // As many values of ids of their own as spans are kept (zero-byte garbage), then the next flush's verdicts.
    const garbage = Array.from({ length: MAX_KEPT_UNKNOWN_SCHEMAS }, (_, i) =>
      at(4 + i, `g${i}`, 2 * MIN + 2, 1000 + i),
    );
    await live.processBatch('in', 0, garbage);
    const recorded = live.takeCheckpoint(true).verdicts[0]!.unknownSchemas;
    expect(recorded).toHaveLength(MAX_KEPT_UNKNOWN_SCHEMAS);
    expect(recorded[0]).toEqual({ schemaId: 9, from: '1', through: '1' });

    // The member dies; schema 9 is registered; the next owner redoes from offset 1 with what Kafka holds.
    registered.add(9);
    const redo = setup(registered);
    const metadata = stateMetadata(0, [s1], [], recorded);
    redo.assign('in', 0, '1', {
      snapshot: (await store.load(ref, [s1]))!,
      unknownSchemas: unknownSchemasOf(metadata, 0),
    });
    await redo.processBatch('in', 0, [...after, ...garbage]);
    redo.closeAllWindows();
    const out = redo.takeCheckpoint(true);
    expect(out.rows.get('w')!.rows.filter((r) => r.start === MIN)).toEqual(written);
    expect(out.late).toEqual([]);
  });

  it('keeps no spans in a stream without windows: nothing re-reads its records (found by a fourth review)', async () => {
    const task = new StreamTask(definition, { decoder: registry(new Set([1])), now: () => 0 }, undefined);
    task.assign('in', 0, '0');
    await task.processBatch('in', 0, [at(0, 'x', MIN, 9)]);
    expect(task.takeCheckpoint(true).offsets.map((o) => [o.offset, o.unknownSchemas])).toEqual([['1', []]]);
  });

  it('keeps one span per schema id and taking-over, raised to the last offset, and drops it once every kept snapshot is past it', async () => {
    const store = new MemorySnapshotStore();
    const clock = { elapsed: 0 };
    const task = setup(new Set([1]), clock);
    task.assign('in', 0, '0');
    await task.processBatch('in', 0, [at(0, 'a', MIN)]);
    await commit(task, store); // snapshot at 1
    await task.processBatch('in', 0, [at(1, 'x', MIN, 9), at(2, 'y', MIN, 8), at(3, 'z', MIN, 9)]);
    const kept: unknown[] = [];
    for (let offset = 4; offset < 7; offset++) {
      kept.push((await commit(task, store)).offsets[0]!.unknownSchemas);
      clock.elapsed += REDIS_LOSS_WINDOW_MS + 1;
      await task.processBatch('in', 0, [at(offset, `e${offset}`, MIN + offset)]);
    }
    // The commit at 4 and the one at 5 keep the snapshot at 1 or 4 as a fallback, before the records of
    // schema 9 and 8 or at them; once the fallback is the snapshot at 5, no restore reads them again.
    const both = [
      { schemaId: 9, from: '1', through: '3' },
      { schemaId: 8, from: '2', through: '2' },
    ];
    expect(kept).toEqual([both, both, []]);
  });
});

/**
 * Each member has its own SchemaCodec, and a codec remembers a 404 for 5 s, even once the id is registered.
 * Found by two reviews of UnknownSchema: member B, whose codec heard a 404 for schema 9 just before it was
 * registered, judged a record of 9 differently from member A, which decoded one just after:
 * - the first version kept one offset per id ("unknown up to here"): B dead-lettered y (offset 2) on
 *   taking partition 0 over from A, and a re-read from a fallback before x (offset 1, decoded by A)
 *   dead-lettered x too: lost;
 * - B, re-reading x after Redis lost A's latest snapshot, trusted its memory of the 404: lost; with one
 *   registry failure on asking again, the retried batch did the same;
 * - B, redoing A's uncommitted work past the committed offset, dead-lettered (and published) x, whose raw
 *   row A had already written.
 * - a third review: the cap's eviction by largest id dropped real ids (registries that number from 100001),
 *   and a recheck joined a request in flight since before the taking-over.
 * A 404 now carries when the registry was asked: one from before the taking-over began is asked again.
 */
describe('records of a schema registered while two members read it (two codecs)', () => {
  const MIN = 60_000;
  const T = 1_000_000; // schema 9 is registered at T
  const stream = minuteCounts('task-unknown-schema-codecs-test', 60_000);
  const readerSchema = {
    type: 'record',
    name: 'Ev',
    fields: [
      { name: 'id', type: 'string' },
      { name: 'n', type: 'double' },
    ],
  };
  const avro = parseAvroType(readerSchema as never);
  const wire = (schemaId: number, ev: Ev): Buffer => {
    const body = avro.toBuffer(ev);
    const out = Buffer.alloc(5 + body.length);
    out.writeInt32BE(schemaId, 1);
    body.copy(out, 5);
    return out;
  };
  const rec = (partition: number, offset: number, schemaId: number, ev: Ev): ConsumedRecord => ({
    topic: 'in',
    partition,
    offset: String(offset),
    timestamp: String(100 * MIN),
    key: null,
    value: wire(schemaId, ev),
    headers: {},
  });
  const ref = { topic: 'in', partition: 0 };

  function setup() {
    /** `now`: the monotonic clock (the codec's and TaskPorts.elapsed, as in production); the wall clock is `now + wallStep`. */
    const clock = { now: 0, wallStep: 0 };
    /** Registry requests to fail as an outage (a 503 or a timeout): retriable. */
    const failNext = { count: 0 };
    const registry = {
      async schemaById(id: number) {
        if (failNext.count > 0) {
          failNext.count -= 1;
          throw new ServiceError('registry', 'registry answered 503', { retriable: true });
        }
        if (id === 1 || (id === 9 && clock.now >= T)) return JSON.stringify(readerSchema);
        throw new RegistryError(404, 40403, `Schema ${id} not found`);
      },
    } as unknown as RegistryClient;
    const member = () => {
      const codec = new SchemaCodec(registry, () => clock.now);
      return new StreamTask(
        stream,
        { decoder: codec.reading(readerSchema), now: () => clock.now + clock.wallStep, elapsed: () => clock.now },
        new StreamWindows(stream.windowed!, 'in'),
      );
    };
    const store = new MemorySnapshotStore();
    /** What the runner does around a commit: save, name [restore point, fallback], filter, record metadata. */
    async function commitAsTheRunner(task: StreamTask<Ev>) {
      const cp = task.takeCheckpoint(true);
      await store.save(cp.snapshots);
      const o = cp.offsets.find((x) => x.partition === 0)!;
      const named = [o.snapshot!, task.fallbackSnapshot('in', 0, o.snapshot)].filter((s): s is string => !!s);
      const since = BigInt(offsetOfSnapshot(named.at(-1)!));
      const unknown = o.unknownSchemas.filter((u: UnknownSchema) => BigInt(u.through) >= since);
      const metadata = stateMetadata(0, named, [], unknown);
      task.committed('in', 0, o.offset, o.snapshot);
      return { cp, metadata, offset: o.offset };
    }
    /** Member B: owns partition 1, where it reads a record of schema 9 just before it is registered (404, remembered 5 s). */
    const memberB = async () => {
      clock.now = T - 100;
      const b = member();
      b.assign('in', 1, '0');
      await b.processBatch('in', 1, [rec(1, 0, 9, { id: 'q', n: MIN })]);
      expect(b.counters.deadLettered).toBe(1);
      return b;
    };
    /**
     * Member A: owns partition 0, reads the first record and commits (the snapshot at 1), then, once schema 9
     * is registered, the others, and commits again.
     */
    const memberA = async (records: ConsumedRecord[]) => {
      clock.now = T - 50;
      const a = member();
      a.assign('in', 0, '0');
      await a.processBatch('in', 0, records.slice(0, 1));
      await commitAsTheRunner(a);
      clock.now = T + 100;
      await a.processBatch('in', 0, records.slice(1));
      expect(a.counters.deadLettered).toBe(0);
      return commitAsTheRunner(a);
    };
    /** Minute 1's row once the task closes every window. */
    const minute1 = (task: StreamTask<Ev>) => {
      task.closeAllWindows();
      const out = task.takeCheckpoint(true);
      return {
        rows: out.rows.get('w')!.rows.filter((r) => r.start === MIN),
        published: out.deadLetters.filter((d) => d.source.partition === 0),
      };
    };
    return { clock, failNext, member, memberA, memberB, store, commitAsTheRunner, minute1 };
  }

  it.each([
    ['a third member', false],
    ['the member whose codec remembers the 404', true],
  ])('a member taking a partition over decodes what its former owner decoded; a re-read by %s too', async (_, byB) => {
    const w = setup();
    const p0 = [
      rec(0, 0, 1, { id: 'a', n: MIN + 1 }),
      rec(0, 1, 9, { id: 'x', n: MIN + 2 }),
      rec(0, 2, 9, { id: 'y', n: MIN + 3 }),
    ];
    const b = await w.memberB();
    const aCommit = await w.memberA(p0.slice(0, 2)); // x decoded live
    expect(aCommit.offset).toBe('2');

    // Rebalance: partition 0 moves to B (restored from A's restore point, fallback kept), within B's 5 s.
    w.clock.now = T + 1_000;
    const named = snapshotsOf(aCommit.metadata, 0)!;
    b.assign('in', 0, '2', {
      snapshot: (await w.store.load(ref, named))!,
      fallback: named[1],
      unknownSchemas: unknownSchemasOf(aCommit.metadata, 0),
    });
    await b.processBatch('in', 0, p0.slice(2));
    const bCommit = await w.commitAsTheRunner(b);
    // y decoded too: B asked the registry again rather than trusting its memory of the 404.
    const deadLetters = bCommit.cp.deadLetters.filter((d) => d.source.partition === 0);
    expect([deadLetters, unknownSchemasOf(bCommit.metadata, 0)]).toEqual([[], []]);
    const bNamed = snapshotsOf(bCommit.metadata, 0)!;
    expect(offsetOfSnapshot(bNamed[1]!)).toBe('1');

    // Redis loses its last second (B's snapshot): B itself or a new member C restores the fallback (offset 1).
    w.clock.now = T + 1_500;
    const c = byB ? b : w.member();
    const fallback = (await w.store.load(ref, [bNamed[1]!]))!;
    expect(c.assign('in', 0, '3', { snapshot: fallback, unknownSchemas: unknownSchemasOf(bCommit.metadata, 0) })).toBe(
      '1',
    );
    await c.processBatch('in', 0, p0.slice(1));
    expect(w.minute1(c)).toEqual({ rows: [{ start: MIN, events: 3 }], published: [] });
  });

  it.each([
    ['', 0, 0],
    [', after one registry failure on asking again (the batch retried 500 ms later)', 1, 0],
    [', its wall clock stepped back 2 s (found by a fourth review, when both clocks were the wall clock)', 0, -2_000],
  ])(
    'a re-read by the member whose codec remembers the 404 counts a record its former owner decoded%s',
    async (_, blips, wallStep) => {
      const w = setup();
      const p0 = [
        rec(0, 0, 1, { id: 'a', n: MIN + 1 }),
        rec(0, 1, 9, { id: 'x', n: MIN + 2 }),
        rec(0, 2, 1, { id: 'b', n: MIN + 3 }),
      ];
      const b = await w.memberB();
      const aCommit = await w.memberA(p0);
      // A's restore point is lost: B restores the fallback (offset 1) and re-reads 1..2.
      w.clock.now = T + 1_000;
      w.clock.wallStep = wallStep;
      const named = snapshotsOf(aCommit.metadata, 0)!;
      b.assign('in', 0, '3', {
        snapshot: (await w.store.load(ref, [named[1]!]))!,
        unknownSchemas: unknownSchemasOf(aCommit.metadata, 0),
      });
      w.failNext.count = blips;
      if (blips > 0) {
        await expect(b.processBatch('in', 0, p0.slice(1))).rejects.toThrow('503');
        w.clock.now += 500;
      }
      await b.processBatch('in', 0, p0.slice(1));
      expect(w.minute1(b)).toEqual({ rows: [{ start: MIN, events: 3 }], published: [] });
    },
  );

  it('a member redoing the uncommitted work of a former owner decodes what that owner decoded (and wrote a raw row of)', async () => {
    const w = setup();
    const b = await w.memberB();
    w.clock.now = T - 50;
    const a = w.member();
    a.assign('in', 0, '0');
    await a.processBatch('in', 0, [rec(0, 0, 1, { id: 'a', n: MIN + 1 })]);
    const aCommit = await w.commitAsTheRunner(a);
    w.clock.now = T + 100;
    await a.processBatch('in', 0, [rec(0, 1, 9, { id: 'x', n: MIN + 2 })]);
    expect(a.takeCheckpoint(false).rows.get('raw')!.rows).toEqual([{ id: 'x', offset: '1' }]); // in ClickHouse
    // A crashes before its commit; B takes partition 0 over at the committed offset 1.
    w.clock.now = T + 1_000;
    b.assign('in', 0, '1', { snapshot: (await w.store.load(ref, snapshotsOf(aCommit.metadata, 0)!))! });
    await b.processBatch('in', 0, [rec(0, 1, 9, { id: 'x', n: MIN + 2 })]);
    expect(w.minute1(b)).toEqual({ rows: [{ start: MIN, events: 2 }], published: [] });
  });

  it('asks the registry again when the 404 came from a request in flight since before the taking-over', async () => {
    const clock = { now: T - 200 };
    const held: (() => void)[] = [];
    let requests = 0;
    const registry = {
      schemaById(id: number) {
        requests += 1;
        // Answered as the registry knew when asked; the first answer is slow to arrive (a loaded registry).
        const known = id === 1 || (id === 9 && clock.now >= T);
        const answer = () =>
          known ? Promise.resolve(JSON.stringify(readerSchema)) : Promise.reject(new RegistryError(404, 40403, 'nf'));
        if (requests > 1) return answer();
        return new Promise<string>((resolve, reject) => held.push(() => void answer().then(resolve, reject)));
      },
    } as unknown as RegistryClient;
    const codec = new SchemaCodec(registry, () => clock.now);
    const b = new StreamTask(
      stream,
      { decoder: codec.reading(readerSchema), now: () => clock.now },
      new StreamWindows(stream.windowed!, 'in'),
    );
    // B reads a record of schema 9 on partition 1 at T-200: the request is sent, its answer (404) on its way.
    b.assign('in', 1, '0');
    const first = b.processBatch('in', 1, [rec(1, 0, 9, { id: 'q', n: MIN })]);
    // Meanwhile 9 is registered, a former owner decodes x on partition 0, and B takes partition 0 over.
    clock.now = T + 1_000;
    b.assign('in', 0, '1');
    const redo = b.processBatch('in', 0, [rec(0, 1, 9, { id: 'x', n: MIN + 2 })]);
    held.shift()!(); // the 404 of T-200 arrives, for both records
    await Promise.all([first, redo]);
    expect([requests, b.counters.deadLettered]).toEqual([2, 1]); // x asked again and decoded; q a dead letter
  });

  it('asks the registry once per unknown id whose 404 is from this taking-over', async () => {
    const w = setup();
    let requests = 0;
    const codec = new SchemaCodec(
      {
        schemaById: async () => {
          requests += 1;
          throw new RegistryError(404, 40403, 'nf');
        },
      } as unknown as RegistryClient,
      () => w.clock.now,
    );
    const task = new StreamTask(
      stream,
      { decoder: codec.reading(readerSchema), now: () => w.clock.now },
      new StreamWindows(stream.windowed!, 'in'),
    );
    task.assign('in', 0, '0');
    await task.processBatch(
      'in',
      0,
      Array.from({ length: 50 }, (_, i) => rec(0, i, 100 + (i % 25), { id: `g${i}`, n: MIN })),
    );
    expect([requests, task.counters.deadLettered]).toEqual([25, 50]);
  });

  it(`keeps at most ${MAX_KEPT_UNKNOWN_SCHEMAS} spans, and a commit's metadata at its largest stays within Kafka's 4 KB default`, async () => {
    const w = setup();
    const a = w.member();
    a.assign('in', 0, '0');
    const garbage = (offset: number, id: number): ConsumedRecord => ({
      ...rec(0, offset, 1, { id: 'g', n: 0 }),
      value: Buffer.from([0, (id >> 24) & 0xff, (id >> 16) & 0xff, (id >> 8) & 0xff, id & 0xff, 1, 2, 3]),
    });
    const n = MAX_KEPT_UNKNOWN_SCHEMAS + 5;
    // A commit at 1 first: its snapshot stays as the fallback of the next (not settled), keeping spans after it.
    await a.processBatch('in', 0, [rec(0, 0, 1, { id: 'a', n: 1 })]);
    const first = a.takeCheckpoint(true).offsets[0]!;
    a.committed('in', 0, first.offset, first.snapshot);
    await a.processBatch(
      'in',
      0,
      Array.from({ length: n }, (_, i) => garbage(1 + i, 1000 + i)),
    );
    const cp = a.takeCheckpoint(true);
    const ids = (from: number) => Array.from({ length: MAX_KEPT_UNKNOWN_SCHEMAS }, (_, i) => from + i);
    // Every span is past the committed offset (a member redoing this one's work may need any of them, found
    // by a review): the new ones are not kept.
    expect(cp.offsets[0]!.unknownSchemas.map((u) => u.schemaId)).toEqual(ids(1000));
    // Committed past them (the snapshot kept as fallback is at 0): new spans replace the oldest.
    a.committed('in', 0, cp.offsets[0]!.offset, cp.offsets[0]!.snapshot);
    await a.processBatch(
      'in',
      0,
      Array.from({ length: 5 }, (_, i) => garbage(1 + n + i, 2000 + i)),
    );
    expect(a.takeCheckpoint(true).offsets[0]!.unknownSchemas.map((u) => u.schemaId)).toEqual([
      ...ids(1005).slice(0, -5),
      2000,
      2001,
      2002,
      2003,
      2004,
    ]);
    const offset = String(2n ** 63n - 1n);
    const worst = stateMetadata(
      2 ** 31 - 1,
      [snapshotId(offset, Date.UTC(2100, 0), 'ffffff'), snapshotId(offset, Date.UTC(2100, 0), 'ffffff')],
      Array.from({ length: MAX_KEPT_RELEASES }, () => ({ offset, watermark: -Number.MAX_VALUE })),
      Array.from({ length: MAX_KEPT_UNKNOWN_SCHEMAS }, () => ({ schemaId: -(2 ** 31), from: offset, through: offset })),
    );
    expect(worst.length).toBeLessThanOrEqual(4096);
  });
});
