import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import type { SluiceConfig } from '../../config';
import { ServiceError } from '../../errors';

export type ClickHouseSettings = Pick<SluiceConfig['clickhouse'], 'url' | 'username' | 'password'>;

export function createClickHouse(settings: ClickHouseSettings, database?: string): ClickHouseClient {
  return createClient({
    url: settings.url,
    username: settings.username,
    password: settings.password,
    database,
    request_timeout: 30_000,
    // ClickHouse 18.16 rejects settings it does not know; send none by default.
    clickhouse_settings: {},
    // Failures reach the caller as errors with a one-line explanation; the client's own logging would repeat them.
    log: { level: ClickHouseLogLevel.OFF },
  });
}

/** Turns a ClickHouse failure into one line that names the setting to fix. */
export function explainClickHouseError(settings: ClickHouseSettings, err: unknown): ServiceError {
  const message = (err as Error)?.message ?? String(err);
  if (/authentication failed|password is incorrect|Wrong password|Unknown user|AUTHENTICATION_FAILED|code: 516|code: 192|code: 193/i.test(message)) {
    return new ServiceError(
      'clickhouse',
      `ClickHouse at ${settings.url} rejected user '${settings.username}': check SLUICE_CLICKHOUSE_USER and SLUICE_CLICKHOUSE_PASSWORD`,
      { cause: err },
    );
  }
  if (/ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ECONNRESET|socket hang up|Timeout/i.test(message)) {
    return new ServiceError(
      'clickhouse',
      `ClickHouse at ${settings.url} is unreachable (${message.split('\n')[0]}): start it with 'sluice stack up' or fix SLUICE_CLICKHOUSE_URL`,
      { retriable: true, cause: err },
    );
  }
  return new ServiceError('clickhouse', `ClickHouse at ${settings.url} failed: ${message.split('\n')[0]}`, { cause: err });
}

/** `SELECT version()`, with failures explained. Proves a real server answers. */
export async function clickHouseVersion(settings: ClickHouseSettings): Promise<string> {
  const client = createClickHouse(settings);
  try {
    const result = await client.query({ query: 'SELECT version() AS version', format: 'JSONEachRow' });
    const rows = await result.json<{ version: string }>();
    return rows[0]!.version;
  } catch (err) {
    throw explainClickHouseError(settings, err);
  } finally {
    await client.close();
  }
}
