import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { hashApiKey, startIngestServer, type RunningIngestServer } from '../../src/ingest';
import { createKafka } from '../../src/kafka';
import { startStream } from '../../src/process';
import { createLogger } from '../../src/telemetry';
import eventCounts, { type AnalyticsEvent } from '../../streams/event-counts';
import { createTestContext, type TestContext } from '../helpers/context';
import { readTopic } from '../helpers/topics';

const KEY = 'ingest-stream-rules-key';
const MINUTE = 60_000;
/** The reference stream dead-letters an event stamped further than this ahead of its record. */
const AHEAD_LIMIT_MS = eventCounts.windowed!.maxEventTimeAheadMs!;
/** Ten minutes ago, on a minute: inside the validator's years and not ahead of any record timestamp. */
const BASE = Math.floor((Date.now() - 10 * MINUTE) / MINUTE) * MINUTE;

interface Answer {
  status: number;
  body: { error?: string; message?: string; issues?: { path: string; reason: string }[]; event_ids?: string[] };
}

/**
 * The ingest API refuses what the stream reading its topic would
 * dead-letter, with the stream's own reasons, and what it accepts the
 * stream takes whole: the reference stream run over the topic afterwards
 * dead-letters nothing and stores exactly the accepted events, with window
 * sums ClickHouse can hold.
 */
