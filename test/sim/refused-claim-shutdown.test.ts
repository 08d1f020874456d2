import { ServiceError } from '../../src/errors';
import { event, produceAt, START, world } from './edge-world';
import { DATABASE, TOPIC, type SimProcess, type World } from './world';

/**
 * A runner that has failed (`fatal`) pauses partitions instead of reading or resuming: the two ways a
 * run ends on purpose still end it, SIGTERM's stop() (flush, commit, leave the group) and a bounded
 * run's end, committing nothing whose rows are not written.
 */

type Claim = (records: { id: string; topic: string; partition: number; offset: string }[]) => Promise<boolean[]>;
type TaskInside = { ports: { dedup: { claim: Claim } } };

const refusal = () =>
  new ServiceError(
    'redis',
    "Redis refused the dedup claim (NOPERM User sluice has no permissions to run the 'evalsha' command): no retry can change that",
  );

/** From the moment `refuseWhen` holds, every claim of `proc` is refused for good. */
function refuseClaims(proc: SimProcess, refuseWhen: () => boolean): void {
  const dedup = (proc.runner as unknown as { task: TaskInside }).task.ports.dedup;
  const claim = dedup.claim.bind(dedup);
  dedup.claim = (records) => (refuseWhen() ? Promise.reject(refusal()) : claim(records));
}

/** Every record below a committed offset has its raw row in ClickHouse. */
function committedWithoutRows(w: World): string[] {
  const raw = new Set(w.clickhouse.rows(DATABASE, 'events_raw').map((r) => String(r.event_id)));
  const missing: string[] = [];
  for (const [partition, { offset }] of w.kafka.committed('sluice.event-counts')) {
    for (const r of w.kafka.topics.get(TOPIC)![partition]!.filter((x) => BigInt(x.offset) < BigInt(offset)))
      if (!raw.has(r.key!.toString())) missing.push(`${partition}@${r.offset}`);
  }
  return missing;
}

describe('a refused claim, then the run is ended on purpose', () => {
  it('SIGTERM after the refusal: stop() settles with the refusal, commits nothing past ClickHouse, and leaves the group', async () => {
    const w = world(3);
    let n = 0;
    for (let at = 100; at <= 60_000; at += 100) for (const p of [0, 1, 2]) produceAt(w, p, at, event(++n, START + at));
    const proc = await w.drive(w.start({ processing: { commitIntervalMs: 1_000 } }));
    const refusedAt = START + 20_000;
    refuseClaims(proc, () => w.scheduler.now() >= refusedAt);
    await w.scheduler.runUntil(refusedAt + 3_000);

    const outcome = await w.drive(
      proc.runner.stop().then(
        () => 'finished',
        (e: unknown) => e,
      ),
      60_000,
    );
    expect(outcome).toBeInstanceOf(ServiceError);
    expect((outcome as Error).message).toMatch(/NOPERM/);
    expect(committedWithoutRows(w)).toEqual([]);
    expect(w.kafka.group('sluice.event-counts', TOPIC).members.size).toBe(0);
  });

  it('a bounded run refused half-way: done rejects with the refusal (no hang), nothing committed past ClickHouse', async () => {
    const w = world(2);
    let n = 0;
    for (let at = 100; at <= 30_000; at += 50) for (const p of [0, 1]) produceAt(w, p, at, event(++n, START + at));
    await w.scheduler.runUntil(START + 40_000);
    const proc = await w.drive(w.start({ bounded: true, processing: { commitIntervalMs: 1_000 } }));
    let claims = 0;
    refuseClaims(proc, () => ++claims > 4);
    const outcome = await w.drive(proc.done, 120_000);
    expect(outcome).toBeInstanceOf(ServiceError);
    expect((outcome as Error).message).toMatch(/NOPERM/);
    expect(committedWithoutRows(w)).toEqual([]);
  });
});
