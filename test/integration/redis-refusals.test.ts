import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectRedisDedupStore, RedisDedupStore } from '../../src/dedup';
import { produceWorkload } from '../../src/generator';
import { createKafka } from '../../src/kafka';
import { startStream } from '../../src/process';
import { createLogger } from '../../src/telemetry';
import eventCounts from '../../streams/event-counts';
import { ServiceError } from '../../src/errors';
import { createRedis } from '../../src/redis';
import type { SluiceConfig } from '../../src/config';
import { createTestContext, type TestContext } from '../helpers/context';
import { aclUserConfig, answersPing, spawnRedisServer } from '../helpers/redis';
import { freePorts } from '../helpers/private-stack';
import { spawnSluice } from '../helpers/processes';

const withUrl = (config: SluiceConfig, url: string): SluiceConfig => ({ ...config, redis: { ...config.redis, url } });

const records = ['a', 'b', 'a'].map((id, i) => ({ id, topic: 't', partition: 0, offset: String(i) }));

/** What a promise rejected with (undefined if it resolved). */
const failureOf = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (err: unknown) => err,
  );

/**
 * A Redis that refuses every dedup claim for good (the user may not run the
 * claim script or a command in it, or the server is a Redis Cluster node)
 * stops the stream with one line saying what to change, at start-up when it
 * refuses from the start, at the claim when a right is taken away later: a
 * retriable error there paused and retried for ever, telling the operator to
 * check that Redis is up.
 */
