import { randomUUID } from 'node:crypto';
import type { KafkaProducer } from '../../src/kafka';
import { startStream, type RunningStream } from '../../src/process';
import { createLogger } from '../../src/telemetry';
import eventCounts, { type AnalyticsEvent } from '../../streams/event-counts';
import { createTestContext, type TestContext } from '../helpers/context';
import { waitFor } from '../helpers/processes';
import { referenceSource } from '../helpers/topics';
import { sleep } from '../../src/clock';

/** The reference stream's idle timeout: a partition without records for this long stops holding the stream watermark. */
const IDLE_MS = eventCounts.windowed!.idleTimeoutMs;
const BASE = Date.UTC(2026, 0, 1, 10, 0, 0);
const WINDOW = { start: BASE, end: BASE + 60_000 };

/**
 * docs/design.md §3.5 / issue 5: a partition with no traffic does not stop windows
 * from closing once the idle timeout passes. An unbounded run on a
 * 3-partition topic: partition 0 keeps receiving events far past the
 * window, partition 1 receives a few events in the window and then nothing,
 * partition 2 never receives anything. Partition 1's partial of the window
 * closes only when the stream watermark (then partition 0's) passes it, which
 * it may only do after partitions 1 and 2 have been idle for the timeout:
 * not before, and without any end of input.
 */
describe('idle partitions release the stream watermark', () => {
  let ctx: TestContext;
  let topic: string;
  let producer: KafkaProducer;
  let encode: (event: AnalyticsEvent) => Buffer;
  let running: RunningStream | undefined;

  beforeAll(async () => {
    ctx = await createTestContext('idle');
    ({ topic, encode, producer } = await referenceSource(ctx, 3));
  });
  afterAll(async () => {
    await running?.stop().catch(() => undefined);
    await producer.disconnect();
    await ctx.cleanup();
  });

  const event = (eventTime: number, user: string, amount: number | null = null): AnalyticsEvent => ({
    event_id: randomUUID(),
    event_type: amount === null ? 'click' : 'purchase',
    user_id: user,
    campaign_id: 'camp-1',
    ad_id: null,
    event_time: eventTime,
    amount,
    properties: {},
  });
  const send = (partition: number, events: AnalyticsEvent[]) =>
    producer.send({ topic, messages: events.map((e) => ({ key: e.event_id, value: encode(e), partition })) });

  /** The window's partial rows in ClickHouse, by source partition. */
  async function partials(): Promise<Map<number, { events: number; users: string[] }>> {
    const rows = await (
      await ctx.clickhouse.query({
        query: `SELECT source_partition, events, users FROM event_counts_1m_partial FINAL
                WHERE window_start = toDateTime(${WINDOW.start / 1000}) AND event_type = 'click'`,
        format: 'JSONEachRow',
      })
    ).json<{ source_partition: number; events: string; users: string[] }>();
    return new Map(rows.map((r) => [Number(r.source_partition), { events: Number(r.events), users: r.users }]));
  }

  it("closes the quiet partition's window after the idle timeout and not before", async () => {
    running = await startStream(
      eventCounts,
      ctx.config,
      { groupId: ctx.group, topic, flushIntervalMs: 300 },
      createLogger('warn'),
    );
    await waitFor('all three partitions assigned', async () => running!.runner.status().assigned.length === 3, 30_000);

    // Partition 0: events in the window, then a tick every 500 ms far past it, until the test ends: it never goes idle.
    const p0Events = [
      event(WINDOW.start + 1000, 'u1'),
      event(WINDOW.start + 2000, 'u2'),
      event(WINDOW.start + 3000, 'u9'),
    ];
    await send(0, p0Events);
    let ticking = true;
    const ticker = (async () => {
      for (let i = 0; ticking; i++) {
        await send(0, [event(WINDOW.end + 300_000 + i * 1000, 'tick', 1)]);
        await sleep(500);
      }
    })();

    // Partition 1: a few events in the window, then silence. Partition 2: nothing, ever.
    const p1Events = [
      event(WINDOW.start + 10_000, 'u1'),
      event(WINDOW.start + 20_000, 'u3'),
      event(WINDOW.start + 30_000, 'u4'),
      event(WINDOW.start + 40_000, 'u3'),
    ];
    // Partition 1 is last active when it processes these, which cannot be before they are sent.
    const quietSince = Date.now();
    await send(1, p1Events);

    try {
      // Partition 0's own watermark closes its partial at once; partition 1's must wait for the timeout.
      let checksBeforeTimeout = 0;
      await waitFor("partition 0's partial of the window", async () => (await partials()).has(0), 30_000);
      for (;;) {
        const found = await partials();
        if (Date.now() >= quietSince + IDLE_MS) break;
        expect(found.has(1)).toBe(false);
        checksBeforeTimeout += 1;
        await sleep(500);
      }
      expect(checksBeforeTimeout).toBeGreaterThan(0);

      await waitFor("partition 1's partial of the window", async () => (await partials()).has(1), IDLE_MS + 30_000);
      const closedAfterMs = Date.now() - quietSince;
      console.log(
        JSON.stringify({ idleTimeoutMs: IDLE_MS, checksBeforeTimeout, partition1ClosedAfterMs: closedAfterMs }),
      );
      expect(closedAfterMs).toBeGreaterThanOrEqual(IDLE_MS);

      // The merged row is the window computed from the events sent, and nothing reached the side topics.
      const [merged] = await (
        await ctx.clickhouse.query({
          query: `SELECT events, distinct_users_in_window AS distinct_users FROM event_counts_1m
                  WHERE window_start = toDateTime(${WINDOW.start / 1000}) AND event_type = 'click' AND campaign_id = 'camp-1'`,
          format: 'JSONEachRow',
        })
      ).json<{ events: string; distinct_users: string }>();
      const all = [...p0Events, ...p1Events];
      expect(Number(merged!.events)).toBe(all.length);
      expect(Number(merged!.distinct_users)).toBe(new Set(all.map((e) => e.user_id)).size);
      const status = running.runner.status();
      expect(status.counters.late).toBe(0);
      expect(status.counters.deadLettered).toBe(0);
    } finally {
      ticking = false;
      await ticker;
    }
  }, 120_000);
});
