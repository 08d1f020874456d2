import { StateLostError, type SnapshotStore } from '../../src/state';
import { TOPIC } from './world';
import {
  deadLetterSources,
  interceptCommits,
  lateCount,
  START,
  twoPartitionsWithUnknownSchemas,
  windowDiffs,
  world,
} from './edge-world';

/**
 * Guards from a review of dropWhileStopping in a bounded run's finish (runner.finishBounded, goBackToLost): the
 * run's first commit is its final one, with verdicts to record first; partition 0's verdict commit or
 * regular commit fails (applied or not), or the snapshot save reports a Redis restart. The partitions are
 * processed to the end again: every event counted once, each dead letter published once, nothing late.
 */
type Fault = 'verdict not applied' | 'verdict applied' | 'regular not applied' | 'regular applied' | 'state lost';

async function scenario(fault: Fault): Promise<void> {
  const w = world(2);
  const expected = twoPartitionsWithUnknownSchemas(w);
  await w.scheduler.runUntil(START + 200_000);

  const b = await w.drive(w.start({ bounded: true, processing: { flushIntervalMs: 100, commitIntervalMs: 600_000 } }));
  const runner = b.runner as unknown as { stopping: boolean; ports: { snapshots: SnapshotStore } };
  let failed = 0;
  interceptCommits(b, async ({ partition }, pending, commit) => {
    const verdict = !pending.rowsWritten && pending.verdicts > 0;
    const regular = pending.rowsWritten && pending.offsets > 0;
    const target = fault.startsWith('verdict') ? verdict : fault.startsWith('regular') ? regular : false;
    if (failed === 0 && runner.stopping && partition === 0 && target) {
      failed++;
      if (fault.endsWith(' applied') && !fault.endsWith('not applied')) await commit();
      throw new Error(`transaction of partition ${partition} failed, outcome unknown`);
    }
    return commit();
  });
  const snapshots = runner.ports.snapshots;
  const save = snapshots.save.bind(snapshots);
  snapshots.save = async (entries) => {
    if (fault === 'state lost' && failed === 0 && runner.stopping) {
      failed++;
      throw new StateLostError(entries.map((e) => e.ref));
    }
    return save(entries);
  };
  const outcome = await w.drive(b.done);
  if (outcome instanceof Error) throw outcome;
  expect(failed).toBe(1);
  expect(windowDiffs(w, expected)).toEqual({});
  expect(lateCount(w)).toBe(0);
  expect(deadLetterSources(w)).toEqual({ distinct: 360, twice: [] });
  // Everything the run processed is committed: each partition's committed offset is its end.
  const committed = await w.drive(
    (async () => {
      const admin = await w.kafka.client(w.root).admin();
      return admin.committedOffsets('sluice.event-counts', TOPIC);
    })(),
  );
  expect([committed.get(0)?.offset, committed.get(1)?.offset]).toEqual(['1980', '1980']);
}

describe('a bounded run whose final commit of one partition fails', () => {
  for (const fault of [
    'verdict not applied',
    'verdict applied',
    'regular not applied',
    'regular applied',
    'state lost',
  ] as const)
    it(fault, () => scenario(fault), 120_000);
});
