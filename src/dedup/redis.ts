import type { Redis } from 'ioredis';
import { redactedUrl, settingName, type SluiceConfig } from '../config';
import { ServiceError, SluiceError } from '../errors';
import { createRedis } from '../redis';
import { dedupFailOpenCounter } from './metrics';
import {
  claimant,
  dedupKeyPrefix,
  DEFAULT_DEDUP_TTL_SECONDS,
  type DedupRecord,
  type DedupScope,
  type DedupStore,
} from './store';

/**
 * For each id: claim its mark (prefix .. id) for the claimant at the same
 * index if free (SET NX EX), else answer 1 only if the existing mark names the
 * same claimant (a redelivery of the record that claimed it). Runs atomically
 * in Redis, so two processors racing for one id cannot both win, and the whole
 * batch costs one round trip. The ids and claimants come as two JSON arrays and
 * the answers go back as one string of '1' and '0': four arguments and one
 * reply per batch instead of two arguments and one reply per record, which
 * cut the client's cost per claim by a third to a half (docs/design.md §3.4).
 * The marks are the same keys and values as when each key was an argument.
 */
const CLAIM_SCRIPT = `
local ttl = ARGV[1]
local prefix = ARGV[2]
local ids = cjson.decode(ARGV[3])
local claimants = cjson.decode(ARGV[4])
local answers = {}
for i, id in ipairs(ids) do
  local key = prefix .. id
  local who = claimants[i]
  if redis.call('SET', key, who, 'NX', 'EX', ttl) then
    answers[i] = '1'
  elseif redis.call('GET', key) == who then
    answers[i] = '1'
  else
    answers[i] = '0'
  end
end
return table.concat(answers)
`;

/**
 * Replies no retry of the same claim can change: the user may not run the script or a command in it
 * (ACLs), the server has no scripting, or it is a Redis Cluster node, which refuses keys outside its
 * slots (a claim's marks hash to many). Anything else (no connection, a server loading its data, busy,
 * out of memory, read-only during a failover, credentials being rotated) passes with time or an
 * operator's fix of the server, and is retried.
 */
function refusedForGood(message: string): boolean {
  return CLUSTER_REPLY.test(message) || /^NOPERM\b|can't (run this command|access)|^ERR unknown command/.test(message);
}

const CLUSTER_REPLY = /^(MOVED|ASK|CROSSSLOT|CLUSTERDOWN)\b|non local key/;

const CLUSTER_REMEDY = `Sluice's dedup needs a standalone Redis (or a Sentinel-managed primary), not a Redis Cluster: point ${settingName('redis.url')} at one`;

/** What to change, for a reply `refusedForGood` names. */
function remedy(message: string): string {
  if (CLUSTER_REPLY.test(message)) return CLUSTER_REMEDY;
  return `give the user in ${settingName('redis.url')} the right to run EVALSHA, EVAL, SET and GET on the dedup keys, or point it at a Redis with scripting`;
}

/** The string with each lone surrogate replaced by U+FFFD (ES2024, in every Node.js the project runs on; not yet in its TypeScript library). */
function wellFormed(s: string): string {
  const es2024 = s as string & { isWellFormed(): boolean; toWellFormed(): string };
  return es2024.isWellFormed() ? s : es2024.toWellFormed();
}

type ClaimCommand = (numKeys: 0, ttl: string, prefix: string, ids: string, claimants: string) => Promise<string>;

export interface RedisDedupOptions extends DedupScope {
  /** Prepended to every key (config `redis.keyPrefix`). */
  keyPrefix: string;
  ttlSeconds?: number;
  /** When Redis is unreachable, answer all-true and count it instead of rejecting. Off by default: wrong results are worse than a pause. */
  failOpen?: boolean;
  /** For error messages only (secrets are redacted). */
  redisUrl?: string;
}

export class RedisDedupStore implements DedupStore {
  private readonly prefix: string;
  private readonly ttlSeconds: number;
  private failOpenRecords = 0;

  constructor(
    private readonly redis: Redis,
    private readonly options: RedisDedupOptions,
  ) {
    this.prefix = dedupKeyPrefix(options.keyPrefix, options);
    this.ttlSeconds = options.ttlSeconds ?? DEFAULT_DEDUP_TTL_SECONDS;
    if (!Number.isInteger(this.ttlSeconds) || this.ttlSeconds < 1)
      throw new SluiceError(
        'DEDUP_OPTIONS_INVALID',
        `dedup TTL must be a positive number of seconds, got ${this.ttlSeconds}`,
      );
    // defineCommand sends EVALSHA and falls back to EVAL once if the script is not cached yet.
    if (!('sluiceDedupClaim' in redis)) redis.defineCommand('sluiceDedupClaim', { lua: CLAIM_SCRIPT });
  }

  /** Records let through unchecked because of fail-open (also in the `sluice_dedup_fail_open_total` metric). */
  get failOpenCount(): number {
    return this.failOpenRecords;
  }

  /** The Redis key of an id's mark; exposed so tests and operators can inspect it. */
  keyOf(id: string): string {
    return this.prefix + id;
  }