describe('Redis refusing dedup claims for good', () => {
  let ctx: TestContext;
  const users: string[] = [];

  /** An ACL user on the shared Redis, allowed the test's prefix and every command but `denied`. */
  async function userConfig(...denied: string[]): Promise<SluiceConfig> {
    const { user, config } = await aclUserConfig(
      ctx,
      [`${ctx.config.redis.keyPrefix}*`],
      ['+@all', ...denied.map((c) => `-${c}`)],
    );
    users.push(user);
    return config;
  }

  beforeAll(async () => {
    ctx = await createTestContext('redis_refusals');
  });
  afterAll(async () => {
    for (const user of users) await ctx.redis.call('ACL', 'DELUSER', user);
    await ctx.cleanup();
  });

  it('a running stream whose claims are refused stops at once with the reason, committing nothing', async () => {
    // Every key of the prefix but the dedup marks: start-up passes (it writes no key), every claim is refused.
    const prefix = ctx.config.redis.keyPrefix;
    const { user, config } = await aclUserConfig(ctx, [`${prefix}[^d]*`], ['+@all']);
    users.push(user);
    const topic = await ctx.createTopic('refused', 2);
    await ctx.createTopic('refused.dlq', 1);
    await ctx.createTopic('refused.late', 1);
    await produceWorkload({ config: ctx.config, topic, count: 200, seed: 3 });
    const running = await startStream(
      eventCounts,
      config,
      { bounded: true, groupId: `${ctx.group}.refused-run`, topic },
      createLogger('silent'),
    );
    const started = Date.now();
    const failure = await failureOf(running.done);
    await running.stop().catch(() => undefined); // leaves the group (the CLI exits the process instead)
    expect(failure).toBeInstanceOf(ServiceError);
    expect((failure as ServiceError).retriable).toBe(false);
    expect((failure as Error).message).toMatch(/refused the dedup claim .*can't access/);
    // Not after the Kafka client's retries of the batch (eight, with a growing delay: over a minute).
    expect(Date.now() - started).toBeLessThan(10_000);
    const admin = createKafka(ctx.config).admin();
    await admin.connect();
    const committed = await admin.fetchOffsets(`${ctx.group}.refused-run`, [topic]);
    await admin.disconnect();
    expect(committed[0]!.partitions.every((p) => p.offset === '-1')).toBe(true);
  }, 60_000);

  it('a user who may not run scripts: the store refuses to start, naming redis.url, and `sluice run` exits in one line', async () => {
    const config = await userConfig('evalsha', 'eval');
    const failure = await failureOf(connectRedisDedupStore(config, { namespace: 'no-scripts' }));
    expect(failure).toBeInstanceOf(ServiceError);
    expect((failure as ServiceError).retriable).toBe(false);
    expect((failure as Error).message).toMatch(/refused the dedup claim \(NOPERM .*\): no retry can change that/);
    expect((failure as Error).message).toContain('redis.url (SLUICE_REDIS_URL)');
    expect((failure as Error).message).not.toContain(new URL(config.redis.url).password);

    const topic = await ctx.createTopic('events', 1);
    await ctx.createTopic('events.dlq', 1);
    await ctx.createTopic('events.late', 1);
    const child = spawnSluice(
      ['run', 'event-counts', '--topic', topic, '--group', `${ctx.group}.refused`, '--http-port', '0'],
      {
        SLUICE_CLICKHOUSE_DATABASE: ctx.id,
        SLUICE_REDIS_KEY_PREFIX: ctx.config.redis.keyPrefix,
        SLUICE_REDIS_URL: config.redis.url,
      },
    );
    const code = await child.exited;
    const output = child.output.join('').trim();
    expect(code).toBe(1);
    expect(output.split('\n')).toHaveLength(1);
    expect(output).toMatch(/^sluice: Redis at .* refused the dedup claim \(NOPERM .*redis\.url \(SLUICE_REDIS_URL\)/);
  }, 60_000);

  it('a user whose script may not SET: starts (start-up writes nothing), and its first claim is refused for good', async () => {
    const config = await userConfig('set');
    const { store, close } = await connectRedisDedupStore(config, { namespace: 'no-set' });
    try {
      const failure = await failureOf(store.claim(records));
      expect((failure as ServiceError).retriable).toBe(false);
      expect((failure as Error).message).toMatch(/can't run this command/);
    } finally {
      close();
    }
  });

  it('a right taken away while running: the claim fails for good (the stream stops), not retriably (paused for ever)', async () => {
    const config = await userConfig();
    const { store, close } = await connectRedisDedupStore(config, { namespace: 'revoked' });
    try {
      expect(await store.claim(records)).toEqual([true, true, false]);
      await ctx.redis.call('ACL', 'SETUSER', new URL(config.redis.url).username, '-evalsha', '-eval');
      const failure = await failureOf(store.claim(records));
      expect(failure).toBeInstanceOf(ServiceError);
      expect((failure as ServiceError).retriable).toBe(false);
      // Fail-open is for outages, not for a server that refuses: it does not turn this into letting everything through.
      const redis = createRedis(config);
      await redis.connect();
      const failOpen = new RedisDedupStore(redis, {
        keyPrefix: config.redis.keyPrefix,
        namespace: 'revoked',
        epoch: 0,
        failOpen: true,
      });
      expect(((await failureOf(failOpen.claim(records))) as ServiceError).retriable).toBe(false);
      expect(failOpen.failOpenCount).toBe(0);
      redis.disconnect();
    } finally {
      close();
    }
  });

  it('an outage stays retriable: a server that is down pauses the claim, it does not stop the stream', async () => {
    const { store, close } = await connectRedisDedupStore(ctx.config, { namespace: 'outage', commandTimeoutMs: 500 });
    close(); // the connection is gone, as when Redis restarts
    const failure = await failureOf(store.claim(records));
    expect(failure).toBeInstanceOf(ServiceError);
    expect((failure as ServiceError).retriable).toBe(true);
  });

  describe('a Redis Cluster node (private redis-server with cluster-enabled)', () => {
    let server: Awaited<ReturnType<typeof spawnRedisServer>>;
    let port: number;
    let dir: string;
    beforeAll(async () => {
      [port] = (await freePorts(1)) as [number];
      dir = mkdtempSync(join(tmpdir(), 'sluice-redis-cluster-'));
      server = await spawnRedisServer(
        [
          '--port',
          String(port),
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, 'nodes.conf'),
          '--dir',
          dir,
          '--appendonly',
          'no',
        ],
        () => answersPing(withUrl(ctx.config, `redis://127.0.0.1:${port}`)),
      );
    });
    afterAll(async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('refused at start-up with what to change: a standalone Redis', async () => {
      const failure = await failureOf(
        connectRedisDedupStore(withUrl(ctx.config, `redis://127.0.0.1:${port}`), { namespace: 'cluster' }),
      );
      expect(failure).toBeInstanceOf(ServiceError);
      expect((failure as ServiceError).retriable).toBe(false);
      expect((failure as Error).message).toMatch(/is a Redis Cluster node \(cluster_enabled:1\)/);
      expect((failure as Error).message).toContain('not a Redis Cluster: point redis.url (SLUICE_REDIS_URL) at one');
    });
  });
});
