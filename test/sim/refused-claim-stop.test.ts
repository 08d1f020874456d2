import { RedisDedupStore } from '../../src/dedup';
import { ServiceError } from '../../src/errors';
import { event, produceAt, START, world } from './edge-world';
import { Owner } from './scheduler';
import { DATABASE, TOPIC, type SimProcess } from './world';

/**
 * A dedup claim refused for good (an ACL right taken away while the stream
 * runs) makes the runner's onBatch call `fail(err)` at once. What that leaves behind: offsets, rows, and
 * whether the member really stops.
 */

type Claim = (records: { id: string; topic: string; partition: number; offset: string }[]) => Promise<boolean[]>;
type TaskInside = { ports: { dedup: { claim: Claim } }; processBatch: (...a: unknown[]) => Promise<void> };
const taskOf = (p: SimProcess) => (p.runner as unknown as { task: TaskInside }).task;

const REFUSED_AT = START + 60_000;

async function refusedWhileRunning() {
  const w = world(3);
  // An event every 100 ms on each of three partitions for 120 s.
  let n = 0;
  for (let at = 100; at <= 120_000; at += 100) for (const p of [0, 1, 2]) produceAt(w, p, at, event(++n, START + at));
  const proc = await w.drive(w.start({ processing: { commitIntervalMs: 1_000 } }));
  const task = taskOf(proc);
  const dedup = task.ports.dedup;
  const claim = dedup.claim.bind(dedup);
  // From REFUSED_AT on, Redis refuses every claim as the store words an ACL refusal (non-retriable).
  dedup.claim = (records) =>
    w.scheduler.now() >= REFUSED_AT
      ? Promise.reject(
          new ServiceError(
            'redis',
            "Redis refused the dedup claim (NOPERM User sluice has no permissions to run the 'evalsha' command): no retry can change that",
          ),
        )
      : claim(records);
  const processBatch = task.processBatch.bind(task);
  let batchesAfterFailure = 0;
  let failedAt: number | undefined;
  void proc.done.then((outcome) => {
    if (outcome instanceof Error) failedAt = w.scheduler.now();
  });
  task.processBatch = (...args: unknown[]) => {
    if (failedAt !== undefined) batchesAfterFailure++;
    return processBatch(...args);
  };
  await w.scheduler.runUntil(REFUSED_AT + 30_000);
  const committedAtFailure = w.kafka.committed('sluice.event-counts');
  const rowsAtFailure = w.clickhouse.rows(DATABASE, 'events_raw').length;
  await w.scheduler.runUntil(REFUSED_AT + 120_000);
  return {
    w,
    proc,
    failedAt: () => failedAt,
    batchesAfterFailure: () => batchesAfterFailure,
    committedAtFailure,
    rowsAtFailure,
  };
}

describe('a dedup claim refused for good while running', () => {
  it('stops the member with the refusal within a few seconds', async () => {
    const { proc, failedAt } = await refusedWhileRunning();
    const outcome = await proc.done;
    expect(outcome).toBeInstanceOf(ServiceError);
    expect((outcome as ServiceError).message).toMatch(/NOPERM/);
    expect(failedAt()! - REFUSED_AT).toBeLessThan(5_000);
  });

  /** No event lost: every record below a committed offset has its raw row in ClickHouse. */
  it('commits no offset past a record whose row is not in ClickHouse', async () => {
    const { w } = await refusedWhileRunning();
    const raw = new Set(w.clickhouse.rows(DATABASE, 'events_raw').map((r) => String(r.event_id)));
    const missing: string[] = [];
    for (const [partition, { offset }] of w.kafka.committed('sluice.event-counts')) {
      const records = w.kafka.topics.get(TOPIC)![partition]!;
      for (const r of records.filter((x) => BigInt(x.offset) < BigInt(offset))) {
        const id = r.key!.toString();
        if (!raw.has(id)) missing.push(`${partition}@${r.offset}`);
      }
    }
    expect(missing).toEqual([]);
  });

  /**
   * "Stops the stream at once": after `done` rejected, the member still reads, retries the refused claim
   * on every resume, writes and commits. The CLI exits right after `done` rejects, so this matters to
   * whoever embeds startStream (and to the time the group waits for the dead member's session to expire).
   */
  it('does nothing more once it has failed', async () => {
    const { w, batchesAfterFailure, committedAtFailure, rowsAtFailure } = await refusedWhileRunning();
    expect({
      batchesAfterFailure: batchesAfterFailure(),
      commitsMoved: [...w.kafka.committed('sluice.event-counts')].some(
        ([p, c]) => committedAtFailure.get(p)?.offset !== c.offset,
      ),
      rowsWrittenAfter: w.clickhouse.rows(DATABASE, 'events_raw').length - rowsAtFailure,
    }).toEqual({ batchesAfterFailure: 0, commitsMoved: false, rowsWrittenAfter: 0 });
  });
});

/**
 * The start-up probe claims "\u0000sluice-probe" in the stream's own scope (namespace and epoch) for a
 * second. An event whose dedup id is that string, read in that second (a restarted member reads its
 * backlog at once), finds the probe's mark under another claimant and is dropped as a duplicate. Ids are
 * the producers' data: nothing stops one from being that string. Contrived, but the mark lives where real
 * marks live; a key outside the id space (another scope) cannot collide.
 */
describe('the start-up probe mark', () => {
  it('does not suppress an event whose dedup id is the probe id', async () => {
    const w = world(1);
    const redis = w.redis.client(new Owner('probe'));
    const store = new RedisDedupStore(redis, { keyPrefix: 'sim:', namespace: 'event-counts', epoch: 0 });
    await w.drive(store.probe());
    const keep = await w.drive(store.claim([{ id: '\u0000sluice-probe', topic: TOPIC, partition: 0, offset: '0' }]));
    expect(keep).toEqual([true]);
  });
});
