import {
  deadLetterSources,
  finish,
  interceptCommits,
  lateCount,
  START,
  twoPartitionsWithUnknownSchemas,
  windowDiffs,
  world,
} from './edge-world';

/**
 * Guards from a review of dropWhileStopping (runner.ts) with two partitions: partition 0's checkpoint commit
 * (its verdict commit, or its regular commit) fails as the member stops, with or without applying, while
 * partition 1 goes on reading and committing. A second member runs a while, then the bounded finish.
 * Every event is counted once, each dead letter is published once, and nothing is late.
 */
type Kind = 'verdict' | 'regular';
type Outcome = 'not applied' | 'applied';

async function scenario(kind: Kind, outcome: Outcome): Promise<void> {
  const w = world(2);
  const expected = twoPartitionsWithUnknownSchemas(w);
  const a = await w.drive(
    w.start({ processing: { flushIntervalMs: 100, commitIntervalMs: kind === 'verdict' ? 600_000 : 5_000 } }),
  );
  let failed = false;
  interceptCommits(a, async ({ partition }, pending, commit) => {
    const target =
      kind === 'verdict'
        ? pending.closing && !pending.rowsWritten && pending.verdicts > 0
        : pending.rowsWritten && pending.offsets > 0;
    if (!failed && partition === 0 && target && w.scheduler.now() > START + 100_000) {
      failed = true;
      await w.scheduler.sleep(w.root, 300);
      void w.stop(a);
      await w.scheduler.sleep(w.root, 1);
      if (outcome === 'applied') await commit();
      throw new Error(`transaction of partition ${partition} failed, outcome unknown`);
    }
    return commit();
  });
  await w.scheduler.runUntil(START + 200_000);
  expect(failed).toBe(true);
  await w.drive(w.start({ processing: { flushIntervalMs: 100, commitIntervalMs: 5_000 } }));
  await w.scheduler.runUntil(START + 260_000);
  await finish(w);
  expect(windowDiffs(w, expected)).toEqual({});
  expect(lateCount(w)).toBe(0);
  expect(deadLetterSources(w)).toEqual({ distinct: 360, twice: [] });
}

describe('a checkpoint commit of one of two partitions that fails as the member stops', () => {
  for (const kind of ['verdict', 'regular'] as const)
    for (const outcome of ['not applied', 'applied'] as const)
      it(`${kind} commit, ${outcome}`, () => scenario(kind, outcome), 120_000);
});
