import { event, produceAt, produceLateSchemaAt, START, world } from './edge-world';
import { LATE_SCHEMA_ID, readerSchema } from './workload';

/**
 * Found by a seventh review. In a fresh group, a verdict commit is the partition's first commit: Kafka's
 * committed offset goes from none to the initial offset. The runner's own record of it stayed none, so at
 * the next rebalance in which the member kept the partition it concluded another member had committed it
 * meanwhile, and restored it: its uncommitted work thrown away and done again, though nobody else had
 * touched the partition.
 */
describe('a verdict commit before the first regular commit, then a rebalance that keeps the partition', () => {
  it('does not make the member think another member committed its partition', async () => {
    const w = world(2);
    w.registry.register(LATE_SCHEMA_ID, readerSchema, START + 600_000);
    produceLateSchemaAt(w, 0, 50, 10_001);
    for (let s = 1; s <= 200; s++) {
      produceAt(w, 0, 60 + s * 20, event(s, START + 60 + s * 20));
      produceAt(w, 1, 60 + s * 20, event(1000 + s, START + 60 + s * 20));
    }
    const a = await w.drive(w.start({ processing: { flushIntervalMs: 100, commitIntervalMs: 600_000 } }));
    await w.scheduler.runUntil(START + 400);
    // The verdict commit landed: Kafka now has a committed offset for partition 0 (none before).
    expect(w.kafka.committed('sluice.event-counts').get(0)?.metadata).toContain('@');

    const restored: number[] = [];
    const runner = a.runner as unknown as { restoreAgain(p: number): void };
    const original = runner.restoreAgain.bind(runner);
    runner.restoreAgain = (p: number) => {
      restored.push(p);
      original(p);
    };
    // A second member joins: A keeps partition 0 (members in order, p % members).
    await w.drive(w.start({ processing: { flushIntervalMs: 100, commitIntervalMs: 600_000 } }));
    await w.scheduler.runUntil(START + 8_000);
    expect(restored).toEqual([]);
  }, 120_000);
});
