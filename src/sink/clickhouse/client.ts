import {
  ClickHouseLogLevel,
  createClient,
  type ClickHouseClient,
  type ClickHouseClientConfigOptions,
} from '@clickhouse/client';
import { readSettingFile, redactedUrl, settingName, type SluiceConfig } from '../../config';
import { ServiceError } from '../../errors';
import { chdbConnection, chdbTarget } from './chdb';

export type ClickHouseSettings = Pick<SluiceConfig['clickhouse'], 'url' | 'username' | 'password'> &
  Partial<Pick<SluiceConfig['clickhouse'], 'tls'>>;

/** The client's `tls` option from `clickhouse.tls` for an https:// URL (files read here); none otherwise (system CAs). */
export function clickHouseTlsOptions(settings: ClickHouseSettings): ClickHouseClientConfigOptions['tls'] {
  const { tls } = settings;
  if (!tls || !settings.url.startsWith('https:')) return undefined;
  const ca_cert = Buffer.from(readSettingFile(tls.caFile, 'clickhouse.tls.caFile'));
  if (!tls.certFile || !tls.keyFile) return { ca_cert };
  return {
    ca_cert,
    cert: Buffer.from(readSettingFile(tls.certFile, 'clickhouse.tls.certFile')),
    key: Buffer.from(readSettingFile(tls.keyFile, 'clickhouse.tls.keyFile')),
  };
}

/**
 * The one place a ClickHouse client is built. An http(s):// URL (the
 * default, and what deployments use) talks to a server; a `chdb:///dir` URL
 * runs the engine as a library instead (./chdb.ts: how, and what it lacks),
 * which is how the tests run the project's SQL on current releases.
 */
export function createClickHouse(
  settings: ClickHouseSettings,
  database?: string,
  /** How long one request may take; schema migrations copy whole tables and take longer. */
  requestTimeoutMs = 30_000,
): ClickHouseClient {
  const embedded = chdbTarget(settings.url);
  return createClient({
    ...(embedded
      ? { connection: chdbConnection(embedded, database) }
      : {
          url: settings.url,
          username: settings.username,
          password: settings.password,
          database,
          tls: clickHouseTlsOptions(settings),
        }),
    request_timeout: requestTimeoutMs,
    // ClickHouse 18.16 rejects settings it does not know; send none by default.
    clickhouse_settings: {},
    // Failures reach the caller as errors with a one-line explanation; the client's own logging would repeat them.
    log: { level: ClickHouseLogLevel.OFF },
  });
}

/** The server's error code (\`Code: N\` in its reply, or the client's \`code\`), when the server answered with one. */
export function clickHouseErrorCode(err: unknown): number | undefined {
  const own = (err as { code?: unknown })?.code;
  if (typeof own === 'string' && /^\d+$/.test(own)) return Number(own);
  const match = /Code: (\d+)/.exec((err as Error)?.message ?? '');
  return match ? Number(match[1]) : undefined;
}

/** Turns a ClickHouse failure into one line that names the setting to fix. */
export function explainClickHouseError(settings: ClickHouseSettings, err: unknown): ServiceError {
  const message = (err as Error)?.message ?? String(err);
  if (
    /authentication failed|password is incorrect|Wrong password|Unknown user|AUTHENTICATION_FAILED|code: 516|code: 192|code: 193/i.test(
      message,
    )
  ) {
    return new ServiceError(
      'clickhouse',
      `ClickHouse at ${redactedUrl(settings.url)} rejected user '${decodeURIComponent(new URL(settings.url).username) || settings.username}': check ${settingName('clickhouse.password')} and ${settingName('clickhouse.username')}`,
      { cause: err },
    );
  }
  if (/certificate|self[- ]signed|unable to verify|SSL routines|wrong version number/i.test(message)) {
    return new ServiceError(
      'clickhouse',
      `ClickHouse at ${redactedUrl(settings.url)}: TLS handshake failed (${message.split('\n')[0]}): check ${settingName('clickhouse.tls.caFile')}`,
      {
        cause: err,
      },
    );
  }
  // Node's codes for a server, host or network that does not answer (or went away mid-request), the client's own
  // request timeout, and a server's reply that it timed out itself: an outage, to wait out, whatever the cause.
  // (A refusal of rows or a table that quotes such a word is told apart first: classifyClickHouseError.)
  const code = (err as { code?: unknown })?.code;
  if (
    /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|EHOSTDOWN|ENETUNREACH|ENETDOWN|ETIMEDOUT|ECONNRESET|ECONNABORTED|EPIPE|socket hang up|Timeout/i.test(
      `${message} ${typeof code === 'string' ? code : ''}`,
    )
  ) {
    return new ServiceError(
      'clickhouse',
      `ClickHouse at ${redactedUrl(settings.url)} is unreachable (${message.split('\n')[0]}): start it with 'sluice stack up' or fix SLUICE_CLICKHOUSE_URL`,
      { retriable: true, cause: err },
    );
  }
  return clickHouseFailed(settings, err);
}

/** A failure that says nothing more than its own first line. */
export function clickHouseFailed(settings: ClickHouseSettings, err: unknown): ServiceError {
  const message = (err as Error)?.message ?? String(err);
  return new ServiceError(
    'clickhouse',
    `ClickHouse at ${redactedUrl(settings.url)} failed: ${message.split('\n')[0]}`,
    {
      cause: err,
    },
  );
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
