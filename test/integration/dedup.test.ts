import type { Redis } from 'ioredis';
import { ServiceError } from '../../src/errors';
import { createRedis } from '../../src/redis';
import {
  connectRedisDedupStore,
  MemoryDedupStore,
  RedisDedupStore,
  type DedupRecord,
  type DedupStore,
} from '../../src/dedup';
import { createTestContext, type TestContext } from '../helpers/context';
import { sleep } from '../../src/clock';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext('dedup');
});
afterAll(async () => {
  await ctx.cleanup();
});

const rec = (id: string, offset: number, partition = 0, topic = 'events'): DedupRecord => ({
  id,
  topic,
  partition,
  offset: String(offset),
});

let scopeCounter = 0;
/** Every contract case gets a fresh namespace, so cases cannot see each other's marks. */
const implementations: [string, (epoch?: number, namespace?: string) => DedupStore][] = [
  ['memory', () => new MemoryDedupStore()],
  [
    'redis',
    (epoch = 0, namespace = `ns${scopeCounter++}`) =>
      new RedisDedupStore(ctx.redis, { keyPrefix: ctx.config.redis.keyPrefix, namespace, epoch }),
  ],
];

describe.each(implementations)('DedupStore contract: %s', (_name, make) => {
  it('lets every new id through once, and marks later records with a seen id as duplicates across batches', async () => {
    const store = make();
    expect(await store.claim([rec('a', 0), rec('b', 1), rec('c', 2)])).toEqual([true, true, true]);
    expect(await store.claim([rec('b', 7), rec('d', 8), rec('a', 9)])).toEqual([false, true, false]);
  });

  it('within one batch, the first occurrence of an id wins', async () => {
    const store = make();
    expect(await store.claim([rec('x', 0), rec('y', 1), rec('x', 2), rec('x', 3), rec('y', 4)])).toEqual([
      true,
      true,
      false,
      false,
      false,
    ]);
  });

  it('lets a redelivery of the record that claimed the id through again (crash after the mark, before the sink)', async () => {
    const store = make();
    const batch = [rec('e1', 10, 3), rec('e2', 11, 3), rec('dup', 12, 3)];
    expect(await store.claim(batch)).toEqual([true, true, true]);
    // the process dies here: marks written, nothing reached the sink; Kafka redelivers from offset 10
    expect(await store.claim(batch)).toEqual([true, true, true]);
    // but a different record carrying one of those ids is still a duplicate
    expect(await store.claim([rec('dup', 99, 3), rec('e1', 12, 4)])).toEqual([false, false]);
  });

  it('tells records apart by topic, partition and offset, not by offset alone', async () => {
    const store = make();
    expect(await store.claim([rec('k', 5, 0, 'events')])).toEqual([true]);
    expect(await store.claim([rec('k', 5, 1, 'events')])).toEqual([false]);
    expect(await store.claim([rec('k', 5, 0, 'other')])).toEqual([false]);
  });

  it('answers an empty batch with an empty list', async () => {
    expect(await make().claim([])).toEqual([]);
  });
});

