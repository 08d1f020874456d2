import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { hashApiKey, startIngestServer, type RunningIngestServer } from '../../src/ingest';
import { createKafka } from '../../src/kafka';
import { startStream } from '../../src/process';
import { createEventProducer, EventValidationError, type EventProducer } from '../../src/produce';
import { createLogger } from '../../src/telemetry';
import eventCounts, { type AnalyticsEvent } from '../../streams/event-counts';
import { createTestContext, type TestContext } from '../helpers/context';
import { readTopic } from '../helpers/topics';

const KEY = 'validator-agreement-key';
const MINUTE = 60_000;
/** Ten minutes ago, on a minute: inside the validator's years and behind every record timestamp. */
const BASE = Math.floor((Date.now() - 10 * MINUTE) / MINUTE) * MINUTE;

type Verdict = 'accepted' | 'refused';

/**
 * "202 means it will count": the same edge events go through the three doors
 * an event has (the HTTP ingest API, the producer SDK given the stream, and
 * the stream itself, run bounded over a topic they were written to without
 * any check), and the three verdicts agree event by event; the SDK's reasons
 * are the API's, and the stream dead-letters with them.
 */
describe('ingest, SDK and stream agree on every event', () => {
  let ctx: TestContext;
  let server: RunningIngestServer;
  let sdk: EventProducer<AnalyticsEvent>;
  let streamTopic: string;

  let seq = 0;
  const event = (overrides: Partial<AnalyticsEvent> = {}): AnalyticsEvent => {
    seq += 1;
    return {
      event_id: randomUUID(),
      event_type: 'purchase',
      user_id: `u-${seq}`,
      campaign_id: 'c-1',
      ad_id: null,
      event_time: BASE + seq * 1000,
      amount: 1.5,
      properties: {},
      ...overrides,
    };
  };
  const cases: [string, AnalyticsEvent][] = [
    ['a valid event', event()],
    ['a valid event without an amount', event({ amount: null, event_type: 'view' })],
    ['the largest amount allowed (1e12)', event({ amount: 1e12 })],
    ['event_time in seconds', event({ event_time: Math.floor(BASE / 1000) })],
    ['an upper-case UUID', event({ event_id: randomUUID().toUpperCase() })],
    ['a negative amount', event({ amount: -5 })],
    ['an amount above 1e12', event({ amount: 1e12 + 1 })],
    ['an event time two hours in the future', event({ event_time: Date.now() + 2 * 60 * MINUTE })],
    ['an event time in 2100', event({ event_time: Date.UTC(2100, 0, 1) })],
    ['an upper-case UUID and a negative amount', event({ event_id: randomUUID().toUpperCase(), amount: -1 })],
    ['another valid event', event({ event_type: 'click', campaign_id: null })],
  ];

  beforeAll(async () => {
    ctx = await createTestContext('validator_agreement');
    const ingestTopic = await ctx.createTopic('ingest', 1);
    const sdkTopic = await ctx.createTopic('sdk', 1);
    streamTopic = await ctx.createTopic('events', 2);
    await ctx.createTopic('events.dlq', 1);
    await ctx.createTopic('events.late', 1);
    server = await startIngestServer(ctx.config, {
      logger: pino({ level: 'silent' }),
      settings: { port: 0, adminPort: 0, topic: ingestTopic, apiKeys: [hashApiKey(KEY)], rateLimitPerSecond: 0 },
      streams: [eventCounts],
    });
    sdk = createEventProducer<AnalyticsEvent>({
      config: ctx.config,
      topic: sdkTopic,
      schema: 'analytics_event',
      streams: [eventCounts],
    });
  });
  afterAll(async () => {
    await sdk?.close();
    await server?.close();
    await ctx?.cleanup();
  });

  it('gives the same verdict, with the same reasons, through HTTP, the SDK and the stream', async () => {
    const ingest = new Map<string, { verdict: Verdict; reasons: string[] }>();
    for (const [name, e] of cases) {
      const res = await fetch(`${server.url}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(e),
      });
      const body = (await res.json()) as { issues?: { reason: string }[] };
      expect([name, [202, 400].includes(res.status)]).toEqual([name, true]);
      ingest.set(e.event_id, {
        verdict: res.status === 202 ? 'accepted' : 'refused',
        reasons: (body.issues ?? []).map((i) => i.reason),
      });
    }

    const viaSdk = new Map<string, { verdict: Verdict; reasons: string[] }>();
    for (const [, e] of cases) {
      try {
        await sdk.send(e);
        viaSdk.set(e.event_id, { verdict: 'accepted', reasons: [] });
      } catch (err) {
        expect(err).toBeInstanceOf(EventValidationError);
        viaSdk.set(e.event_id, {
          verdict: 'refused',
          reasons: (err as EventValidationError).issues.map((i) => i.reason),
        });
      }
    }

    // The stream sees every event: written with the schema check alone, as a producer that skips the rules would.
    const unchecked = createEventProducer<AnalyticsEvent>({
      config: ctx.config,
      topic: streamTopic,
      schema: 'analytics_event',
    });
    try {
      await unchecked.sendBatch(cases.map(([, e]) => e));
    } finally {
      await unchecked.close();
    }
    const running = await startStream(
      eventCounts,
      ctx.config,
      { bounded: true, groupId: ctx.group, topic: streamTopic },
      createLogger('warn'),
    );
    await running.done;
    const raw = await (
      await ctx.clickhouse.query({ query: 'SELECT event_id FROM events_raw FINAL', format: 'JSONEachRow' })
    ).json<{ event_id: string }>();
    const stored = new Set(raw.map((r) => r.event_id));
    const deadLetters = new Map(
      (await readTopic(createKafka(ctx.config), `${streamTopic}.dlq`)).map((r) => [
        r.key!.toString(),
        r.headers['sluice.dlq.error.message'] ?? '',
      ]),
    );

    const table = cases.map(([name, e]) => ({
      name,
      ingest: ingest.get(e.event_id)!.verdict,
      sdk: viaSdk.get(e.event_id)!.verdict,
      stream: stored.has(e.event_id) ? 'accepted' : deadLetters.has(e.event_id) ? 'refused' : 'missing',
    }));
    // Event by event, the three doors agree (and each event got a verdict from the stream).
    expect(table).toEqual(table.map((row) => ({ ...row, sdk: row.ingest, stream: row.ingest })));
    // Both edges are exercised.
    expect(table.filter((r) => r.ingest === 'accepted').map((r) => r.name)).toEqual([
      'a valid event',
      'a valid event without an amount',
      'the largest amount allowed (1e12)',
      'another valid event',
    ]);
    for (const [name, e] of cases) {
      // The SDK refuses with the API's reasons...
      // (The time-ahead reason names the moment of the check, which differs between the two.)
      const untimed = (reasons: string[]) => reasons.map((r) => r.replace(/received, \S+$/, 'received, <time>'));
      expect([name, untimed(viaSdk.get(e.event_id)!.reasons)]).toEqual([
        name,
        untimed(ingest.get(e.event_id)!.reasons),
      ]);
      // ...which the stream's validator gives when it dead-letters the event (the time-ahead bound has its own words).
      const reasons = ingest.get(e.event_id)!.reasons.filter((r) => !r.startsWith('event time '));
      for (const reason of reasons)
        expect([name, deadLetters.get(e.event_id)]).toEqual([name, expect.stringContaining(reason)]);
    }
  });
});
