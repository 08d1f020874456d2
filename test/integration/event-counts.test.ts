import { computeExpected, produceWorkload, type ExpectedAnswer } from '../../src/generator';
import { createKafka } from '../../src/kafka';
import { startStream } from '../../src/process';
import eventCounts from '../../streams/event-counts';
import { createLogger } from '../../src/telemetry';
import { createTestContext, type TestContext } from '../helpers/context';
import { compareWithExpected } from '../helpers/reference';

/**
 * The reference stream end to end on the real stack: generator -> Kafka ->
 * decode, validate, dedup (Redis), windows -> ClickHouse, .dlq, .late; the
 * results compared with the answer computed from the generator's log alone.
 */
describe('reference stream event-counts, bounded run', () => {
  let ctx: TestContext;
  let topic: string;
  let expected: ExpectedAnswer;

  beforeAll(async () => {
    ctx = await createTestContext('evc');
    topic = await ctx.createTopic('events', 6);
    await ctx.createTopic('events.dlq', 1);
    await ctx.createTopic('events.late', 1);
    const produced = await produceWorkload({
      config: ctx.config,
      topic,
      count: 100_000,
      seed: 42,
      duplicateRatio: 0.02,
      outOfOrderMs: 30_000,
      lateRatio: 0.005,
      poisonRatio: 0.001,
      keepLog: true,
    });
    expected = computeExpected(produced.log!);
  });
  afterAll(async () => ctx.cleanup());

  it('writes each distinct event once, the exact window rows, every poison record to .dlq and every late event to .late', async () => {
    const running = await startStream(
      eventCounts,
      ctx.config,
      { bounded: true, groupId: ctx.group, topic },
      createLogger('warn'),
    );
    const summary = await running.done;
    console.log(JSON.stringify(summary));
    expect(summary.recordsIn).toBe(expected.records);

    const report = await compareWithExpected(ctx.clickhouse, createKafka(ctx.config), topic, expected);
    expect(report.problems).toEqual([]);

    // Dead letters: the original bytes, untouched, with their context.
    expect(report.deadLetters).toHaveLength(expected.deadLetters.length);
    const dlqValues = report.deadLetters.map((r) => r.value?.toString('base64')).sort();
    expect(dlqValues).toEqual(expected.deadLetters.map((d) => d.value).sort());
    for (const letter of report.deadLetters) {
      expect(letter.headers['sluice.dlq.source.topic']).toBe(topic);
      expect(letter.headers['sluice.dlq.stream']).toBe('event-counts');
      expect(Number(letter.headers['sluice.dlq.source.partition'])).toBeGreaterThanOrEqual(0);
      expect(letter.headers['sluice.dlq.error.class']).toBeTruthy();
      expect(letter.headers['sluice.dlq.error.message']).toBeTruthy();
    }
    // No valid event is dead-lettered.
    const dlqKeys = new Set(report.deadLetters.map((r) => r.key?.toString()));
    expect([...expected.eventIds].filter((id) => dlqKeys.has(id))).toEqual([]);

    // Late events: exactly the generator's, each once.
    expect(report.late.map((r) => r.key?.toString()).sort()).toEqual([...expected.lateEventIds].sort());
  }, 300_000);
});