describe('RedisDedupStore', () => {
  const store = (namespace: string, extra: Partial<ConstructorParameters<typeof RedisDedupStore>[1]> = {}) =>
    new RedisDedupStore(ctx.redis, { keyPrefix: ctx.config.redis.keyPrefix, namespace, ...extra });

  it('writes <prefix>dedup:<namespace>:<epoch>:<id> holding the claimant, with the configured TTL', async () => {
    const s = store('stream-a', { epoch: 3, ttlSeconds: 600 });
    await s.claim([rec('id-1', 42, 2)]);
    const key = `${ctx.config.redis.keyPrefix}dedup:stream-a:3:id-1`;
    expect(s.keyOf('id-1')).toBe(key);
    expect(await ctx.redis.get(key)).toBe('events/2/42');
    const ttl = await ctx.redis.ttl(key);
    expect(ttl).toBeGreaterThan(590);
    expect(ttl).toBeLessThanOrEqual(600);
  });

  it('marks ids of any text under the key keyOf names, holding the claimant', async () => {
    const s = store('stream-text');
    // JSON's escapes, a NUL, non-ASCII, a character outside the BMP, and a lone surrogate (sent as U+FFFD).
    const ids = ['quote"d', 'back\\slash', 'new\nline', 'nul\u0000', 'naïve', 'emoji-\u{1F600}', 'lone-\uD800'];
    const batch = ids.map((id, i) => rec(id, i, 1));
    expect(await s.claim(batch)).toEqual(ids.map(() => true));
    for (const [i, id] of ids.entries()) expect(await ctx.redis.get(s.keyOf(id))).toBe(`events/1/${i}`);
    // A redelivery of each record is let through again; another record with the same id is a duplicate.
    expect(await s.claim(batch)).toEqual(ids.map(() => true));
    expect(await s.claim(ids.map((id, i) => rec(id, i + 100, 1)))).toEqual(ids.map(() => false));
    // A mark another process left under keyOf's key (the same text, written by the client) is honoured.
    await ctx.redis.set(s.keyOf('set-by-hand-\uDC00'), 'events/4/7');
    expect(await s.claim([rec('set-by-hand-\uDC00', 7, 4), rec('set-by-hand-\uDC00', 8, 4)])).toEqual([true, false]);
  });

  it('defaults the TTL to 24 hours', async () => {
    const s = store('stream-ttl');
    await s.claim([rec('t', 1)]);
    const ttl = await ctx.redis.ttl(s.keyOf('t'));
    expect(ttl).toBeGreaterThan(24 * 3600 - 10);
    expect(ttl).toBeLessThanOrEqual(24 * 3600);
  });

  it('a new epoch is a fresh namespace: a replay is not dropped as duplicates of the first run', async () => {
    const batch = [rec('r1', 0), rec('r2', 1)];
    expect(await store('stream-r', { epoch: 0 }).claim(batch)).toEqual([true, true]);
    const replay = batch.map((r) => ({ ...r, topic: 'events-replay' }));
    expect(await store('stream-r', { epoch: 0 }).claim(replay)).toEqual([false, false]);
    expect(await store('stream-r', { epoch: 1 }).claim(replay)).toEqual([true, true]);
  });

  it('costs one round trip per batch, however large (counted by MONITOR on the store connection)', async () => {
    const conn: Redis = createRedis(ctx.config);
    await conn.connect();
    const monitor = await createRedis(ctx.config).monitor();
    try {
      const info = await conn.client('INFO');
      const address = /addr=(\S+)/.exec(String(info))![1]!;
      const s = new RedisDedupStore(conn, { keyPrefix: ctx.config.redis.keyPrefix, namespace: 'stream-rt' });
      await s.claim([rec('warm', 0)]); // loads the script (EVALSHA, then EVAL once on NOSCRIPT)
      // MONITOR output is asynchronous and starts at an unknown point: two PING markers bracket the batches.
      const seen: string[] = [];
      monitor.on('monitor', (_time: string, args: string[], source: string) => {
        if (source === address) seen.push(args.slice(0, 2).join(' ').toLowerCase());
      });
      const waitFor = async (entry: string) => {
        for (let i = 0; i < 300 && !seen.includes(entry); i++) await sleep(10);
      };
      for (let i = 0; i < 300 && !seen.includes('ping m1'); i++) await conn.ping('m1'); // until MONITOR is live
      const batch = Array.from({ length: 500 }, (_, i) => rec(`rt-${i}`, i));
      await s.claim(batch);
      await s.claim(batch.map((r) => ({ ...r, offset: String(Number(r.offset) + 1000) })));
      await conn.ping('m2');
      await waitFor('ping m2');
      const between = seen.slice(seen.lastIndexOf('ping m1') + 1, seen.indexOf('ping m2')).map((c) => c.split(' ')[0]);
      expect(between).toEqual(['evalsha', 'evalsha']);
    } finally {
      monitor.disconnect();
      conn.disconnect();
    }
  });

  it('claims a 10k-id batch in one call (sanity, not a timed assertion)', async () => {
    const s = store('stream-big');
    const batch = Array.from({ length: 10_000 }, (_, i) => rec(`big-${i}`, i, i % 6));
    const started = process.hrtime.bigint();
    const first = await s.claim(batch);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const again = await s.claim(batch.map((r) => ({ ...r, offset: `${r.offset}0` })));
    expect(first.every(Boolean)).toBe(true);
    expect(again.some(Boolean)).toBe(false);
    process.stderr.write(`dedup: 10000-id claim took ${ms.toFixed(1)} ms\n`);
  });

  it('rejects with a retriable ServiceError when Redis is unreachable', async () => {
    const unreachable = { redis: { url: 'redis://127.0.0.1:1', keyPrefix: 'x:' } };
    const redis = createRedis(unreachable, {
      enableOfflineQueue: false,
      retryStrategy: () => null,
      disconnectTimeout: 100,
    });
    redis.on('error', () => undefined);
    const err = await new RedisDedupStore(redis, { keyPrefix: 'x:', namespace: 'down' })
      .claim([rec('a', 0)])
      .catch((e: unknown) => e);
    redis.disconnect();
    expect(err).toBeInstanceOf(ServiceError);
    expect((err as ServiceError).retriable).toBe(true);
    await expect(connectRedisDedupStore(unreachable, { namespace: 'down' })).rejects.toMatchObject({
      retriable: true,
      service: 'redis',
    });
  });

  it('fail-open answers all-true when Redis is unreachable, and counts it', async () => {
    const { store: s, close } = await connectRedisDedupStore(
      { redis: { url: 'redis://127.0.0.1:1', keyPrefix: 'x:' } },
      { namespace: 'down-open', failOpen: true, commandTimeoutMs: 500 },
    );
    try {
      expect(await s.claim([rec('a', 0), rec('a', 1), rec('b', 2)])).toEqual([true, true, true]);
      expect(s.failOpenCount).toBe(3);
    } finally {
      close();
    }
  });
});
