import { randomBytes } from 'node:crypto';
import { computeExpected, produceWorkload } from '../../src/generator';
import { connectRedisDedupStore } from '../../src/dedup';
import { ServiceError } from '../../src/errors';
import { createKafka } from '../../src/kafka';
import { startStream } from '../../src/process';
import { createRedis } from '../../src/redis';
import { createLogger } from '../../src/telemetry';
import eventCounts from '../../streams/event-counts';
import type { SluiceConfig } from '../../src/config';
import { makeCertificates, type TestCertificates } from '../helpers/certs';
import { createTestContext, type TestContext } from '../helpers/context';
import { aclUserConfig, answersPing, spawnRedisServer } from '../helpers/redis';
import { freePorts } from '../helpers/private-stack';
import { spawnSluice } from '../helpers/processes';
import { compareWithExpected, expectExactAnswer } from '../helpers/reference';
import { sleep } from '../../src/clock';

const withUrl = (config: SluiceConfig, url: string, tls?: SluiceConfig['redis']['tls']): SluiceConfig => ({
  ...config,
  redis: { ...config.redis, url, tls },
});

/**
 * Redis with an ACL user restricted to the test's key prefix (on the shared
 * Redis: created here, deleted after), used through redis://user:pass@host:
 * the reference stream (dedup, window state) runs through it and gives the
 * generator's answer; a wrong password fails fast in one line. And Redis over
 * TLS (rediss://, CA + client certificate) against a private redis-server
 * with a tls-port.
 */
