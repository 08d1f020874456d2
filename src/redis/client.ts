import { Redis, type RedisOptions } from 'ioredis';
import type { ConnectionOptions } from 'node:tls';
import { readSettingFile, redactedUrl, settingName, type SluiceConfig } from '../config';
import { ServiceError } from '../errors';

type RedisSettings = SluiceConfig['redis'];

/** ioredis's `tls` option for a rediss:// URL, from `redis.tls` (certificate files are read here); none for redis://. */
export function redisTlsOptions(redis: RedisSettings): ConnectionOptions | undefined {
  if (!redis.url.startsWith('rediss:')) return undefined;
  const tls: ConnectionOptions = { rejectUnauthorized: redis.tls?.rejectUnauthorized ?? true };
  if (redis.tls?.caFile) tls.ca = [readSettingFile(redis.tls.caFile, 'redis.tls.caFile')];
  if (redis.tls?.certFile) tls.cert = readSettingFile(redis.tls.certFile, 'redis.tls.certFile');
  if (redis.tls?.keyFile) tls.key = readSettingFile(redis.tls.keyFile, 'redis.tls.keyFile');
  return tls;
}

/**
 * One line naming the setting to fix when Redis refused the credentials or
 * the certificate; other errors pass unchanged. Refused credentials are not
 * retriable: no reconnect fixes a wrong password.
 */
export function explainRedisError(redis: RedisSettings, err: unknown): unknown {
  const message = (err as Error | undefined)?.message ?? String(err);
  const where = `Redis at ${redactedUrl(redis.url)}`;
  if (/WRONGPASS|NOAUTH|invalid password|invalid username-password/i.test(message)) {
    return new ServiceError(
      'redis',
      `${where} refused the login (${message.split(' ')[0]}): check the user and password in ${settingName('redis.url')}`,
      { cause: err },
    );
  }
  if (/certificate|self[- ]signed|unable to verify|SSL routines|wrong version number/i.test(message)) {
    return new ServiceError(
      'redis',
      `${where}: TLS handshake failed (${message.split('\n')[0]}): check ${settingName('redis.tls.caFile')}`,
      { cause: err },
    );
  }
  return err;
}

/**
 * The one place that builds Redis clients. connect() reports refused
 * credentials and certificates in one line naming the setting. At start-up
 * (the client never was ready) it then stops reconnecting, so a wrong
 * password fails fast instead of looping; a client that was working keeps
 * reconnecting, as after any outage (e.g. credentials being rotated).
 */
export function createRedis(config: Pick<SluiceConfig, 'redis'>, options: RedisOptions = {}): Redis {
  const tls = redisTlsOptions(config.redis);
  const redis = new Redis(config.redis.url, { lazyConnect: true, ...(tls ? { tls } : {}), ...options });
  let wasReady = false;
  redis.once('ready', () => {
    wasReady = true;
  });
  const connect = redis.connect.bind(redis);
  redis.connect = async (callback?: () => void) => {
    // ioredis rejects connect() with "Connection is closed"; the reason came as an 'error' event just before.
    let reason: unknown;
    const remember = (err: Error) => {
      reason = err;
    };
    redis.on('error', remember);
    try {
      await connect(callback);
    } catch (err) {
      const explained = explainRedisError(config.redis, reason ?? err);
      if (explained instanceof ServiceError) {
        if (!wasReady) redis.disconnect();
        throw explained;
      }
      throw err;
    } finally {
      redis.off('error', remember);
    }
  };
  return redis;
}

/** `INFO server` from a fresh connection that gives up quickly; proves a real Redis answers. */
export async function redisServerInfo(config: Pick<SluiceConfig, 'redis'>): Promise<Record<string, string>> {
  const redis = createRedis(config, { maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 });
  redis.on('error', () => undefined); // surfaced through the rejected command below
  try {
    await redis.connect();
    const text = await redis.info('server');
    return Object.fromEntries(
      text
        .split(/\r?\n/)
        .filter((l) => l.includes(':'))
        .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]),
    );
  } catch (err) {
    if (err instanceof ServiceError) throw err;
    throw new ServiceError(
      'redis',
      `Redis at ${redactedUrl(config.redis.url)} is unreachable or refused (${(err as Error).message}): start it with 'sluice stack up' or fix SLUICE_REDIS_URL`,
      {
        retriable: true,
        cause: err,
      },
    );
  } finally {
    redis.disconnect();
  }
}
