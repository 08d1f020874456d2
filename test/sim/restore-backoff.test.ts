/**
 * A restore in retry backoff when its partition is given up stops at its next attempt:
 * it does not fence the partition's new owner, leaves no ready/restoring entry, and the member's other
 * partition (whose onBatch awaits every ready promise) keeps committing. Pinned by a review.
 */
import { event, produceAt, world } from './edge-world';
import type { SimProcess } from './world';

type Internals = {
  assignment: Set<number>;
  restoreAgain(partition: number): void;
  transactions: { fence(partition: number): Promise<void> };
  ready: Map<number, Promise<void>>;
  restoring: Map<number, symbol>;
};
const internals = (p: SimProcess) => p.runner as unknown as Internals;
const at = (w: ReturnType<typeof world>, ms: number) =>
  w.drive(new Promise<void>((r) => w.scheduler.at(w.root, ms, r)));

describe('a restore in retry backoff whose partition is given up', () => {
  it('stops without fencing the new owner; the other partitions go on', async () => {
    const w = world(2);
    for (let s = 1; s <= 900; s++) {
      produceAt(w, 0, s * 100, event(2 * s, w.scheduler.now() + s * 100));
      produceAt(w, 1, s * 100, event(2 * s + 1, w.scheduler.now() + s * 100));
    }
    const p1 = await w.drive(w.start());
    await at(w, 5000);
    const tx = internals(p1).transactions;
    const fence = tx.fence.bind(tx);
    let failing = true;
    let p1FencesOf1 = 0;
    tx.fence = async (partition) => {
      if (partition === 1) {
        p1FencesOf1 += 1;
        if (failing) throw new Error('fence: coordinator not available');
      }
      return fence(partition);
    };
    internals(p1).restoreAgain(1); // fails, backs off, fails...
    const p2 = await w.drive(w.start());
    await at(w, 15_000);
    expect(internals(p1).assignment.has(1)).toBe(false);
    const tx2 = internals(p2).transactions;
    const fence2 = tx2.fence.bind(tx2);
    let p2Fences = 0;
    tx2.fence = (partition) => {
      if (partition === 1) p2Fences += 1;
      return fence2(partition);
    };
    const fencesWhenLost = p1FencesOf1;
    failing = false;
    const group = 'sluice.event-counts';
    const before = [0, 1].map((p) => w.kafka.committed(group).get(p)?.offset ?? '0');
    await at(w, 60_000);
    const after = [0, 1].map((p) => w.kafka.committed(group).get(p)?.offset ?? '0');
    expect({
      p1FencedAfterLoss: p1FencesOf1 - fencesWhenLost,
      p2RestoredAgain: p2Fences,
      p1Ready: internals(p1).ready.has(1),
      p1Restoring: internals(p1).restoring.has(1),
      committedOn: after.map((a, i) => BigInt(a) > BigInt(before[i]!)),
    }).toEqual({
      p1FencedAfterLoss: 0,
      p2RestoredAgain: 0,
      p1Ready: false,
      p1Restoring: false,
      committedOn: [true, true],
    });
  }, 120_000);
});