describe('ingest API applies the rules of the stream that reads its topic', () => {
  let ctx: TestContext;
  let topic: string;
  let server: RunningIngestServer;
  let seq = 0;
  /** Every event a 202 answered for, by id: what events_raw must hold. */
  const accepted = new Map<string, AnalyticsEvent>();

  const makeEvent = (overrides: Partial<AnalyticsEvent> = {}): AnalyticsEvent => {
    seq += 1;
    return {
      event_id: randomUUID(),
      event_type: 'click',
      user_id: `u-${seq}`,
      campaign_id: 'c-1',
      ad_id: null,
      event_time: BASE + seq * 100,
      amount: null,
      properties: {},
      ...overrides,
    };
  };

  async function post(body: unknown): Promise<Answer> {
    const res = await fetch(`${server.url}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Answer['body'] };
  }

  async function accept(events: AnalyticsEvent[]): Promise<void> {
    const answer = await post({ events });
    expect(answer.status).toBe(202);
    for (const e of events) accepted.set(e.event_id, e);
  }

  beforeAll(async () => {
    ctx = await createTestContext('ingest_rules');
    topic = await ctx.createTopic('events', 3);
    await ctx.createTopic('events.dlq', 1);
    await ctx.createTopic('events.late', 1);
    // The test's own topic: the reference stream is named as the one reading it (in production it is found by its source topic).
    server = await startIngestServer(ctx.config, {
      logger: pino({ level: 'silent' }),
      settings: {
        port: 0,
        adminPort: 0,
        topic,
        apiKeys: [hashApiKey(KEY)],
        rateLimitPerSecond: 100_000,
        rejectDuplicates: true,
      },
      streams: [eventCounts],
    });
  });
  afterAll(async () => {
    await server?.close();
    await ctx.cleanup();
  });

  it.each<[string, Partial<AnalyticsEvent>, RegExp]>([
    [
      'an upper-case event id',
      { event_id: randomUUID().toUpperCase() },
      /^event_id must be a lowercase canonical UUID/,
    ],
    ['a capitalised event type', { event_type: 'Purchase' }, /^event_type must be 1-64 of \[a-z0-9_\]/],
    ['an empty event type', { event_type: '' }, /^event_type must be/],
    ['an event type of 65 characters', { event_type: 'x'.repeat(65) }, /^event_type must be/],
    ['an empty user id', { user_id: '' }, /^user_id must be a non-empty string/],
    ['an empty campaign id', { campaign_id: '' }, /^campaign_id must be null or a non-empty string/],
    ['a negative amount', { amount: -0.01 }, /^amount must be null or a finite number >= 0, got -0.01/],
    [
      'an event time in seconds',
      { event_time: Math.floor(BASE / 1000) },
      /^event_time must be integer epoch ms in \[2000-01-01, 2100-01-01\)/,
    ],
    ['an event time in 2100', { event_time: Date.UTC(2100, 0, 1) }, /^event_time must be integer epoch ms/],
    [
      'an event time two hours ahead of the clock',
      { event_time: Date.now() + 2 * 3_600_000 },
      new RegExp(`^event time .* is more than ${AHEAD_LIMIT_MS} ms ahead`),
    ],
  ])('refuses %s with 400 and the stream validator reason', async (_name, overrides, reason) => {
    const event = makeEvent(overrides);
    const answer = await post(event);
    expect(answer.status).toBe(400);
    expect(answer.body.error).toBe('invalid_events');
    expect(answer.body.issues).toHaveLength(1);
    expect(answer.body.issues![0]!.path).toBe('(event)');
    expect(answer.body.issues![0]!.reason).toMatch(reason);
  });

  it('lists every reason of every event of a batch, and accepts none of it', async () => {
    const good = makeEvent();
    const bad = makeEvent({ event_id: randomUUID().toUpperCase(), event_type: 'View', amount: -1 });
    const answer = await post({ events: [good, bad, makeEvent({ user_id: '' })] });
    expect(answer.status).toBe(400);
    expect(answer.body.issues!.map((i) => [i.path, i.reason.split(' ')[0]])).toEqual([
      ['events[1]', 'event_id'],
      ['events[1]', 'event_type'],
      ['events[1]', 'amount'],
      ['events[2]', 'user_id'],
    ]);
    // Schema issues and the stream's reasons together, each event by its own path.
    const mixed = await post([makeEvent({ event_type: 'Click' }), { ...makeEvent(), amount: 'lots' }]);
    expect(mixed.body.issues).toEqual([
      { path: '[0]', reason: 'event_type must be 1-64 of [a-z0-9_] starting with a letter, got "Click"' },
      { path: '[1].amount', reason: 'expected null or double, got string "lots"' },
    ]);
    await accept([good]);
  });

  it('treats case variants of an event id as the same event: only the lowercase one is accepted', async () => {
    const event = makeEvent();
    await accept([event]);
    const variant = await post({ ...event, event_id: event.event_id.toUpperCase() });
    expect(variant.status).toBe(400);
    expect(variant.body.issues![0]!.reason).toMatch(/^event_id must be a lowercase canonical UUID/);
  });

  it('refuses amounts whose window sums would overflow, and accepts the largest allowed', async () => {
    // Two of these in one window sum to Infinity, which ClickHouse refuses.
    expect(1e308 + 1e308).toBe(Infinity);
    const huge = await post([
      makeEvent({ event_type: 'purchase', amount: 1e308 }),
      makeEvent({ event_type: 'purchase', amount: 1e308 }),
    ]);
    expect(huge.status).toBe(400);
    expect(huge.body.issues!.map((i) => i.path)).toEqual(['[0]', '[1]']);
    expect(huge.body.issues![0]!.reason).toMatch(/^amount must be at most 1000000000000/);
    expect((await post(makeEvent({ event_type: 'purchase', amount: 1e12 + 0.01 }))).status).toBe(400);
    // The bound itself, twice in one window (and campaign), with cents below it.
    await accept([
      makeEvent({ event_type: 'purchase', campaign_id: 'big', amount: 1e12, event_time: BASE + 1000 }),
      makeEvent({ event_type: 'purchase', campaign_id: 'big', amount: 1e12, event_time: BASE + 2000 }),
      makeEvent({ event_type: 'purchase', campaign_id: 'big', amount: 999_999_999_999.99, event_time: BASE + 3000 }),
    ]);
  });

  it('the stream dead-letters nothing the API accepted and stores exactly those events', async () => {
    await accept(
      Array.from({ length: 20 }, (_, i) =>
        makeEvent({ event_type: ['view', 'click', 'signup'][i % 3]!, amount: i % 4 === 0 ? i + 0.25 : null }),
      ),
    );
    const running = await startStream(
      eventCounts,
      ctx.config,
      { bounded: true, groupId: ctx.group, topic },
      createLogger('warn'),
    );
    const summary = await running.done;
    const inTopic = await readTopic(createKafka(ctx.config), topic);
    expect(inTopic.map((r) => r.key!.toString()).sort()).toEqual([...accepted.keys()].sort());
    expect(summary.recordsIn).toBe(accepted.size);
    expect(await readTopic(createKafka(ctx.config), `${topic}.dlq`)).toEqual([]);

    const raw = await (
      await ctx.clickhouse.query({ query: 'SELECT event_id FROM events_raw FINAL', format: 'JSONEachRow' })
    ).json<{ event_id: string }>();
    expect(raw.map((r) => r.event_id).sort()).toEqual([...accepted.keys()].sort());
    // Window sums computed here, in cents, from what was accepted.
    const cents = new Map<string, number>();
    for (const e of accepted.values()) {
      const key = `${Math.floor(e.event_time / MINUTE) * 60}|${e.event_type}|${e.campaign_id ?? ''}`;
      cents.set(key, (cents.get(key) ?? 0) + Math.round((e.amount ?? 0) * 100));
    }
    const rows = await (
      await ctx.clickhouse.query({
        query:
          'SELECT toUInt32(window_start) AS w, event_type, campaign_id, sum(amount) AS amount FROM event_counts_1m GROUP BY w, event_type, campaign_id',
        format: 'JSONEachRow',
      })
    ).json<{ w: number; event_type: string; campaign_id: string; amount: number }>();
    const stored = new Map(
      rows.map((r) => [`${r.w}|${r.event_type}|${r.campaign_id}`, Math.round(Number(r.amount) * 100)]),
    );
    expect(stored).toEqual(cents);
    expect([...stored.values()].some((c) => c === 299_999_999_999_999)).toBe(true);
  });
});
