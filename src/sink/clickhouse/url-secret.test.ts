import { explainClickHouseError } from './client';

/**
 * No secret in messages: @clickhouse/client takes credentials from the URL's user-info (they override
 * clickhouse.username/password), so `https://user:password@host:8443` is a working setting, and every
 * message naming "ClickHouse at <url>" must hide its password.
 */
describe('ClickHouse messages and a URL with credentials', () => {
  const settings = { url: 'https://sluice:ch-Secret-9@ch.example.com:8443', username: 'default', password: '' };
  test.each([
    ['unreachable', Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:8443'), { code: 'ECONNREFUSED' })],
    ['login refused', new Error('Code: 516. DB::Exception: sluice: Authentication failed')],
    ['other failure', new Error('Code: 60. DB::Exception: Unknown table')],
  ])('%s: the message does not show the URL password', (_, err) => {
    expect(explainClickHouseError(settings, err).message).not.toContain('ch-Secret-9');
  });
});
