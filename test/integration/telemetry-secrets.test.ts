import { randomBytes, randomUUID } from 'node:crypto';
import { produceWorkload } from '../../src/generator';
import { hashApiKey } from '../../src/ingest';
import { createTestContext, type TestContext } from '../helpers/context';
import { startCredentialProxy, type CredentialProxy } from '../helpers/credential-proxy';
import { spawnSluice, waitFor } from '../helpers/processes';
import { ingestAdminUrl, ingestUrl, postEvents, publishedPages, sampleEvent, stopChild } from '../helpers/secrets';
import { metricValue, observabilityUrl } from '../helpers/telemetry';

const secret = (label: string) => `${label}-${randomBytes(6).toString('hex')}`;

/**
 * Real processes run with real secrets, each of them checked by the service it
 * opens: a Redis ACL user's password, a ClickHouse password (checked by a
 * proxy in front of the local ClickHouse, whose own password is fixed) and
 * an ingest API key. Nothing they print (JSON logs at debug level, errors,
 * the summary), their metrics and their status pages contain any of them.
 * (The Kafka SASL password is checked the same way in security-kafka.test.ts,
 * which has a SASL_SSL broker.)
 */
describe('secrets never logged', () => {
  let ctx: TestContext;
  let topic: string;
  const redisUser = `sluice_secrets_${randomBytes(4).toString('hex')}`;
  const redisPassword = secret('redis');
  const clickhouseUser = 'secrets_user';
  const clickhousePassword = secret('clickhouse');
  const apiKey = secret('apikey');
  let proxy: CredentialProxy;

  beforeAll(async () => {
    ctx = await createTestContext('secrets');
    topic = await ctx.createTopic('events', 1);
    await ctx.createTopic('events.dlq', 1);
    await ctx.createTopic('events.late', 1);
    await produceWorkload({ config: ctx.config, topic, count: 500, seed: 5, poisonRatio: 0.02 });
    await ctx.redis.call(
      'ACL',
      'SETUSER',
      redisUser,
      'reset',
      'on',
      `>${redisPassword}`,
      `~${ctx.config.redis.keyPrefix}*`,
      '+@all',
      '-@admin',
      '-@dangerous',
      '+info',
    );
    proxy = await startCredentialProxy(ctx.config.clickhouse, {
      username: clickhouseUser,
      password: clickhousePassword,
    });
  });
  afterAll(async () => {
    await proxy?.close();
    await ctx.redis.call('ACL', 'DELUSER', redisUser);
    await ctx.cleanup();
  });

  const baseEnv = () => ctx.childEnv('debug');

  it('a processor and the ingest API holding a Redis, a ClickHouse password and an API key show none of them anywhere', async () => {
    const redisUrl = new URL(ctx.config.redis.url);
    redisUrl.username = redisUser;
    redisUrl.password = redisPassword;
    const env = {
      ...baseEnv(),
      SLUICE_REDIS_URL: redisUrl.toString(),
      SLUICE_CLICKHOUSE_URL: proxy.url,
      SLUICE_CLICKHOUSE_USER: clickhouseUser,
      SLUICE_CLICKHOUSE_PASSWORD: clickhousePassword,
      SLUICE_INGEST_API_KEYS: hashApiKey(apiKey),
      SLUICE_INGEST_TOPIC: topic,
    };
    const processor = spawnSluice(
      ['run', 'event-counts', '--topic', topic, '--group', ctx.group, '--flush-interval', '300', '--http-port', '0'],
      env,
    );
    const ingest = spawnSluice(['serve', '--port', '0'], env);
    try {
      const processorUrl = await observabilityUrl(processor);
      await waitFor(
        'all records processed',
        async () =>
          metricValue(await (await fetch(`${processorUrl}/metrics`)).text(), 'sluice_records_in_total') === 500,
        30_000,
      );
      const ingestAt = await ingestUrl(ingest);
      // Accepted, refused for its content, and refused for a key that contains the real one.
      const event = sampleEvent(randomUUID());
      expect((await postEvents(ingestAt, apiKey, event)).status).toBe(202);
      expect((await postEvents(ingestAt, apiKey, { ...event, event_time: 'yesterday' })).status).toBe(400);
      expect((await postEvents(ingestAt, `${apiKey}-x`, event)).status).toBe(401);

      const pages = (await publishedPages(processorUrl)) + (await publishedPages(await ingestAdminUrl(ingest)));
      const output = (await stopChild(processor)) + (await stopChild(ingest));
      // The secrets were really used: ClickHouse saw the proxy's credentials (the Redis ACL user can do nothing with a wrong password).
      expect(proxy.authenticated()).toBeGreaterThan(0);
      const jsonLines = output.split('\n').filter((l) => l.startsWith('{"level"'));
      expect(jsonLines.length).toBeGreaterThan(3);
      for (const line of jsonLines) expect(() => JSON.parse(line) as unknown).not.toThrow();
      for (const value of [redisPassword, clickhousePassword, apiKey]) {
        expect(output).not.toContain(value);
        expect(pages).not.toContain(value);
      }
    } finally {
      for (const child of [processor, ingest]) if (child.process.exitCode === null) child.process.kill('SIGKILL');
    }
  }, 60_000);

  it('a processor refused by ClickHouse says which setting to fix, without the password', async () => {
    const wrong = secret('clickhouse-wrong');
    const child = spawnSluice(
      ['run', 'event-counts', '--topic', topic, '--group', `${ctx.group}.refused`, '--http-port', '0'],
      {
        ...baseEnv(),
        SLUICE_CLICKHOUSE_URL: proxy.url,
        SLUICE_CLICKHOUSE_USER: clickhouseUser,
        SLUICE_CLICKHOUSE_PASSWORD: wrong,
      },
    );
    const started = Date.now();
    expect(await child.exited).toBe(1);
    const output = child.output.join('');
    expect(Date.now() - started).toBeLessThan(20_000);
    // Besides debug log lines (JSON), one line for the user.
    expect(
      output
        .trim()
        .split('\n')
        .filter((line) => !line.startsWith('{"level"')),
    ).toEqual([
      `sluice: ClickHouse at ${proxy.url} rejected user '${clickhouseUser}': check clickhouse.password (SLUICE_CLICKHOUSE_PASSWORD) and clickhouse.username (SLUICE_CLICKHOUSE_USER)`,
    ]);
    expect(output).not.toContain(wrong);
    expect(output).not.toContain(clickhousePassword);
  }, 30_000);
});
