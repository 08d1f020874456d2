import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { sleep } from '../../src/clock';
import { loadConfig } from '../../src/config';
import { createIngestApp } from '../../src/ingest';
import { hashApiKey } from '../../src/ingest/auth';
import { createIdempotencyStore, type IdempotencyStoreOptions } from '../../src/ingest/idempotency';
import { createEventProducer, type EventProducer, type SentEvent } from '../../src/produce';
import { createTestContext, type TestContext } from '../helpers/context';

/** The ingest API's Idempotency-Key on the real Redis, with producers that record what they were asked to send. */
const API_KEY = 'idempotency-spec-key';
let ctx: TestContext;
const servers: Server[] = [];
const validator = createEventProducer<Record<string, unknown>>({
  config: loadConfig({}),
  topic: 'unused',
  schema: 'analytics_event',
});

beforeAll(async () => {
  ctx = await createTestContext('idempotency');
});
afterAll(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
  await validator.close();
  await ctx.cleanup();
});

const store = (options: IdempotencyStoreOptions) =>
  createIdempotencyStore(ctx.redis, ctx.config.redis.keyPrefix, { ttlSeconds: 3600, ...options });

/** One `sluice serve` for `topic`, sharing Redis and its key prefix with every other serve of the deployment. */
async function serve(
  topic: string,
  produced: Record<string, unknown>[][],
  opts: { pendingMs?: number; send?: () => Promise<void> } = {},
): Promise<string> {
  const producer: EventProducer<Record<string, unknown>> = {
    ...validator,
    validate: (e) => validator.validate(e),
    async sendBatch(events): Promise<SentEvent[]> {
      await opts.send?.();
      produced.push([...events]);
      return events.map((e, i) => ({
        key: String(e.event_id),
        partition: 0,
        offset: String(produced.length * 100 + i),
      }));
    },
  };
  const app = createIngestApp({
    settings: { ...loadConfig({}).ingest, topic },
    producer,
    apiKeyHashes: new Set([hashApiKey(API_KEY)]),
    rateLimiter: { limit: 0, windowMs: 1000, take: async () => ({ allowed: true, retryAfterMs: 0 }) },
    idempotency: store({ topic, pendingMs: opts.pendingMs }),
    ready: async () => undefined,
    logger: pino({ level: 'silent' }),
    idField: 'event_id',
  });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/events`;
}

const event = (id: string) => ({
  event_id: id,
  event_type: 'click',
  user_id: 'u1',
  campaign_id: null,
  ad_id: null,
  event_time: Date.now() - 1000,
  amount: null,
  properties: {},
});

async function post(url: string, body: unknown, key: string) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json', 'idempotency-key': key },
    body: JSON.stringify(body),
  });
  return { status: res.status, replayed: res.headers.get('idempotent-replayed') };
}

describe('Idempotency-Key', () => {
  it('is one request to one topic: the same key and body sent to another topic is produced there', async () => {
    const orders: Record<string, unknown>[][] = [];
    const audit: Record<string, unknown>[][] = [];
    const toOrders = await serve(ctx.topic('orders'), orders);
    const toAudit = await serve(ctx.topic('audit'), audit);
    const body = event('0b7e2f7e-54a7-4c84-9a5e-8d9c1c6f0c11');
    expect(await post(toOrders, body, 'req-1')).toEqual({ status: 202, replayed: null });
    expect(await post(toAudit, body, 'req-1')).toEqual({ status: 202, replayed: null });
    expect(await post(toAudit, body, 'req-1')).toEqual({ status: 202, replayed: 'true' });
    expect([orders.length, audit.length]).toEqual([1, 1]);
  });

  it('a send that outlasts the claim time keeps its key: a retry meanwhile is told to wait, and nothing is produced twice', async () => {
    const produced: Record<string, unknown>[][] = [];
    let calls = 0;
    // 1.2 s of claim time stands for serve's 60 s; the first send takes longer than it and then fails. (At
    // 300 ms, renewed every 100 ms, a CI machine busy with other suites once let the claim lapse.)
    const url = await serve(ctx.topic('slow'), produced, {
      pendingMs: 1200,
      send: async () => {
        const n = ++calls;
        await sleep(n === 1 ? 2800 : 200);
        if (n === 1) throw new Error('kafka timed out');
      },
    });
    const body = event('6a1b1f8e-3c1d-4a57-8d1e-0f5b2a7d9e22');
    const first = post(url, body, 'req-2');
    await sleep(1800); // past the claim time, while the first send runs
    const retry = await post(url, body, 'req-2');
    expect(retry.status).toBe(409);
    expect((await first).status).toBe(503); // failed: the key is given up
    expect((await post(url, body, 'req-2')).status).toBe(202);
    expect(await post(url, body, 'req-2')).toEqual({ status: 202, replayed: 'true' });
    expect(produced).toHaveLength(1);
  });

  it('a request never releases or answers for a claim that expired and was taken by another', async () => {
    const keys = store({ topic: ctx.topic('claims'), pendingMs: 200 });
    const lost = await keys.begin('client', 'req-3');
    if (lost.state !== 'claimed') throw new Error(`expected a claim, got ${lost.state}`);
    // A process that stops renewing (a crash, a pause): stand in by deleting its renewal's effect.
    await ctx.redis.del((await ctx.redis.keys(`${ctx.config.redis.keyPrefix}ingest:idempotency:client:*`))[0]!);
    const taken = await keys.begin('client', 'req-3');
    expect(taken.state).toBe('claimed');
    await lost.release();
    await lost.complete({ status: 202, body: { stale: true }, fingerprint: 'x' });
    expect((await keys.begin('client', 'req-3')).state).toBe('pending');
    if (taken.state === 'claimed') await taken.complete({ status: 202, body: { ok: true }, fingerprint: 'y' });
    expect(await keys.begin('client', 'req-3')).toEqual({
      state: 'done',
      answer: { status: 202, body: { ok: true }, fingerprint: 'y' },
    });
  });
});
