import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { systemClock, type Clock } from '../clock';

/** Renews the lease only while it is still ours: a holder whose lease lapsed must not extend another's. */
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
/** Deletes the lease only while it is still ours, for the same reason. */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

export interface LeaseOptions {
  /** How long the lease outlives a holder that died without releasing it. */
  ttlMs?: number;
  /** How often a process waiting for the lease asks again. */
  pollMs?: number;
  /** Called once, when the lease is taken by another process: its holder (`<host>#<pid>#<random>`). */
  onWait?: (holder: string) => void;
  clock?: Clock;
}

/**
 * Runs `work` while holding a lease on a Redis key, so that at most one
 * process at a time runs it (a SET NX with an expiry, renewed every third of
 * it while the work runs). Processes that find the lease held wait and try
 * again; a holder that dies without releasing it holds it for `ttlMs` at most.
 * A single Redis decides, which is what the processes already share.
 */
export async function withLease<T>(
  redis: Redis,
  key: string,
  work: () => Promise<T>,
  options: LeaseOptions = {},
): Promise<T> {
  const { ttlMs = 30_000, pollMs = 250, clock = systemClock } = options;
  const token = `${hostname()}#${process.pid}#${randomBytes(4).toString('hex')}`;
  let waited = false;
  while ((await redis.set(key, token, 'PX', ttlMs, 'NX')) !== 'OK') {
    if (!waited) {
      waited = true;
      options.onWait?.((await redis.get(key)) ?? 'a process that has just released it');
    }
    await clock.sleep(pollMs);
  }
  // A failed renewal is not fatal to the work: the lease then lapses, as if the holder had died.
  const renewal = setInterval(() => void redis.eval(RENEW, 1, key, token, ttlMs).catch(() => undefined), ttlMs / 3);
  renewal.unref();
  try {
    return await work();
  } finally {
    clearInterval(renewal);
    await redis.eval(RELEASE, 1, key, token).catch(() => undefined);
  }
}
