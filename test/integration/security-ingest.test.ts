import { randomBytes, randomUUID } from 'node:crypto';
import autocannon from 'autocannon';
import pino from 'pino';
import { createKafka } from '../../src/kafka';
import { hashApiKey, startIngestServer, type RunningIngestServer } from '../../src/ingest';
import type { AnalyticsEvent } from '../../streams/event-counts';
import { createTestContext, type TestContext } from '../helpers/context';
import { readTopic } from '../helpers/topics';

const RATE_LIMIT = 100;

const makeEvent = (i: number): AnalyticsEvent => ({
  event_id: randomUUID(),
  event_type: 'click',
  user_id: `u-${i}`,
  campaign_id: null,
  ad_id: null,
  event_time: 1_700_000_000_000 + i,
  amount: null,
  properties: {},
});

interface Burst {
  requests: number;
  statuses: Map<number, number>;
  acceptedIds: string[];
  seconds: number;
}

/** A bounded burst from autocannon on loopback: `requests` POSTs of one fresh event each over `connections` connections. */
async function burst(
  url: string,
  headers: Record<string, string>,
  requests: number,
  connections: number,
): Promise<Burst> {
  const statuses = new Map<number, number>();
  const acceptedIds: string[] = [];
  let i = 0;
  const started = process.hrtime.bigint();
  const result = await autocannon({
    url: `${url}/v1/events`,
    connections,
    amount: requests,
    timeout: 20,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        setupRequest: (request) => ({ ...request, body: JSON.stringify(makeEvent(i++)) }),
        onResponse: (status, body) => {
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          if (status === 202) acceptedIds.push(...(JSON.parse(body) as { event_ids: string[] }).event_ids);
        },
      },
    ],
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  expect(result.errors).toBe(0);
  return { requests: result.requests.sent, statuses, acceptedIds, seconds };
}

/**
 * The ingest API under attack on loopback: requests without a valid key get
 * 401 and never reach Kafka (end offsets unchanged, even under a burst), and
 * the per-key rate limit holds under a burst from a load tool: no more
 * events accepted than the limit allows in the time taken, and exactly the
 * accepted events are in the topic.
 */
describe('ingest API under attack', () => {
  const key = `sk-${randomBytes(16).toString('hex')}`;
  let ctx: TestContext;
  let topic: string;
  let server: RunningIngestServer;
  /** Records a read_committed reader sees (each accepted request is a transaction, whose commit marker takes an offset too). */
  const endOffset = async () => (await readTopic(createKafka(ctx.config), topic)).length;

  beforeAll(async () => {
    ctx = await createTestContext('sec_ingest');
    topic = await ctx.createTopic('events', 3);
    server = await startIngestServer(ctx.config, {
      logger: pino({ level: 'silent' }),
      settings: { port: 0, topic, apiKeys: [hashApiKey(key)], rateLimitPerSecond: RATE_LIMIT },
    });
  });
  afterAll(async () => {
    await server?.close();
    await ctx.cleanup();
  });

  it('answers 401 to every way of presenting no valid key, and nothing reaches Kafka', async () => {
    const before = await endOffset();
    const attempts: Record<string, string>[] = [
      {},
      { authorization: 'Bearer' },
      { authorization: 'Bearer ' },
      { authorization: `Bearer ${key}x` },
      { authorization: `Bearer ${key.slice(0, -1)}` },
      { authorization: `Bearer ${key.toUpperCase()}` },
      { authorization: `Basic ${Buffer.from(`${key}:`).toString('base64')}` },
      { authorization: `Bearer ${hashApiKey(key)}` },
      { 'x-api-key': hashApiKey(key) },
      { 'x-api-key': ' ' },
      { authorization: `Bearer ${'a'.repeat(8000)}` },
    ];
    const statuses: number[] = [];
    for (const headers of attempts) {
      const response = await fetch(`${server.url}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(makeEvent(0)),
      });
      statuses.push(response.status);
      await response.text();
    }
    // The key in the query string is not a key either.
    const query = await fetch(`${server.url}/v1/events?api_key=${key}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(makeEvent(0)),
    });
    statuses.push(query.status);
    expect(statuses).toEqual(Array(attempts.length + 1).fill(401));

    // A burst of refused requests from the load tool: all 401, none produced.
    const refused = await burst(server.url, { authorization: `Bearer wrong-${key}` }, 400, 20);
    expect(Object.fromEntries(refused.statuses)).toEqual({ 401: 400 });
    expect(await endOffset()).toBe(before);

    // The valid key, to show this check would see a produced event.
    const ok = await fetch(`${server.url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key },
      body: JSON.stringify(makeEvent(1)),
    });
    expect(ok.status).toBe(202);
    expect(await endOffset()).toBe(before + 1);
  }, 60_000);

  it(`holds ${RATE_LIMIT} events/s per key under a burst, and exactly the accepted events reach the topic`, async () => {
    // A fresh key of the same deployment: its own budget, its own window.
    const burstKey = `sk-${randomBytes(16).toString('hex')}`;
    const limited = await startIngestServer(ctx.config, {
      logger: pino({ level: 'silent' }),
      settings: { port: 0, topic, apiKeys: [hashApiKey(burstKey)], rateLimitPerSecond: RATE_LIMIT },
    });
    const before = (await readTopic(createKafka(ctx.config), topic)).map((r) => r.key!.toString());
    let result: Burst;
    try {
      result = await burst(limited.url, { authorization: `Bearer ${burstKey}` }, 1500, 25);
    } finally {
      await limited.close();
    }
    const accepted = result.statuses.get(202) ?? 0;
    const limitedCount = result.statuses.get(429) ?? 0;
    // Fixed 1 s windows, each opened by the first event after the last one ended: at most floor(seconds) + 1 of them.
    const windows = Math.floor(result.seconds) + 1;
    console.log(
      `rate-limit burst: ${result.requests} requests over 25 connections in ${result.seconds.toFixed(2)} s: ${accepted} x 202, ${limitedCount} x 429 ` +
        `(limit ${RATE_LIMIT}/s, at most ${RATE_LIMIT * windows} in ${windows} window(s))`,
    );
    expect(result.requests).toBe(1500);
    expect(accepted + limitedCount).toBe(1500);
    expect(limitedCount).toBeGreaterThan(0);
    expect(accepted).toBeGreaterThanOrEqual(RATE_LIMIT);
    expect(accepted).toBeLessThanOrEqual(RATE_LIMIT * windows);

    const after = (await readTopic(createKafka(ctx.config), topic)).map((r) => r.key!.toString());
    const beforeSet = new Set(before);
    expect(after.filter((id) => !beforeSet.has(id)).sort()).toEqual([...result.acceptedIds].sort());
    expect(result.acceptedIds).toHaveLength(accepted);
  }, 60_000);
});
