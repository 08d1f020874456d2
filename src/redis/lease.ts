import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { SluiceError } from '../errors';
import { systemClock, type Clock } from '../clock';

/** Renews the lease only while it is still ours: a holder whose lease lapsed must not extend another's. */
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
/** Deletes the lease only while it is still ours, for the same reason. */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

/** The lease was lost while its work ran: another process may hold it now. */
export class LeaseLostError extends SluiceError {
  constructor(key: string, why: string) {
    super(
      'LEASE_LOST',
      `lost the lease ${key} (${why}): stopped before the next step, since another process may hold it`,
    );
    this.name = 'LeaseLostError';
  }
}

export interface LeaseOptions {
  /** How long the lease outlives a holder that died without releasing it. */
  ttlMs?: number;
  /** How often a process waiting for the lease asks again. */
  pollMs?: number;
  /** Called when the lease is found taken, and again every `waitNoticeMs` of waiting: its holder and the wait so far. */
  onWait?: (holder: string, waitedMs: number) => void;
  waitNoticeMs?: number;
  clock?: Clock;
}

/**
 * Runs `work` while holding a lease on a Redis key, so that at most one
 * process at a time runs it: a SET NX with an expiry, renewed every third of
 * it while the work runs. Processes that find the lease held wait and try
 * again; a holder that dies without releasing it holds it for `ttlMs` at
 * most. A single Redis decides, the one the processes already share.
 *
 * A lease can still be lost under a live holder (Redis restarted without
 * the key, or unreachable for longer than the expiry). `work` gets a signal
 * that aborts as soon as a renewal finds the key gone or another holder's,
 * or renewals have failed for half the expiry; it must check it before each
 * step that must not overlap another holder's.
 */
export async function withLease<T>(
  redis: Redis,
  key: string,
  work: (signal: AbortSignal) => Promise<T>,
  options: LeaseOptions = {},
): Promise<T> {
  const { ttlMs = 30_000, pollMs = 250, waitNoticeMs = 30_000, clock = systemClock } = options;
  const token = `${hostname()}#${process.pid}#${randomBytes(4).toString('hex')}`;
  const waitStarted = clock.now();
  let noticeAt = waitStarted;
  for (;;) {
    if ((await redis.set(key, token, 'PX', ttlMs, 'NX')) === 'OK') break;
    const holder = await redis.get(key);
    // A SET whose reply was lost and that the client sent again finds our own token: the lease is ours.
    if (holder === token) break;
    if (clock.now() >= noticeAt) {
      options.onWait?.(holder ?? 'a process that has just released it', clock.now() - waitStarted);
      noticeAt = clock.now() + waitNoticeMs;
    }
    await clock.sleep(pollMs);
  }
  const lost = new AbortController();
  let renewedAt = clock.now();
  const renew = async () => {
    try {
      if ((await redis.eval(RENEW, 1, key, token, ttlMs)) === 0) lost.abort(new LeaseLostError(key, 'it expired'));
      else renewedAt = clock.now();
    } catch (err) {
      if (clock.now() - renewedAt >= ttlMs / 2)
        lost.abort(new LeaseLostError(key, `Redis did not renew it for ${clock.now() - renewedAt} ms: ${String(err)}`));
    }
  };
  const cancel = clock.setInterval(() => void renew(), ttlMs / 3);
  try {
    return await work(lost.signal);
  } finally {
    cancel();
    // Only when still ours; if this fails, the lease lapses after `ttlMs` and the next process waits that long.
    await redis.eval(RELEASE, 1, key, token).catch(() => undefined);
  }
}
