import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { readTopic as readToEnd } from '../helpers/topics';
import { freePorts } from '../helpers/private-stack';
import { createTestContext, type TestContext } from '../helpers/context';
import { createKafka } from '../../src/kafka';
import { createRateLimiter, hashApiKey, startIngestServer, type RunningIngestServer } from '../../src/ingest';
import { loadAvroSchema, SchemaCodec } from '../../src/schema';
import type { AnalyticsEvent } from '../../streams/event-counts';
import { sleep } from '../../src/clock';

const KEY = 'ingest-test-key-1';
const OTHER_KEY = 'ingest-test-key-2';
const V1 = loadAvroSchema('analytics_event');

function makeEvent(i = 0): AnalyticsEvent {
  return {
    event_id: randomUUID(),
    event_type: 'click',
    user_id: `u-${i}`,
    campaign_id: `c-${i % 3}`,
    ad_id: null,
    event_time: 1_700_000_000_000 + i,
    amount: null,
    properties: { i: String(i) },
  };
}

async function post(server: RunningIngestServer, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${server.url}/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(50);
  }
}

describe('HTTP ingestion API', () => {
  let ctx: TestContext;
  let server: RunningIngestServer;
  let strict: RunningIngestServer;
  let topic: string;
  let strictTopic: string;
  let strictConfig: TestContext['config'];
  /** Every event id a 202 answered for, per topic: what each topic must hold, exactly once. */
  const accepted = new Map<string, string[]>();
  const sentEvents = new Map<string, AnalyticsEvent>();
  const accept = (t: string, ids: unknown) => accepted.set(t, [...(accepted.get(t) ?? []), ...(ids as string[])]);

  beforeAll(async () => {
    ctx = await createTestContext('ingest');
    topic = await ctx.createTopic('events', 6);
    strictTopic = await ctx.createTopic('strict', 3);
    const apiKeys = [hashApiKey(KEY), hashApiKey(OTHER_KEY)];
    const quiet = { logger: pino({ level: 'silent' }) };
    server = await startIngestServer(ctx.config, {
      ...quiet,
      settings: {
        port: 0,
        topic,
        apiKeys,
        rateLimitPerSecond: 100_000,
        maxBodyBytes: 16 * 1024,
        maxEventsPerRequest: 50,
      },
    });
    // Its own Redis prefix: another deployment, so its rate budgets are not shared with the first server's.
    strictConfig = { ...ctx.config, redis: { ...ctx.config.redis, keyPrefix: `${ctx.config.redis.keyPrefix}strict:` } };
    strict = await startIngestServer(strictConfig, {
      ...quiet,
      settings: { port: 0, topic: strictTopic, apiKeys, rateLimitPerSecond: 10, rejectDuplicates: true },
    });
  });

  afterAll(async () => {
    await server?.close();
    await strict?.close();
    await ctx.cleanup();
  });

  it('answers /healthz and /readyz', async () => {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });

  it('serves the status page, status.json and metrics on the operator address only, loopback by default', async () => {
    for (const path of ['/', '/status.json', '/metrics']) {
      const res = await fetch(`${server.url}${path}`);
      expect({ path, status: res.status }).toEqual({ path, status: 404 });
      await res.text();
    }
    const admin = server.adminUrl;
    expect(admin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(admin).not.toBe(server.url);
    const status = (await (await fetch(`${admin}/status.json`)).json()) as {
      kind: string;
      topic: string;
      ready: boolean;
    };
    expect(status).toMatchObject({ kind: 'ingest', topic, ready: true });
    expect(await (await fetch(`${admin}/`)).text()).toMatch(/<html/i);
    expect(await (await fetch(`${admin}/metrics`)).text()).toMatch(
      /^sluice_ingest_events_accepted_total\{[^}]*\} \d+$/m,
    );
    // The API itself is not served there.
    expect(
      (await fetch(`${admin}/v1/events`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` } })).status,
    ).toBe(404);
  });

  it('/readyz answers 503 once Redis is unreachable', async () => {
    // A private Redis this test may stop (the shared one is never touched).
    const [port] = await freePorts(1);
    const dir = mkdtempSync(join(tmpdir(), 'sluice-ingest-redis-'));
    const redis = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
      { stdio: 'ignore' },
    );
    try {
      await waitFor(async () => {
        const probe = new Redis({
          port,
          host: '127.0.0.1',
          lazyConnect: true,
          retryStrategy: () => null,
          maxRetriesPerRequest: 0,
        });
        probe.on('error', () => undefined);
        try {
          await probe.connect();
          return (await probe.ping()) === 'PONG';
        } finally {
          probe.disconnect();
        }
      });
      const config = { ...ctx.config, redis: { ...ctx.config.redis, url: `redis://127.0.0.1:${port}` } };
      const own = await startIngestServer(config, {
        logger: pino({ level: 'silent' }),
        settings: { port: 0, adminPort: 0, topic, apiKeys: [hashApiKey(KEY)] },
      });
      try {
        expect((await fetch(`${own.url}/readyz`)).status).toBe(200);
        redis.kill('SIGKILL');
        await new Promise((resolve) => redis.once('exit', resolve));
        // Readiness is probed at most once a second, however often it is asked: the next probe sees Redis gone.
        let down = await fetch(`${own.url}/readyz`);
        await waitFor(async () => {
          down = await fetch(`${own.url}/readyz`);
          return down.status === 503;
        });
        // The public answer is the same whatever is wrong: it names no dependency, host or port. The operator's status.json says what.
        expect(await down.json()).toEqual({ error: 'not_ready', message: 'not ready to accept events: retry later' });
        const adminUrl = own.adminUrl;
        await waitFor(async () => {
          const status = (await (await fetch(`${adminUrl}/status.json`)).json()) as {
            ready: boolean;
            checks: { ok: boolean; detail: string }[];
          };
          return !status.ready && status.checks.some((c) => !c.ok && /Redis/.test(c.detail));
        });
        expect((await fetch(`${own.url}/healthz`)).status).toBe(200); // alive, just not ready
        // Accepting needs Redis (rate limit): refused with 503, nothing produced.
        const refused = await post(own, makeEvent(99));
        expect(refused.status).toBe(503);
      } finally {
        await own.close();
      }
    } finally {
      redis.kill('SIGKILL');
    }
  });

  it('accepts one event, {events: [...]} and a bare array with 202 after Kafka acknowledged', async () => {
    const one = makeEvent(1);
    const wrapped = [makeEvent(2), makeEvent(3)];
    const array = [makeEvent(4), makeEvent(5), makeEvent(6)];
    for (const e of [one, ...wrapped, ...array]) sentEvents.set(e.event_id, e);

    const r1 = await post(server, one);
    expect(r1.status).toBe(202);
    expect(r1.body).toMatchObject({ accepted: 1, event_ids: [one.event_id] });
    const r2 = await post(server, { events: wrapped }, { authorization: '', 'x-api-key': OTHER_KEY });
    expect(r2.status).toBe(202);
    expect(r2.body).toMatchObject({ accepted: 2, event_ids: wrapped.map((e) => e.event_id) });
    const r3 = await post(server, array);
    expect(r3.status).toBe(202);
    for (const r of [r1, r2, r3]) accept(topic, r.body.event_ids);
    // Each answer says where each of its events is: the record at that partition and offset has the event's key.
    const answered = [r1, r2, r3].flatMap(
      (r) => r.body.records as { event_id: string; partition: number; offset: string }[],
    );
    expect(answered.map((r) => r.event_id)).toEqual([one, ...wrapped, ...array].map((e) => e.event_id));
    const stored = new Map(
      (await readToEnd(createKafka(ctx.config), topic)).map((r) => [`${r.partition}/${r.offset}`, r.key!.toString()]),
    );
    for (const r of answered) expect(stored.get(`${r.partition}/${r.offset}`)).toBe(r.event_id);
  });

  it('refuses invalid events with 400 listing each bad field, and sends none of the batch', async () => {
    const good = makeEvent(7);
    const badTime = { ...makeEvent(8), event_time: '2024-01-01' };
    const noUser: Partial<AnalyticsEvent> = makeEvent(9);
    delete noUser.user_id;
    const r = await post(server, { events: [good, badTime, { ...noUser, amount: 'lots', extra: true }] });
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('invalid_events');
    expect(r.body.issues).toEqual([
      { path: 'events[1].event_time', reason: 'expected long, got string "2024-01-01"' },
      { path: 'events[2].user_id', reason: 'required string is missing' },
      { path: 'events[2].amount', reason: 'expected null or double, got string "lots"' },
      { path: 'events[2].extra', reason: 'unknown field (not in the schema)' },
    ]);
    const single = await post(server, { ...makeEvent(10), event_id: 'not-a-uuid' });
    expect(single.status).toBe(400);
    expect(single.body.issues).toEqual([
      { path: 'event_id', reason: 'expected a UUID string, got string "not-a-uuid"' },
    ]);
    expect((await post(server, 42)).body.issues).toEqual([
      { path: '(event)', reason: 'expected a JSON object, got number 42' },
    ]);
    expect((await post(server, [])).status).toBe(400);
  });

  it('refuses malformed JSON (400), a missing or wrong key (401), other content types (415)', async () => {
    const malformed = await post(server, '{"event_id": ');
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toBe('malformed_json');

    const noKey = await post(server, makeEvent(11), { authorization: '' });
    expect(noKey.status).toBe(401);
    expect(noKey.headers.get('www-authenticate')).toBe('Bearer');
    expect((await post(server, makeEvent(12), { authorization: 'Bearer not-a-key' })).status).toBe(401);
    // The hash itself is not a key.
    expect((await post(server, makeEvent(13), { authorization: `Bearer ${hashApiKey(KEY)}` })).status).toBe(401);

    const text = await post(server, JSON.stringify(makeEvent(14)), { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
    expect(text.body.error).toBe('unsupported_media_type');
  });

  it('refuses bodies over the byte limit and requests over the event limit with 413', async () => {
    const big = { ...makeEvent(15), properties: { blob: 'x'.repeat(20 * 1024) } };
    const r = await post(server, big);
    expect(r.status).toBe(413);
    expect(r.body.error).toBe('body_too_large');
    const many = Array.from({ length: 51 }, (_, i) => makeEvent(100 + i));
    const tooMany = await post(server, many);
    expect(tooMany.status).toBe(413);
    expect(tooMany.body.error).toBe('too_many_events');
  });

  it('refuses an event id accepted before with 409 when duplicate rejection is on', async () => {
    const first = makeEvent(20);
    const fresh = makeEvent(21);
    const r1 = await post(strict, first);
    expect(r1.status).toBe(202);
    accept(strictTopic, r1.body.event_ids);
    sentEvents.set(first.event_id, first);

    const again = await post(strict, { ...first, event_type: 'changed' });
    expect(again.status).toBe(409);
    expect(again.body.event_ids).toEqual([first.event_id]);
    // A batch with one duplicate is refused whole; its new event is not marked and can be sent alone.
    const mixed = await post(strict, [fresh, first]);
    expect(mixed.status).toBe(409);
    expect(mixed.body.event_ids).toEqual([first.event_id]);
    const within = await post(strict, { events: [fresh, fresh] });
    expect(within.status).toBe(409);
    const alone = await post(strict, fresh, { authorization: `Bearer ${OTHER_KEY}` });
    expect(alone.status).toBe(202);
    accept(strictTopic, alone.body.event_ids);
    sentEvents.set(fresh.event_id, fresh);
    // The server without duplicate rejection accepts a repeat: downstream dedup handles it.
    const repeat = await post(server, sentEvents.get(accepted.get(topic)![0]!)!);
    expect(repeat.status).toBe(202);
    accept(topic, repeat.body.event_ids);
  });

  it('rate-limits per key in Redis atomically, answering 429 with Retry-After', async () => {
    // The limiter itself, with a window long enough that timing cannot matter: 50 concurrent takes, limit 20.
    const limiter = createRateLimiter(ctx.redis, ctx.config.redis.keyPrefix, 20, 60_000);
    const decisions = await Promise.all(Array.from({ length: 50 }, () => limiter.take('concurrent', 1)));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(20);
    const refused = decisions.find((d) => !d.allowed)!;
    expect(refused.retryAfterMs).toBeGreaterThan(50_000);
    // A request that would cross the limit is refused whole and uses nothing up.
    const partial = createRateLimiter(ctx.redis, ctx.config.redis.keyPrefix, 10, 60_000);
    expect((await partial.take('batch', 6)).allowed).toBe(true);
    expect((await partial.take('batch', 5)).allowed).toBe(false);
    expect((await partial.take('batch', 4)).allowed).toBe(true);

    // Through HTTP: the strict server allows 10 events per second per key. Fill KEY's current
    // window to the limit (with a long expiry, so the test does not race the clock), then post.
    const client = hashApiKey(KEY).slice(0, 16);
    await ctx.redis.set(`${strictConfig.redis.keyPrefix}ingest:rate:${client}`, '10', 'PX', 30_000);
    const limited = await post(strict, makeEvent(30));
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(29);
    expect(limited.body.error).toBe('rate_limited');
    // The other key has its own budget.
    const other = makeEvent(31);
    const allowed = await post(strict, other, { authorization: `Bearer ${OTHER_KEY}` });
    expect(allowed.status).toBe(202);
    accept(strictTopic, allowed.body.event_ids);
    sentEvents.set(other.event_id, other);
  });

  it('checks the rate limit before reading the body: a key over its limit gets 429 whatever it sends', async () => {
    const client = hashApiKey(OTHER_KEY).slice(0, 16);
    const rateKey = `${strictConfig.redis.keyPrefix}ingest:rate:${client}`;
    await ctx.redis.set(rateKey, '10', 'PX', 30_000);
    // Neither parsed (it would be 400 malformed_json) nor read to its end (413 body_too_large).
    const malformed = await post(strict, '{"event_id": ', { authorization: `Bearer ${OTHER_KEY}` });
    expect(malformed.status).toBe(429);
    expect(malformed.body.error).toBe('rate_limited');
    const huge = await post(
      strict,
      { events: [{ ...makeEvent(40), properties: { blob: 'x'.repeat(2 * 1024 * 1024) } }] },
      { authorization: `Bearer ${OTHER_KEY}` },
    );
    expect(huge.status).toBe(429);
    // The key and the content type are still checked first.
    expect((await post(strict, '{', { authorization: 'Bearer not-a-key' })).status).toBe(401);
    expect(
      (await post(strict, '{', { authorization: `Bearer ${OTHER_KEY}`, 'content-type': 'text/plain' })).status,
    ).toBe(415);
    expect(await ctx.redis.get(rateKey)).toBe('10');
  });

  it('counts a batch as its events: one unit before parsing, the rest after; a refused rest keeps the unit the parse cost', async () => {
    const client = hashApiKey(OTHER_KEY).slice(0, 16);
    const rateKey = `${strictConfig.redis.keyPrefix}ingest:rate:${client}`;
    await ctx.redis.set(rateKey, '7', 'PX', 30_000);
    // 7 used of 10: one unit is taken before parsing (8), the other three would make 11.
    const batch = await post(strict, [makeEvent(41), makeEvent(42), makeEvent(43), makeEvent(44)], {
      authorization: `Bearer ${OTHER_KEY}`,
    });
    expect(batch.status).toBe(429);
    expect(await ctx.redis.get(rateKey)).toBe('8');
    const two = [makeEvent(45), makeEvent(46)];
    const fits = await post(strict, two, { authorization: `Bearer ${OTHER_KEY}` });
    expect(fits.status).toBe(202);
    accept(strictTopic, fits.body.event_ids);
    for (const e of two) sentEvents.set(e.event_id, e);
    expect(await ctx.redis.get(rateKey)).toBe('10');
  });

  it('refuses for good, with 413 naming the limit, a batch larger than the rate limit; answers carry RateLimit-* headers', async () => {
    const client = hashApiKey(OTHER_KEY).slice(0, 16);
    const rateKey = `${strictConfig.redis.keyPrefix}ingest:rate:${client}`;
    await ctx.redis.del(rateKey);
    // 11 events against a limit of 10 per second: a 429 would be answered again at every retry.
    const tooMany = await post(
      strict,
      Array.from({ length: 11 }, (_, i) => makeEvent(50 + i)),
      { authorization: `Bearer ${OTHER_KEY}` },
    );
    expect(tooMany.status).toBe(413);
    expect(tooMany.body.error).toBe('batch_exceeds_rate_limit');
    expect(tooMany.body.message).toMatch(/at most 10 per 1 s \(ingest\.rateLimitPerSecond\): split the batch/);
    // Its budget is one unit, taken before the body was read, and the headers say so.
    expect(tooMany.headers.get('ratelimit-limit')).toBe('10');
    expect(tooMany.headers.get('ratelimit-remaining')).toBe('9');
    expect(Number(tooMany.headers.get('ratelimit-reset'))).toBe(1);
    await ctx.redis.del(rateKey);
    const three = [makeEvent(61), makeEvent(62), makeEvent(63)];
    const fits = await post(strict, three, { authorization: `Bearer ${OTHER_KEY}` });
    expect(fits.status).toBe(202);
    accept(strictTopic, fits.body.event_ids);
    for (const e of three) sentEvents.set(e.event_id, e);
    expect(fits.headers.get('ratelimit-limit')).toBe('10');
    expect(fits.headers.get('ratelimit-remaining')).toBe('7');
    // A refused request says the budget is spent and when it comes back.
    await ctx.redis.set(rateKey, '10', 'PX', 30_000);
    const refused = await post(strict, makeEvent(64), { authorization: `Bearer ${OTHER_KEY}` });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('ratelimit-remaining')).toBe('0');
    expect(Number(refused.headers.get('ratelimit-reset'))).toBeGreaterThanOrEqual(29);
  });

  it('answers a repeated Idempotency-Key with the first answer and produces nothing again', async () => {
    const key = { 'idempotency-key': `order-${randomUUID()}` };
    const events = [makeEvent(70), makeEvent(71)];
    const first = await post(server, events, key);
    expect(first.status).toBe(202);
    accept(topic, first.body.event_ids);
    for (const e of events) sentEvents.set(e.event_id, e);
    // The retry (the server has no duplicate rejection: without the key it would produce both again).
    const again = await post(server, events, key);
    expect(again.status).toBe(202);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
    // The same key with another body is a client bug.
    const other = await post(server, [makeEvent(72)], key);
    expect(other.status).toBe(422);
    expect(other.body.error).toBe('idempotency_key_reused');
    // A refused request gives its key up: fixed, it is accepted under the same key.
    const retryKey = { 'idempotency-key': `order-${randomUUID()}` };
    const fixed = makeEvent(73);
    expect((await post(server, { ...fixed, event_time: 'soon' }, retryKey)).status).toBe(400);
    const accepted73 = await post(server, fixed, retryKey);
    expect(accepted73.status).toBe(202);
    expect(accepted73.headers.get('idempotent-replayed')).toBeNull();
    accept(topic, accepted73.body.event_ids);
    sentEvents.set(fixed.event_id, fixed);
    // Kept for a day.
    const stored = await ctx.redis.keys(`${ctx.config.redis.keyPrefix}ingest:idempotency:*`);
    expect(stored).toHaveLength(2);
    expect(await ctx.redis.ttl(stored[0]!)).toBeGreaterThan(86_000);
    expect((await post(server, [makeEvent(74)], { 'idempotency-key': 'bad key\u00e9' })).status).toBe(400);
  });

  it('each topic holds exactly the accepted events, once each, and nothing from refused requests', async () => {
    const codec = SchemaCodec.fromConfig(ctx.config);
    for (const t of [topic, strictTopic]) {
      const records = await readToEnd(createKafka(ctx.config), t);
      const ids = records.map((r) => r.key!.toString()).sort();
      expect(ids).toEqual([...accepted.get(t)!].sort());
      for (const record of records) {
        const { value } = await codec.decode(record.value!, V1);
        expect(value).toEqual(sentEvents.get(record.key!.toString()));
      }
    }
    expect(accepted.get(topic)).toHaveLength(10); // 9 distinct + the deliberate repeat
    expect(accepted.get(strictTopic)).toHaveLength(8);
  });
});
