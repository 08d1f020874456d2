import { Redis, type RedisOptions } from 'ioredis';
import type { SluiceConfig } from '../config';
import { ServiceError } from '../errors';

export function createRedis(config: Pick<SluiceConfig, 'redis'>, options: RedisOptions = {}): Redis {
  return new Redis(config.redis.url, { lazyConnect: true, ...options });
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
    const url = new URL(config.redis.url);
    url.password = url.password ? '***' : '';
    throw new ServiceError('redis', `Redis at ${url.toString()} is unreachable or refused (${(err as Error).message}): start it with 'sluice stack up' or fix SLUICE_REDIS_URL`, {
      retriable: true,
      cause: err,
    });
  } finally {
    redis.disconnect();
  }
}
