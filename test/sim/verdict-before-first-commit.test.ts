import { event, produceAt, produceLateSchemaAt, START, world } from './edge-world';
import { LATE_SCHEMA_ID, readerSchema } from './workload';

/**
 * Found by a sixth review. A partition with no state in Kafka's metadata (a fresh group) starts by saving
 * an empty snapshot e. A record of a schema the registry does not know yet arrives, and the next flush
 * first commits the committed offset again with the verdict: its metadata named only e, saved a moment
 * before, with nothing older to fall back to. Redis then lost its last second, e with it, and every
 * restore found the metadata naming e, e missing: StateMissingError, the stream stopped for good. Such a
 * commit now names no snapshot, as Kafka's metadata did not before; a restore starts without state and
 * keeps the verdict.
 */
describe('a verdict recorded before the first commit', () => {
  it('does not leave Kafka naming a snapshot Redis can lose with nothing older to fall back to', async () => {
    const w = world(1);
    w.registry.register(LATE_SCHEMA_ID, readerSchema, START + 600_000);
    // x: a record of the not yet registered schema; then ordinary records, whose raw rows a flush writes.
    produceLateSchemaAt(w, 0, 50, 10_001);
    for (let s = 1; s <= 50; s++) produceAt(w, 0, 60 + s * 20, event(s, START + 60 + s * 20));

    const a = await w.drive(w.start({ processing: { flushIntervalMs: 100, commitIntervalMs: 60_000 } }));
    await w.scheduler.runUntil(START + 400);
    const committed = w.kafka.committed(`sluice.event-counts`).get(0);
    // The verdict was recorded: Kafka's committed metadata holds the span and names no snapshot.
    expect(committed?.metadata).toBe('sluice-state:0://2@0-0');

    // Redis loses its last second of writes (the empty snapshot among them), and restarts.
    w.redis.crash(1000);
    w.redis.restart();
    await w.scheduler.runUntil(START + 30_000);

    // The member learns of the restart and restores its partition from Kafka's metadata.
    const outcome = await Promise.race([a.done, Promise.resolve('running')]);
    expect(outcome instanceof Error ? outcome.message : outcome).toBe('running');
  }, 120_000);
});
