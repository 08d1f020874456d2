import { DLQ_HEADERS, headerString } from '../../src/dlq';
import type { PartitionTransactions } from '../../src/kafka/group';
import { StateLostError, type SnapshotStore } from '../../src/state';
import { TOPIC } from './world';
import { event, lateCount, produceAt, produceLateSchemaAt, START, windowDiffs, world } from './edge-world';

/**
 * Guards from a review of dropWhileStopping in a bounded run's finish (runner.finishBounded, goBackToLost): the
 * run's first commit is its final one, with verdicts to record first; partition 0's verdict commit or
 * regular commit fails (applied or not), or the snapshot save reports a Redis restart. The partitions are
 * processed to the end again: every event counted once, each dead letter published once, nothing late.
 */
type Fault = 'verdict not applied' | 'verdict applied' | 'regular not applied' | 'regular applied' | 'state lost';

async function scenario(fault: Fault): Promise<void> {
  const w = world(2);
  const expected = new Map<string, number>();
  let n = 0;
  for (let s = 1; s <= 1800; s++) {
    const t = START + s * 100;
    for (const p of [0, 1]) {
      produceAt(w, p, s * 100, event(++n, t));
      const k = `p${p}@m${Math.floor((t - START) / 60_000)}`;
      expected.set(k, (expected.get(k) ?? 0) + 1);
    }
  }
  for (let i = 1; i <= 180; i++) for (const p of [0, 1]) produceLateSchemaAt(w, p, i * 1000 + 50, 10_000 + 2 * i + p);
  await w.scheduler.runUntil(START + 200_000);

  const b = await w.drive(w.start({ bounded: true, processing: { flushIntervalMs: 100, commitIntervalMs: 600_000 } }));
  const runner = b.runner as unknown as {
    stopping: boolean;
    transactions: PartitionTransactions;
    ports: { snapshots: SnapshotStore };
    pending?: { checkpoint: { verdicts: unknown[]; offsets: unknown[] }; progress: { rows: boolean } };
  };
  const transactions = runner.transactions;
  const commit = transactions.commit.bind(transactions);
  let failed = 0;
  transactions.commit = async (partition, records, offset) => {
    const rowsWritten = runner.pending?.progress.rows ?? false;
    const verdict = !rowsWritten && (runner.pending?.checkpoint.verdicts.length ?? 0) > 0;
    const regular = rowsWritten && (runner.pending?.checkpoint.offsets.length ?? 0) > 0;
    const target = fault.startsWith('verdict') ? verdict : fault.startsWith('regular') ? regular : false;
    if (failed === 0 && runner.stopping && partition === 0 && target) {
      failed++;
      if (fault.endsWith(' applied') && !fault.endsWith('not applied')) await commit(partition, records, offset);
      throw new Error(`transaction of partition ${partition} failed, outcome unknown`);
    }
    return commit(partition, records, offset);
  };
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
  const dlq = (w.kafka.topics.get(`${TOPIC}.dlq`) ?? []).flat();
  const keys = dlq.map(
    (d) =>
      `${headerString(d.headers, DLQ_HEADERS.sourcePartition)}@${headerString(d.headers, DLQ_HEADERS.sourceOffset)}`,
  );
  const twice = keys.filter((k, i) => keys.indexOf(k) !== i);
  expect({ deadLetters: new Set(keys).size, twice }).toEqual({ deadLetters: 360, twice: [] });
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
