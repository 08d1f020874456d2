import { randomUUID } from 'node:crypto';
import type { KafkaProducer } from '../../src/kafka';
import { startStream, type RunningStream, type StreamDefinition } from '../../src/process';
import { executeReplay, planReplay } from '../../src/replay';
import { createLogger } from '../../src/telemetry';
import eventCounts, { type AnalyticsEvent } from '../../streams/event-counts';
import { createTestContext, type TestContext } from '../helpers/context';
import { waitFor } from '../helpers/processes';
import { referenceSource } from '../helpers/topics';

const BASE = Date.UTC(2026, 10, 1, 10, 0, 0); // a past minute
const W = { start: BASE, end: BASE + 60_000 };

/**
 * A shadow replay runs beside the live stream, and ends where the live group
 * had committed when it was planned. A window of the range the live stream
 * completes after that (with events past that offset) is one the replay can
 * only close at its end with part of its events: its row must not win the
 * swap over the live stream's complete one. The replay's window rows carry
 * the version of the moment its data is complete to (the snapshot the live
 * group's commit names), so the live row, written later, is kept, and the
 * swap says so (liveNewer).
 */
describe('sluice replay --shadow of a window the live stream completes after the plan', () => {
  let ctx: TestContext;
  let topic: string;
  let producer: KafkaProducer;
  let encode: (event: AnalyticsEvent) => Buffer;
  let live: RunningStream | undefined;

  beforeAll(async () => {
    ctx = await createTestContext('shadowlivenewer');
    ({ topic, encode, producer } = await referenceSource(ctx, 1));
  }, 60_000);
  afterAll(async () => {
    await live?.stop().catch(() => undefined);
    await producer?.disconnect();
    await ctx?.cleanup();
  });

  const event = (eventTime: number, user: string): AnalyticsEvent => ({
    event_id: randomUUID(),
    event_type: 'click',
    user_id: user,
    campaign_id: 'camp-1',
    ad_id: null,
    event_time: eventTime,
    amount: null,
    properties: {},
  });
  const send = (events: AnalyticsEvent[]) =>
    producer.send({
      topic,
      messages: events.map((e) => ({ key: e.event_id, value: encode(e), partition: 0 })),
    });
  const windowEvents = async () => {
    const [row] = await (
      await ctx.clickhouse.query({
        query: `SELECT sum(events) AS n FROM event_counts_1m_partial FINAL WHERE window_start = toDateTime(${W.start / 1000})`,
        format: 'JSONEachRow',
      })
    ).json<{ n: string }>();
    return Number(row?.n ?? 0);
  };
  const committed = async () => {
    const [t] = await ctx.admin.fetchOffsets(ctx.group, [topic]);
    return Number(t?.partitions[0]?.offset ?? -1);
  };

  it('keeps the complete live window (10 events) after the swap', async () => {
    live = await startStream(
      eventCounts,
      ctx.config,
      { groupId: ctx.group, topic, flushIntervalMs: 200, commitIntervalMs: 200 },
      createLogger('warn'),
    );
    await waitFor('assigned', async () => live!.runner.status().assigned.length === 1, 30_000);
    await send([1, 2, 3, 4, 5].map((i) => event(W.start + i * 1000, `u${i}`)));
    await waitFor('live committed the first five', async () => (await committed()) === 5, 30_000);

    // What `sluice replay --shadow` does first: plan (its end = the live group's committed offset now).
    const plan = await planReplay(ctx.admin, ctx.clickhouse, eventCounts as unknown as StreamDefinition<unknown>, {
      from: { kind: 'time', ms: W.start },
      to: { kind: 'time', ms: W.end },
      group: ctx.group,
      topic,
      shadow: true,
    });
    expect(plan.partitions[0]!.end).toBe('5');
    expect(plan.partitions[0]!.committedAt).toEqual(expect.any(Number)); // when the live stream had read those five

    // Meanwhile the live stream goes on: five more events of W, then one that closes W.
    await send([6, 7, 8, 9, 10].map((i) => event(W.start + i * 1000, `u${i}`)));
    await send([event(W.end + 5 * 60_000, 'closer')]);
    await waitFor('live wrote W complete', async () => (await windowEvents()) === 10, 30_000);
    await live.stop();
    live = undefined;
    expect(await windowEvents()).toBe(10);

    // ...and then the replay runs the plan: W from its first five events only.
    const result = await executeReplay(
      ctx.config,
      eventCounts as unknown as StreamDefinition<unknown>,
      plan,
      createLogger('warn'),
    );
    expect(result.windowRowsWritten).toBe(1);
    expect(result.swaps!.find((s) => s.table === 'event_counts_1m_partial')).toMatchObject({
      rowsRebuilt: 1,
      liveNewer: 1,
    });
    expect(await windowEvents()).toBe(10);
  }, 180_000);
});