  async claim(records: DedupRecord[]): Promise<boolean[]> {
    if (records.length === 0) return [];
    // Well-formed: a lone surrogate is sent as U+FFFD, the bytes it became when each key was an argument
    // (and Redis' JSON decoder refuses a lone surrogate's escape).
    const ids = JSON.stringify(records.map((r) => wellFormed(r.id)));
    let answers: string;
    try {
      answers = await this.run(ids, JSON.stringify(records.map(claimant)));
    } catch (err) {
      // Fail-open is for outages: a server that refuses the claim for good is a setup to fix, and stops the stream.
      if (err instanceof ServiceError) throw err;
      if (this.options.failOpen) {
        this.failOpenRecords += records.length;
        dedupFailOpenCounter().inc({ namespace: this.options.namespace }, records.length);
        return records.map(() => true);
      }
      const message = (err as Error).message;
      throw new ServiceError(
        'redis',
        `Redis${this.where()} failed a dedup claim (${message}): consumption pauses and retries; check that Redis is up`,
        {
          retriable: true,
          cause: err,
        },
      );
    }
    if (answers.length !== records.length)
      throw new ServiceError(
        'redis',
        `Redis${this.where()} answered ${answers.length} of ${records.length} dedup claims`,
        {
          retriable: true,
        },
      );
    return records.map((_, i) => answers.charCodeAt(i) === 49); // '1'
  }

  /**
   * At start-up, without writing a key (one left behind, even for a second, would show in every listing
   * of the stream's keys): runs the claim for no id, which a user who may not run scripts or a server
   * without scripting refuses, and asks whether the server is a Redis Cluster node. Either stops the
   * stream there, naming the setting, rather than at its first batch. A user who may run the script but
   * not a command in it is refused at the first claim, which stops the stream as well.
   */
  async probe(): Promise<void> {
    await this.run('[]', '[]');
    let cluster: string;
    try {
      cluster = await this.redis.info('cluster');
    } catch {
      return; // INFO refused (ACLs): the first claim tells
    }
    if (/^cluster_enabled:1/m.test(cluster))
      throw new ServiceError(
        'redis',
        `Redis${this.where()} is a Redis Cluster node (cluster_enabled:1): no retry can change that; ${CLUSTER_REMEDY}`,
      );
  }

  /** The claim script; a reply that no retry can change is thrown as a non-retriable ServiceError, anything else as it came. */
  private async run(ids: string, claimants: string): Promise<string> {
    const command = (this.redis as unknown as { sluiceDedupClaim: ClaimCommand }).sluiceDedupClaim;
    try {
      return await command.call(this.redis, 0, String(this.ttlSeconds), this.prefix, ids, claimants);
    } catch (err) {
      const message = (err as Error).message;
      if (!refusedForGood(message)) throw err;
      throw new ServiceError(
        'redis',
        `Redis${this.where()} refused the dedup claim (${message}): no retry can change that; ${remedy(message)}`,
        { cause: err },
      );
    }
  }

  private where(): string {
    return this.options.redisUrl ? ` at ${redactedUrl(this.options.redisUrl)}` : '';
  }
}

/**
 * A store on its own connection, tuned to fail fast: commands are not queued
 * while disconnected and time out, so an unreachable Redis turns into a
 * retriable error (the runtime pauses) instead of a batch that hangs.
 */
export async function connectRedisDedupStore(
  config: Pick<SluiceConfig, 'redis'>,
  options: Omit<RedisDedupOptions, 'keyPrefix' | 'redisUrl'> & { commandTimeoutMs?: number },
): Promise<{ store: RedisDedupStore; close(): void }> {
  let closed = false;
  const redis = createRedis(config, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: options.commandTimeoutMs ?? 5000,
    // ioredis waits this long for an already-closed socket before letting the process exit.
    disconnectTimeout: 200,
    // Keep reconnecting in the background until closed (a timer scheduled after close would hold the process open).
    retryStrategy: (times) => (closed ? null : Math.min(times * 200, 2000)),
  });
  redis.on('error', () => undefined); // surfaced through the rejected claim
  const close = () => {
    closed = true;
    redis.disconnect();
  };
  const store = new RedisDedupStore(redis, {
    ...options,
    keyPrefix: config.redis.keyPrefix,
    redisUrl: config.redis.url,
  });
  /** A refusal no retry can change (credentials, ACLs, a Cluster) stops the start as it came. */
  const throwIfForGood = (err: unknown) => {
    if (!(err instanceof ServiceError) || err.retriable) return;
    close();
    throw err;
  };
  try {
    await redis.connect();
  } catch (err) {
    throwIfForGood(err);
    if (!options.failOpen) {
      close();
      throw new ServiceError(
        'redis',
        `Redis for dedup is unreachable (${(err as Error).message}): start it with 'sluice stack up' or fix SLUICE_REDIS_URL`,
        { retriable: true, cause: err },
      );
    }
  }
  try {
    await store.probe();
  } catch (err) {
    throwIfForGood(err);
    // Anything else (out of memory, read-only during a failover, busy, loading) is an outage: the claims pause until it passes.
  }
  return { store, close };
}
