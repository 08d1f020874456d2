import { produceWorkload } from '../../src/generator';
import { createTestContext, type TestContext } from '../helpers/context';
import { spawnSluice, waitFor } from '../helpers/processes';
import { metricValue, observabilityUrl } from '../helpers/telemetry';

/**
 * Real processors started with passwords in their configuration: nothing
 * they print (JSON logs at debug level, errors, the summary, the status
 * page) contains them.
 */
describe('secrets never logged', () => {
  let ctx: TestContext;
  let topic: string;

  beforeAll(async () => {
    ctx = await createTestContext('secrets');
    topic = await ctx.createTopic('events', 1);
    await ctx.createTopic('events.dlq', 1);
    await ctx.createTopic('events.late', 1);
    await produceWorkload({ config: ctx.config, topic, count: 500, seed: 5, poisonRatio: 0.02 });
  });
  afterAll(async () => ctx.cleanup());

  const baseEnv = () => ({ SLUICE_CLICKHOUSE_DATABASE: ctx.id, SLUICE_REDIS_KEY_PREFIX: ctx.config.redis.keyPrefix, SLUICE_LOG_LEVEL: 'debug' });

  it('a running processor with a password in its Redis URL logs JSON lines without it', async () => {
    // The local Redis's default user has no password, so it accepts any: the secret is really used to connect.
    const secret = 'redis-Secret-7f3a91';
    const redisUrl = new URL(ctx.config.redis.url);
    redisUrl.username = 'default';
    redisUrl.password = secret;
    const child = spawnSluice(['run', 'event-counts', '--topic', topic, '--group', ctx.group, '--flush-interval', '300', '--http-port', '0'], {
      ...baseEnv(),
      SLUICE_REDIS_URL: redisUrl.toString(),
    });
    const url = await observabilityUrl(child);
    await waitFor('all records processed', async () => metricValue(await (await fetch(`${url}/metrics`)).text(), 'sluice_records_in_total') === 500, 30_000);
    const page = (await (await fetch(`${url}/status.json`)).text()) + (await (await fetch(url)).text());
    child.process.kill('SIGTERM');
    expect(await child.exited).toBe(0);
    const output = child.output.join('');
    const jsonLines = output.split('\n').filter((l) => l.startsWith('{"level"'));
    expect(jsonLines.length).toBeGreaterThan(3);
    for (const line of jsonLines) expect(() => JSON.parse(line) as unknown).not.toThrow();
    expect(output).not.toContain(secret);
    expect(page).not.toContain(secret);
  }, 45_000);

  it('a processor refused by ClickHouse says which setting to fix, without the password', async () => {
    const secret = 'clickhouse-Secret-2b8e44';
    const child = spawnSluice(['run', 'event-counts', '--topic', topic, '--group', `${ctx.group}.refused`, '--http-port', '0'], {
      ...baseEnv(),
      SLUICE_CLICKHOUSE_PASSWORD: secret,
    });
    expect(await child.exited).not.toBe(0);
    const output = child.output.join('');
    expect(output).toMatch(/SLUICE_CLICKHOUSE_PASSWORD/);
    expect(output).not.toContain(secret);
  }, 30_000);
});
