import type { Redis } from 'ioredis';

/**
 * A fixed window per client, counted in Redis by one Lua script so that
 * check-and-add is atomic across any number of API instances. The window
 * starts with the client's first event and lasts `windowMs`; a request whose
 * events would exceed the limit is refused whole and adds nothing.
 * Returns [allowed 0|1, ms until the window ends, events counted in the window].
 */
const TAKE = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local cost = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
if used + cost > limit then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then ttl = tonumber(ARGV[3]) end
  return {0, ttl, used}
end
local now = redis.call('INCRBY', KEYS[1], cost)
if now == cost then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return {1, redis.call('PTTL', KEYS[1]), now}
`;

export interface RateDecision {
  allowed: boolean;
  /** Milliseconds until the window resets (when refused: how long to wait). */
  retryAfterMs: number;
  /** Events left in the window after this decision; absent when there is no limit. */
  remaining?: number;
}

export interface RateLimiter {
  /** Events a client may send per window; 0 is no limit. A request of more events than this can never pass. */
  readonly limit: number;
  /** The window, in milliseconds. */
  readonly windowMs: number;
  take(client: string, events: number): Promise<RateDecision>;
}

export function createRateLimiter(
  redis: Redis,
  keyPrefix: string,
  limitPerWindow: number,
  windowMs = 1000,
): RateLimiter {
  redis.defineCommand('sluiceRateTake', { numberOfKeys: 1, lua: TAKE });
  const run = (
    redis as unknown as { sluiceRateTake(key: string, ...args: number[]): Promise<[number, number, number]> }
  ).sluiceRateTake.bind(redis);
  return {
    limit: limitPerWindow,
    windowMs,
    async take(client, events) {
      if (limitPerWindow === 0) return { allowed: true, retryAfterMs: 0 };
      const [allowed, ttl, used] = await run(`${keyPrefix}ingest:rate:${client}`, events, limitPerWindow, windowMs);
      return { allowed: allowed === 1, retryAfterMs: Math.max(1, ttl), remaining: Math.max(0, limitPerWindow - used) };
    },
  };
}

/**
 * Claims event ids for ingestion-time duplicate rejection. A claim is written
 * as `pending` (expiring after `pendingMs`) before producing, and turned into
 * `done` (for the full TTL) only after Kafka acknowledged; if producing fails
 * the claim is removed. So a mark never hides an event that did not reach
 * Kafka for longer than one produce attempt: a retry sees `pending` and is
 * told to retry (503), not that the event is a duplicate.
 * All ids of one request are claimed all-or-nothing in one script.
 */
const CLAIM = `
local found = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if v then found[#found + 1] = i .. '=' .. v end
end
if #found > 0 then return found end
for _, key in ipairs(KEYS) do redis.call('SET', key, 'pending', 'PX', ARGV[1]) end
return found
`;

export interface ClaimResult {
  claimed: boolean;
  /** Ids already accepted (`done`) or being accepted right now (`pending`). */
  duplicates: string[];
  inProgress: string[];
}

export interface DuplicateGuard {
  claim(ids: string[]): Promise<ClaimResult>;
  confirm(ids: string[]): Promise<void>;
  release(ids: string[]): Promise<void>;
}

export function createDuplicateGuard(
  redis: Redis,
  keyPrefix: string,
  ttlSeconds: number,
  pendingMs = 60_000,
): DuplicateGuard {
  redis.defineCommand('sluiceIngestClaim', { lua: CLAIM });
  const key = (id: string) => `${keyPrefix}ingest:seen:${id}`;
  const claimScript = (
    redis as unknown as { sluiceIngestClaim(n: number, ...args: (string | number)[]): Promise<string[]> }
  ).sluiceIngestClaim.bind(redis);
  return {
    async claim(ids) {
      const found = await claimScript(ids.length, ...ids.map(key), pendingMs);
      const duplicates: string[] = [];
      const inProgress: string[] = [];
      for (const entry of found) {
        const [index, state] = entry.split('=');
        (state === 'done' ? duplicates : inProgress).push(ids[Number(index) - 1]!);
      }
      return { claimed: found.length === 0, duplicates, inProgress };
    },
    async confirm(ids) {
      const pipeline = redis.pipeline();
      for (const id of ids) pipeline.set(key(id), 'done', 'EX', ttlSeconds);
      await pipeline.exec();
    },
    async release(ids) {
      if (ids.length > 0) await redis.del(...ids.map(key));
    },
  };
}