describe('Redis ACL user and TLS', () => {
  let user: string;
  let password: string;
  let ctx: TestContext;
  let aclConfig: SluiceConfig;

  beforeAll(async () => {
    ctx = await createTestContext('sec_redis');
    // Only the test's keys, and no admin or dangerous commands (INFO is allowed for ioredis's ready check).
    ({
      user,
      password,
      config: aclConfig,
    } = await aclUserConfig(ctx, [`${ctx.config.redis.keyPrefix}*`], ['+@all', '-@admin', '-@dangerous', '+info']));
  });
  afterAll(async () => {
    await ctx.redis.call('ACL', 'DELUSER', user);
    await ctx.cleanup();
  });

  it('the ACL user can touch only its prefix, and the reference stream (dedup, window state) works through it', async () => {
    const redis = createRedis(aclConfig);
    await redis.connect();
    expect(await redis.call('ACL', 'WHOAMI')).toBe(user);
    await expect(redis.set('outside-the-prefix', '1')).rejects.toThrow(/NOPERM/);
    expect(await redis.set(`${aclConfig.redis.keyPrefix}probe`, '1')).toBe('OK');
    redis.disconnect();

    const topic = await ctx.createTopic('events', 2);
    await ctx.createTopic('events.dlq', 1);
    await ctx.createTopic('events.late', 1);
    const produced = await produceWorkload({
      config: ctx.config,
      topic,
      count: 3000,
      seed: 17,
      duplicateRatio: 0.05,
      keepLog: true,
    });
    const expected = computeExpected(produced.log!);
    const running = await startStream(
      eventCounts,
      aclConfig,
      { bounded: true, groupId: ctx.group, topic },
      createLogger('warn'),
    );
    const summary = await running.done;
    expect(summary.recordsIn).toBe(expected.records);
    const report = await compareWithExpected(ctx.clickhouse, createKafka(ctx.config), topic, expected);
    expectExactAnswer(report);
    // Dedup marks were written, under the prefix (the only place the user may write).
    expect((await ctx.redis.keys(`${ctx.config.redis.keyPrefix}*`)).length).toBeGreaterThan(expected.eventIds.size / 2);
  }, 90_000);

  it('a wrong password fails fast with one line naming redis.url, never printing a password', async () => {
    const wrong = `wrong-${randomBytes(8).toString('hex')}`;
    const url = new URL(aclConfig.redis.url);
    url.password = wrong;
    const redis = createRedis(withUrl(ctx.config, url.toString()));
    let attempts = 0;
    redis.on('error', () => attempts++);
    const started = Date.now();
    const failure = await redis.connect().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(ServiceError);
    expect((failure as ServiceError).retriable).toBe(false);
    expect(Date.now() - started).toBeLessThan(2000);
    // It stopped reconnecting: no retry loop against a password that cannot work (ioredis would retry every 50-2000 ms).
    const attemptsAtFailure = attempts;
    await sleep(1500);
    expect(attempts).toBe(attemptsAtFailure);

    const spawned = Date.now();
    const child = spawnSluice(
      ['run', 'event-counts', '--topic', ctx.topic('events'), '--group', `${ctx.group}.refused`, '--http-port', '0'],
      {
        SLUICE_CLICKHOUSE_DATABASE: ctx.id,
        SLUICE_REDIS_KEY_PREFIX: ctx.config.redis.keyPrefix,
        SLUICE_REDIS_URL: url.toString(),
      },
    );
    const code = await child.exited;
    const exitedAfterMs = Date.now() - spawned;
    const output = child.output.join('');
    console.log(
      `wrong Redis password: sluice run exited ${code} after ${exitedAfterMs} ms (start-up included), printing: ${output.trim()}`,
    );
    expect(code).toBe(1);
    expect(exitedAfterMs).toBeLessThan(30_000);
    expect(output.trim().split('\n')).toEqual([
      `sluice: Redis at redis://${user}:***@${new URL(ctx.config.redis.url).host} refused the login (WRONGPASS): check the user and password in redis.url (SLUICE_REDIS_URL)`,
    ]);
    expect(output).not.toContain(wrong);
  }, 60_000);

  describe('over TLS (private redis-server with a tls-port)', () => {
    let certs: TestCertificates;
    let server: Awaited<ReturnType<typeof spawnRedisServer>>;
    let port: number;
    beforeAll(async () => {
      certs = makeCertificates();
      [port] = (await freePorts(1)) as [number];
      const tls = {
        caFile: certs.caFile,
        certFile: certs.clientCertFile,
        keyFile: certs.clientKeyFile,
        rejectUnauthorized: true,
      };
      server = await spawnRedisServer(
        [
          '--port',
          '0',
          '--tls-port',
          String(port),
          '--tls-cert-file',
          certs.serverCertFile,
          '--tls-key-file',
          certs.serverKeyFile,
          '--tls-ca-cert-file',
          certs.caFile,
          '--tls-auth-clients',
          'yes',
          '--appendonly',
          'no',
          '--requirepass',
          password,
        ],
        () => answersPing(withUrl(ctx.config, `rediss://:${password}@127.0.0.1:${port}`, tls)),
      );
    });
    afterAll(async () => {
      await server.stop();
    });

    it('rediss:// with the CA and a client certificate works for dedup; without the certificate or with another CA it is refused', async () => {
      const tlsConfig = withUrl(ctx.config, `rediss://:${password}@127.0.0.1:${port}`, {
        caFile: certs.caFile,
        certFile: certs.clientCertFile,
        keyFile: certs.clientKeyFile,
        rejectUnauthorized: true,
      });
      const { store, close } = await connectRedisDedupStore(tlsConfig, { namespace: 'tls' });
      const records = ['a', 'b', 'a'].map((id, i) => ({ id, topic: 't', partition: 0, offset: String(i) }));
      expect(await store.claim(records)).toEqual([true, true, false]);
      close();

      // The server demands a client certificate (tls-auth-clients yes).
      const noCert = createRedis(
        withUrl(ctx.config, tlsConfig.redis.url, { caFile: certs.caFile, rejectUnauthorized: true }),
        { retryStrategy: () => null, maxRetriesPerRequest: 0 },
      );
      noCert.on('error', () => undefined);
      await expect(noCert.connect().then(() => noCert.ping())).rejects.toThrow();
      noCert.disconnect();

      const otherCa = createRedis(
        withUrl(ctx.config, tlsConfig.redis.url, { ...tlsConfig.redis.tls!, caFile: certs.otherCaFile }),
        { retryStrategy: () => null, maxRetriesPerRequest: 0 },
      );
      const failure = await otherCa.connect().then(
        () => undefined,
        (err: unknown) => err,
      );
      otherCa.disconnect();
      expect((failure as Error).message).toMatch(
        /TLS handshake failed .*: check redis\.tls\.caFile \(SLUICE_REDIS_TLS_CA_FILE\)$/,
      );
      expect((failure as Error).message).not.toContain(password);
    }, 30_000);
  });
});
