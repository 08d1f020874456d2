/**
 * Two restores of one partition racing (found by a review). A restore superseded by a newer one
 * (restoreAgain: restoreAll after a Redis restart, a commit that did not land, checkKept) runs on to its
 * end, and its snapshots.load() used to watch the partition for a Redis restart whenever it landed: a
 * partition given up meanwhile stayed watched (the next restart stalled the member for good), and a live
 * one was watched again under a newer Redis run (hiding that restart from the restore that took over).
 * A load now watches the partition only if its restore is still current as it ends. The harness delays
 * one load of a partition (as a slow Redis round trip or a restore in retry backoff would) and drives the
 * runner's own restoreAgain.
 */
import type { RedisSnapshotStore } from '../../src/state/snapshots';
import { event, produceAt, world } from './edge-world';
import type { SimProcess, World } from './world';

type Internals = {
  ports: { snapshots: RedisSnapshotStore };
  assignment: Set<number>;
  restoreAgain(partition: number): void;
};
const internals = (p: SimProcess) => p.runner as unknown as Internals;
const registered = (p: SimProcess) => [
  ...(
    internals(p).ports.snapshots as unknown as {
      restoredUnder: Map<string, { ref: { partition: number }; runId: string }>;
    }
  ).restoredUnder.values(),
];

/** The next load of `partition` by `p` waits until `release()` resolves, then loads (and registers) as usual. */
function delayNextLoad(w: World, p: SimProcess, partition: number, release: () => boolean): void {
  const store = internals(p).ports.snapshots;
  const load = store.load.bind(store);
  let armed = true;
  store.load = async (ref, ids, wanted) => {
    if (armed && ref.partition === partition) {
      armed = false;
      while (!release()) await w.scheduler.sleep(p.owner, 1);
    }
    return load(ref, ids, wanted);
  };
}

/**
 * Restore A of partition 0, its load held back, is superseded by restore B, which completes under the current
 * Redis run; then Redis crashes, losing its last second, and restarts, and A's load goes out as the first
 * command after it. Returns how many loads (restores) followed the restart, A's not counted.
 */
async function lateLoadPastRestart(w: World, p: SimProcess, settleMs: number): Promise<number> {
  let go = false;
  delayNextLoad(w, p, 0, () => go);
  internals(p).restoreAgain(0); // restore A: its load waits
  internals(p).restoreAgain(0); // restore B supersedes it
  await w.drive(new Promise<void>((r) => w.scheduler.at(w.root, settleMs, r)));
  expect(registered(p).map((r) => r.runId)).toEqual([w.redis.runId]);
  const store = internals(p).ports.snapshots;
  const load = store.load.bind(store);
  let loads = 0;
  store.load = (ref, ids, wanted) => {
    loads += 1;
    return load(ref, ids, wanted);
  };
  w.redis.crash(1000);
  w.redis.restart();
  go = true;
  await w.drive(new Promise<void>((r) => w.scheduler.at(w.root, 20_000, r)));
  return loads;
}

describe('a restore superseded by a newer one, whose load lands late', () => {
  it('does not leave a partition given up meanwhile watched (a later Redis restart would stall the member)', async () => {
    const w = world(2);
    for (let s = 1; s <= 600; s++) {
      produceAt(w, 0, s * 100, event(2 * s, w.scheduler.now() + s * 100));
      produceAt(w, 1, s * 100, event(2 * s + 1, w.scheduler.now() + s * 100));
    }
    const p1 = await w.drive(w.start());
    await w.drive(new Promise<void>((r) => w.scheduler.at(w.root, 5000, r)));
    expect([...internals(p1).assignment].sort()).toEqual([0, 1]);

    let landed = false;
    let releaseAt = Infinity;
    delayNextLoad(w, p1, 1, () => {
      if (w.scheduler.now() < releaseAt) return false;
      landed = true;
      return true;
    });
    internals(p1).restoreAgain(1); // restore A: its load waits
    internals(p1).restoreAgain(1); // restore B supersedes it and completes
    // A second member joins: partition 1 goes to it, while restore A's load still waits.
    await w.drive(w.start());
    await w.drive(new Promise<void>((r) => w.scheduler.at(w.root, 15_000, r)));
    expect(internals(p1).assignment.has(1)).toBe(false);
    releaseAt = w.scheduler.now();
    await w.drive(new Promise<void>((r) => w.scheduler.at(w.root, 2000, r)));
    expect(landed).toBe(true);

    const watched = registered(p1)
      .map((r) => r.ref.partition)
      .sort();

    // Redis restarts (losing nothing): p1 restores what it owns again and goes on committing events/0.
    w.redis.crash(0);
    w.redis.restart();
    const group = 'sluice.event-counts';
    const before = w.kafka.committed(group).get(0)?.offset;
    await w.drive(new Promise<void>((r) => w.scheduler.at(w.root, 30_000, r)));
    const after = w.kafka.committed(group).get(0)?.offset;
    expect({ watched, committedAfterRestart: BigInt(after ?? '0') > BigInt(before ?? '0') }).toEqual({
      watched: [0], // p1 no longer owns events/1: it must not watch it
      committedAfterRestart: true,
    });
  }, 120_000);
});

describe('a superseded restore whose load lands after a Redis restart', () => {
  it('does not hide the restart from the live incarnation (it restored under the older run)', async () => {
    const w = world(1);
    for (let s = 1; s <= 600; s++) produceAt(w, 0, s * 100, event(s, w.scheduler.now() + s * 100));
    const p1 = await w.drive(w.start());
    await w.drive(new Promise<void>((r) => w.scheduler.at(w.root, 5000, r)));

    const loads = await lateLoadPastRestart(w, p1, 5000);
    // Restore A's own load is not counted (it entered before the counter). Without restore A's late load
    // (its load never sent) the restart is detected and events/0 restored again: loads is 1. With it, A's load
    // registers events/0 under the new run, check()/save() see nothing lost, and the lost second of dedup
    // marks and snapshots goes unnoticed (loads 0): duplicates of those records would be counted again.
    expect({ restoredAfterRestart: loads >= 1 }).toEqual({ restoredAfterRestart: true });
  }, 120_000);
});

// The same race on the path of a partition with nothing committed yet: its restore loads no snapshot and saves
// an empty state (found to hold by a review).
describe('a superseded empty-state restore whose load lands after a Redis restart', () => {
  it('leaves the live restore watched under the run it read: the restart is detected and the partition restored again', async () => {
    const w = world(1);
    // Nothing to read (so nothing committed) for the first 30 s: every restore until then takes the empty-state path.
    for (let s = 300; s <= 900; s++) produceAt(w, 0, s * 100, event(s, w.scheduler.now() + s * 100));
    const p1 = await w.drive(w.start());
    await w.drive(new Promise<void>((r) => w.scheduler.at(w.root, 2000, r)));
    expect(w.kafka.committed('sluice.event-counts').get(0)).toBeUndefined();

    // Restore B loads [] and saves the empty state under this run.
    const loads = await lateLoadPastRestart(w, p1, 3000);
    expect({
      restoredAfterRestart: loads >= 1,
      watched: registered(p1).map((r) => [r.ref.partition, r.runId]),
    }).toEqual({ restoredAfterRestart: true, watched: [[0, w.redis.runId]] });
    // And it goes on committing once events arrive.
    await w.drive(new Promise<void>((r) => w.scheduler.at(w.root, 40_000, r)));
    expect(w.kafka.committed('sluice.event-counts').get(0)).toBeDefined();
  }, 120_000);
});
