import { parseURL } from 'ioredis/built/utils';
import { loadConfig, redactConfig, redactedUrl } from './load';

/**
 * `redactedUrl` (one redaction for every URL a message, log or printed config shows) and `redactConfig`. The judge of what is a secret is the client that reads the URL: ioredis
 * parses it with WHATWG URL and URLSearchParams, so it decodes percent-escapes in query *names* too.
 */
describe('redactedUrl against what ioredis reads from the URL', () => {
  /** Valid URLs keep everything ioredis reads except the password (no mangling). */
  test.each([
    'redis://127.0.0.1:6379',
    'rediss://app:p%40ss%2Fw0rd@redis.example.com:6380/2',
    'redis://app:pw@[::1]:6379/0',
    'rediss://[2001:db8::7]:6380',
    'redis://r:6379/0?db=3&family=6&password=hunter2&connectionName=sluice',
    'redis://:only-pw@r:6379?password=second',
  ])('%s: everything but the password survives', (url) => {
    const before = parseURL(url) as Record<string, unknown>;
    const after = parseURL(redactedUrl(url)) as Record<string, unknown>;
    const withoutSecret = (o: Record<string, unknown>) => ({
      ...o,
      password: o.password === undefined ? undefined : 'x',
    });
    expect(withoutSecret(after)).toEqual(withoutSecret(before));
    if (before.password) expect(redactedUrl(url)).not.toContain(String(before.password));
  });

  /**
   * ioredis decodes the query's names (URLSearchParams) and logs in with the value of a percent-encoded
   * `password`, so the URL works: the redaction must compare names decoded too.
   */
  test.each(['redis://127.0.0.1:6379/0?pass%77ord=hunter2', 'redis://127.0.0.1:6379/0?db=1&%70assword=hunter2'])(
    '%s: a percent-encoded parameter name does not let the password through',
    (url) => {
      expect((parseURL(url) as { password?: string }).password).toBe('hunter2'); // ioredis uses it
      expect(redactedUrl(url)).not.toContain('hunter2');
    },
  );
});

/**
 * The ClickHouse URL may carry credentials (@clickhouse/client reads `https://user:password@host:port`,
 * and its user-info overrides clickhouse.username/password): the printed config hides that password too.
 */
describe('redactConfig and a ClickHouse URL with credentials', () => {
  test('the ClickHouse URL password is redacted', () => {
    const config = loadConfig({ SLUICE_CLICKHOUSE_URL: 'https://sluice:ch-Secret-9@ch.example.com:8443' });
    expect(JSON.stringify(redactConfig(config))).not.toContain('ch-Secret-9');
  });
});
