import { DLQ_HEADERS, headerString } from '../../src/dlq';
import { EVENT_COUNTS_PARTIAL } from '../../streams/event-counts/tables';
import type { PartitionTransactions } from '../../src/kafka/group';
import { TOPIC } from './world';
import { event, finish, lateCount, produceAt, produceLateSchemaAt, START, windowDiffs, world } from './edge-world';

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

  const a = await w.drive(
    w.start({ processing: { flushIntervalMs: 100, commitIntervalMs: kind === 'verdict' ? 600_000 : 5_000 } }),
  );
  const runner = a.runner as unknown as {
    transactions: PartitionTransactions;
    pending?: {
      checkpoint: { rows: Map<string, { rows: unknown[] }>; verdicts: unknown[]; offsets: unknown[] };
      progress: { rows: boolean };
    };
  };
  const transactions = runner.transactions;
  const commit = transactions.commit.bind(transactions);
  let failed = false;
  transactions.commit = async (partition, records, offset) => {
    const pending = runner.pending?.checkpoint;
    const closing = (pending?.rows.get(EVENT_COUNTS_PARTIAL.name)?.rows.length ?? 0) > 0;
    const rowsWritten = runner.pending?.progress.rows ?? false;
    const target =
      kind === 'verdict'
        ? closing && !rowsWritten && (pending?.verdicts.length ?? 0) > 0
        : rowsWritten && (pending?.offsets.length ?? 0) > 0;
    if (!failed && partition === 0 && target && w.scheduler.now() > START + 100_000) {
      failed = true;
      await w.scheduler.sleep(w.root, 300);
      void w.stop(a);
      await w.scheduler.sleep(w.root, 1);
      if (outcome === 'applied') await commit(partition, records, offset);
      throw new Error(`transaction of partition ${partition} failed, outcome unknown`);
    }
    return commit(partition, records, offset);
  };
  await w.scheduler.runUntil(START + 200_000);
  expect(failed).toBe(true);
  await w.drive(w.start({ processing: { flushIntervalMs: 100, commitIntervalMs: 5_000 } }));
  await w.scheduler.runUntil(START + 260_000);
  await finish(w);
  expect(windowDiffs(w, expected)).toEqual({});
  expect(lateCount(w)).toBe(0);
  const dlq = (w.kafka.topics.get(`${TOPIC}.dlq`) ?? []).flat();
  const keys = dlq.map(
    (d) =>
      `${headerString(d.headers, DLQ_HEADERS.sourcePartition)}@${headerString(d.headers, DLQ_HEADERS.sourceOffset)}`,
  );
  const twice = keys.filter((k, i) => keys.indexOf(k) !== i);
  expect({ deadLetters: new Set(keys).size, twice }).toEqual({ deadLetters: 360, twice: [] });
}

describe('a checkpoint commit of one of two partitions that fails as the member stops', () => {
  for (const kind of ['verdict', 'regular'] as const)
    for (const outcome of ['not applied', 'applied'] as const)
      it(`${kind} commit, ${outcome}`, () => scenario(kind, outcome), 120_000);
});
