import { randomUUID } from 'node:crypto';
import { DLQ_HEADERS, headerString, readTopic } from '../../src/dlq';
import type { ConsumedRecord } from '../../src/kafka';
import { createKafka } from '../../src/kafka';
import { defineStream, startStream } from '../../src/process';
import { loadAvroSchema, SchemaCodec } from '../../src/schema';
import { createLogger } from '../../src/telemetry';
import eventCounts from '../../streams/event-counts';
import { createTestContext, type TestContext } from '../helpers/context';

/**
 * A row ClickHouse can never take must not stop the stream. Two events whose
 * amounts each fit the money column (Decimal(18, 2), written exactly up to 15
 * digits) but whose sum does not make a window row the sink refuses: the
 * window partial is dead-lettered, with the table, window and group named, and
 * every other row is written. (The reference validator bounds amounts at 1e12,
 * so the stream here accepts larger ones, as a stream without that bound would.)
 */
describe('rows the sink refuses', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext('refused');
  });
  afterAll(async () => ctx.cleanup());

  it('go to the dead-letter topic as what they were made from, and the bounded run finishes with every other row written', async () => {
    const topic = await ctx.createTopic('events', 1);
    const dlq = await ctx.createTopic('events.dlq', 1);
    await ctx.createTopic('events.late', 1);
    const lenient = defineStream({
      ...eventCounts,
      validate(value) {
        const amount = value.amount;
        const result = eventCounts.validate({
          ...value,
          amount: typeof amount === 'number' && amount > 1e12 ? 1 : amount,
        });
        return result.ok ? { ok: true, event: { ...result.event, amount: amount as number | null } } : result;
      },
    });
    const codec = SchemaCodec.fromConfig(ctx.config);
    const schemaId = await codec.register(`${topic}-value`, loadAvroSchema('analytics_event.v2'));
    const t0 = Date.UTC(2026, 3, 1, 10, 0, 0);
    const event = (type: string, seconds: number, amount: number | null) => ({
      event_id: randomUUID(),
      event_type: type,
      user_id: `u${seconds}`,
      campaign_id: 'c1',
      ad_id: null,
      event_time: t0 + seconds * 1000,
      amount,
      properties: {},
      channel: 'web',
    });
    const events = [
      event('purchase', 1, 6e12),
      event('purchase', 2, 6e12),
      event('purchase', 3, 2.5),
      event('view', 4, null),
      event('view', 70, null),
    ];
    const producer = createKafka(ctx.config).producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: await Promise.all(
        events.map(async (e) => ({ key: e.event_id, value: await codec.encode(schemaId, e) })),
      ),
    });
    await producer.disconnect();

    const running = await startStream(
      lenient,
      ctx.config,
      { bounded: true, groupId: ctx.group, topic },
      createLogger('silent'),
    );
    const summary = await running.done; // before: rejected with "checkpoint failed for good", and again on every restart

    expect(summary.recordsIn).toBe(5);
    const rows = async (sql: string) =>
      (await ctx.clickhouse.query({ query: sql, format: 'JSONEachRow' })).json<Record<string, unknown>>();
    expect((await rows(`SELECT count() AS n FROM events_raw FINAL`))[0]!.n).toBe('5');
    const windows = await rows(
      `SELECT event_type, toUnixTimestamp(window_start) AS ws, events FROM event_counts_1m_partial FINAL ORDER BY ws, event_type`,
    );
    expect(windows.map((w) => [w.event_type, Number(w.ws) - t0 / 1000, Number(w.events)])).toEqual([
      ['view', 0, 1],
      ['view', 60, 1],
    ]);

    const dead: ConsumedRecord[] = [];
    await readTopic(createKafka(ctx.config), dlq, (r) => dead.push(r));
    expect(dead).toHaveLength(1);
    const [partial] = dead as [ConsumedRecord];
    expect(headerString(partial.headers, DLQ_HEADERS.errorClass)).toBe('SINK_ROW_REFUSED');
    expect(headerString(partial.headers, 'sluice.dlq.kind')).toBe('window-partial');
    expect(headerString(partial.headers, 'sluice.dlq.table')).toBe('event_counts_1m_partial');
    expect(headerString(partial.headers, 'sluice.dlq.window.start')).toBe(new Date(t0).toISOString());
    expect(headerString(partial.headers, DLQ_HEADERS.errorMessage)).toMatch(
      /amount: 12000000000002\.5 does not fit Decimal\(18, 2\) exactly/,
    );
    const row = JSON.parse(partial.value!.toString()) as Record<string, unknown>;
    expect([row.event_type, row.events, row.amount]).toEqual(['purchase', 3, 12000000000002.5]);
  }, 120_000);
});
