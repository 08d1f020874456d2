import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { DLQ_HEADERS, headerString, readTopic } from '../../src/dlq';
import type { ConsumedRecord } from '../../src/kafka';
import { createKafka } from '../../src/kafka';
import { loadStream, startStream, type StreamDefinition } from '../../src/process';
import { createEventProducer } from '../../src/produce';
import { createLogger } from '../../src/telemetry';
import { applyPlan, parseTopicFamily, planTopics } from '../../src/topics';
import { createTestContext, type TestContext } from '../helpers/context';

/**
 * A record the source topic accepts compressed (the SDK sends gzip) can be
 * larger than anything its side topics take uncompressed. Its dead letter
 * must still be written, and must not stop the stream: side records are
 * written compressed.
 */
describe('a dead letter larger than its side topic takes uncompressed', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext('oversized');
  });
  afterAll(async () => ctx.cleanup());

  it('is written whole, and the bounded run finishes with every offset committed', async () => {
    const specs = parseTopicFamily(readFileSync('topics/events.yaml', 'utf8'), 'topics/events.yaml', `${ctx.id}.`);
    await applyPlan(ctx.admin, await planTopics(ctx.admin, specs));
    const topic = `${ctx.id}.events`;
    const producer = createEventProducer<Record<string, unknown>>({
      config: ctx.config,
      topic,
      schema: 'analytics_event',
    });
    const blob = 'x'.repeat(3 * 1024 * 1024);
    const now = Date.now();
    await producer.sendBatch([
      { event_id: randomUUID(), event_type: 'view', user_id: 'u1', event_time: now, properties: {} },
      // Fits the schema; the stream refuses its event_type: a dead letter of 3 MiB.
      { event_id: randomUUID(), event_type: 'Not-A-Valid-Type', user_id: 'u2', event_time: now, properties: { blob } },
    ]);
    await producer.close();

    const stream = loadStream('event-counts') as StreamDefinition<unknown>;
    const running = await startStream(
      stream,
      ctx.config,
      { topic, bounded: true, groupId: ctx.group },
      createLogger('silent'),
    );
    const summary = await running.done; // before: "checkpoint failed for good" (MESSAGE_TOO_LARGE), on every restart
    expect(summary.deadLettered).toBe(1);

    const committed = await ctx.admin.fetchOffsets(ctx.group, [topic]);
    expect(committed[0]!.partitions.reduce((n, p) => n + Math.max(0, Number(p.offset)), 0)).toBe(2);
    const dead: ConsumedRecord[] = [];
    await readTopic(createKafka(ctx.config), `${topic}.dlq`, (r) => dead.push(r));
    expect(dead).toHaveLength(1);
    expect(headerString(dead[0]!.headers, DLQ_HEADERS.errorClass)).toBe('EVENT_INVALID');
    expect(dead[0]!.value!.length).toBeGreaterThan(3 * 1024 * 1024);
  }, 120_000);
});
