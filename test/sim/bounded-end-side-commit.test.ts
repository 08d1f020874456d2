import type { PartitionTransactions } from '../../src/kafka/group';
import { event, produceAt, START, windowDiffs, windowPartialDeadLetters, world } from './edge-world';

/**
 * Found by a review. A bounded run closes every open window at its end, writes their rows without
 * committing, then commits the dead letters of the rows ClickHouse refused at the offset its last commit
 * already holds. When that transaction applied but its answer was lost, the partition was redone from the
 * committed offset, the same as before the transaction, so nothing told the redo that the dead letters
 * were published, and they were published again. Now that commit's metadata says so (closed-at-end), and
 * closing the windows again at that offset publishes nothing.
 */
describe('a bounded run whose last (side) commit applies but its answer is lost', () => {
  it('publishes each refused window partial once', async () => {
    const w = world(1);
    w.faults.refusedEventTypes.add('refused');
    const expected = new Map<string, number>();
    // Two minutes of events; the last minute's windows are still open at the end and close there.
    for (let s = 1; s <= 1200; s++) {
      const t = START + s * 100;
      const type = s % 10 === 0 ? 'refused' : 'view';
      produceAt(w, 0, s * 100, event(s, t, type));
      if (type === 'view') {
        const k = `p0@m${Math.floor((t - START) / 60_000)}`;
        expected.set(k, (expected.get(k) ?? 0) + 1);
      }
    }
    await w.scheduler.runUntil(START + 130_000);
    const a = await w.drive(
      w.start({ bounded: true, processing: { flushIntervalMs: 100, commitIntervalMs: 600_000 } }),
    );
    const runner = a.runner as unknown as { transactions: PartitionTransactions; task: { closeAllWindows(): void } };
    const closeAll = runner.task.closeAllWindows.bind(runner.task);
    let closed = false;
    runner.task.closeAllWindows = () => {
      closed = true;
      closeAll();
    };
    const transactions = runner.transactions;
    const commit = transactions.commit.bind(transactions);
    let lost = 0;
    transactions.commit = async (partition, records, offset) => {
      if (closed && lost === 0 && records.length > 0) {
        lost++;
        await commit(partition, records, offset); // applies
        throw new Error(`transaction of partition ${partition} failed, outcome unknown`); // its answer is lost
      }
      return commit(partition, records, offset);
    };
    const outcome = await w.drive(a.done);
    if (outcome instanceof Error) throw outcome;
    expect(lost).toBe(1);
    expect(windowDiffs(w, expected)).toEqual({});
    expect(windowPartialDeadLetters(w)).toEqual({ some: true, twice: [] });
  }, 120_000);
});

/**
 * The same with the Kafka model's own failure, strict as kafkajs (the partition's producer is given up, so
 * the redo fences it again before committing): the side transaction applies and its answer is lost.
 */
describe('a bounded run whose side commit applies and loses its answer (the model, strict as kafkajs)', () => {
  it('publishes each refused window partial once', async () => {
    const w = world(1);
    w.faults.refusedEventTypes.add('refused');
    for (let s = 1; s <= 1200; s++) {
      const t = START + s * 100;
      produceAt(w, 0, s * 100, event(s, t, s % 10 === 0 ? 'refused' : 'view'));
    }
    await w.scheduler.runUntil(START + 130_000);
    const a = await w.drive(
      w.start({ bounded: true, processing: { flushIntervalMs: 100, commitIntervalMs: 600_000 } }),
    );
    const runner = a.runner as unknown as { transactions: PartitionTransactions; task: { closeAllWindows(): void } };
    const closeAll = runner.task.closeAllWindows.bind(runner.task);
    let failures = 0;
    const failuresSoFar = () => failures;
    let armed = false;
    runner.task.closeAllWindows = () => {
      armed = failuresSoFar() === 0; // the first finish only
      closeAll();
    };
    const transactions = runner.transactions;
    const commit = transactions.commit.bind(transactions);
    transactions.commit = async (partition, records, offset) => {
      const fail = armed && records.length > 0;
      if (fail) {
        armed = false;
        failures++;
        // The next transaction applies and fails after it applied ('after': the second draw is not < 0.5).
        w.kafka.transactionFailure = 1;
        w.kafka.random = () => 0.9;
      }
      try {
        return await commit(partition, records, offset);
      } finally {
        if (fail) {
          w.kafka.transactionFailure = 0;
          w.kafka.random = () => 1;
        }
      }
    };
    const outcome = await w.drive(a.done);
    if (outcome instanceof Error) throw outcome;
    expect(failures).toBe(1);
    expect(windowPartialDeadLetters(w)).toEqual({ some: true, twice: [] });
  }, 120_000);
});
