import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { SluiceError } from '../errors';

/**
 * A short pause of a stream's ClickHouse writes, coordinated through Redis,
 * so that a shadow replay can swap rebuilt partitions in without a live
 * insert landing between its copy and its swap (such a row would be dropped
 * by the swap).
 *
 * Writers (every live process of the stream) take a lease before each insert
 * and drop it after; the lease is refused while a hold exists. The holder
 * sets the hold, then waits until no lease is left, so when `hold` returns no
 * insert is running and none can start until `release`. Both sides are
 * single Lua calls, so "check the hold and take a lease" cannot interleave
 * with "set the hold and count the leases". Leases and the hold expire (a
 * writer or holder that dies cannot stop the other side for longer than its
 * TTL); time is Redis's own clock, so processes on other machines agree.
 */

/** Keys: 1 hold, 2 leases (zset member = writer token, score = expiry ms). Args: 1 token, 2 ttl ms. */
const ENTER = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]))
return 1`;

/** Keys as ENTER. Args: 1 holder, 2 hold ttl ms. Returns -1 when another holder has it, else the live leases. */
const HOLD = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return -1 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
return redis.call('ZCARD', KEYS[2])`;

/** Keys: 1 hold. Args: 1 holder. Deletes the hold only if it is still this holder's. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export class SinkHeldError extends SluiceError {
  constructor(stream: string) {
    super('SINK_HELD', `ClickHouse writes of stream ${stream} are held by a shadow replay swapping tables in; retrying`, { retriable: true });
    this.name = 'SinkHeldError';
  }
}

export interface SinkHoldOptions {
  /** How long a writer's lease lasts if it never drops it (it died mid-insert). */
  leaseTtlMs?: number;
}

export class SinkHold {
  private readonly holdKey: string;
  private readonly leasesKey: string;
  private readonly leaseTtlMs: number;

  constructor(
    private readonly redis: Redis,
    keyPrefix: string,
    private readonly stream: string,
    options: SinkHoldOptions = {},
  ) {
    this.holdKey = `${keyPrefix}hold:${stream}`;
    this.leasesKey = `${keyPrefix}hold:${stream}:writers`;
    this.leaseTtlMs = options.leaseTtlMs ?? 120_000;
  }

  /** Runs one write under a lease; throws a retriable SinkHeldError while a hold is set. */
  async write<T>(run: () => Promise<T>): Promise<T> {
    const token = randomUUID();
    const granted = await this.redis.eval(ENTER, 2, this.holdKey, this.leasesKey, token, this.leaseTtlMs);
    if (Number(granted) !== 1) throw new SinkHeldError(this.stream);
    try {
      return await run();
    } finally {
      await this.redis.zrem(this.leasesKey, token).catch(() => undefined); // else it expires with its TTL
    }
  }

  /**
   * Sets the hold and waits until every running write finished. Resolves
   * with the holder token for `release`; rejects (with the hold released)
   * when writes are still running after `timeoutMs` or another holder has it.
   * The hold lapses by itself after `holdTtlMs`, so a holder that dies
   * cannot stop the live stream for longer.
   */
  async hold(timeoutMs: number, holdTtlMs: number): Promise<string> {
    const holder = randomUUID();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const leases = Number(await this.redis.eval(HOLD, 2, this.holdKey, this.leasesKey, holder, holdTtlMs));
      if (leases === -1) throw new SluiceError('SINK_HOLD_TAKEN', `another replay holds the writes of stream ${this.stream}; wait for it to finish`);
      if (leases === 0) return holder;
      if (Date.now() >= deadline) {
        await this.release(holder);
        throw new SluiceError('SINK_HOLD_TIMEOUT', `live writes of stream ${this.stream} did not finish within ${timeoutMs} ms; nothing was swapped, try again`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async release(holder: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.holdKey, holder);
  }
}
