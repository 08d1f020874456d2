import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

/** How long a first answer is kept for requests repeating its Idempotency-Key: a day, as common payment APIs do. */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60;

/** A stored first answer. */
export interface IdempotentAnswer {
  status: number;
  body: unknown;
  /** sha256 of the request body that got it: the same key with another body is a client bug, not a retry. */
  fingerprint: string;
}

/** This request holds the key: it ends the claim with exactly one of `complete` or `release`. */
export interface HeldClaim {
  state: 'claimed';
  /** Keeps the answer for the key's TTL, if this request still holds the key. */
  complete(answer: IdempotentAnswer): Promise<void>;
  /** Gives the key up (the request was refused or failed), if this request still holds it: a retry is then new. */
  release(): Promise<void>;
}

export type IdempotencyClaim = HeldClaim | { state: 'pending' } | { state: 'done'; answer: IdempotentAnswer };

export interface IdempotencyStore {
  /** Claims `key` for this request, or says it is being answered now, or gives its first answer. */
  begin(client: string, key: string): Promise<IdempotencyClaim>;
}

export const fingerprint = (body: unknown): string =>
  createHash('sha256')
    .update(JSON.stringify(body) ?? '')
    .digest('hex');

export interface IdempotencyStoreOptions {
  /** The topic the requests produce to: a key is one request to one topic, so servers of two topics sharing Redis never answer for each other. */
  topic: string;
  ttlSeconds?: number;
  /**
   * How long a claim outlives the process holding it (a crashed request
   * cannot hold its key longer). A live request renews its claim every third
   * of this, however long its send takes, so no retry can claim the key
   * while the first attempt may still produce.
   */
  pendingMs?: number;
}

const PENDING = 'pending:';

// Each changes the key only while it still holds this request's claim (`pending:<token>`):
// a request never renews, answers for or gives up a claim that is no longer its own.
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;
const COMPLETE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) end return 0`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/**
 * Idempotency keys in Redis, per topic and API key (a key is the client's,
 * so two clients cannot see each other's answers). A claim is held while its
 * request is answered, and becomes the stored answer, for `ttlSeconds`, only
 * once the events are in Kafka.
 */
export function createIdempotencyStore(
  redis: Redis,
  keyPrefix: string,
  { topic, ttlSeconds = IDEMPOTENCY_TTL_SECONDS, pendingMs = 60_000 }: IdempotencyStoreOptions,
): IdempotencyStore {
  // The key is hashed: it is the client's text, of any characters; the topic is hashed with it for the same reason.
  const redisKey = (client: string, key: string) =>
    `${keyPrefix}ingest:idempotency:${client}:${createHash('sha256').update(`${topic}\n${key}`).digest('hex')}`;

  const hold = (k: string, owned: string): HeldClaim => {
    // Renewed while the request runs; unref'd so a claim never keeps the process up.
    const renewal = setInterval(
      () => void redis.eval(RENEW, 1, k, owned, pendingMs).catch(() => undefined),
      Math.max(1, Math.floor(pendingMs / 3)),
    );
    renewal.unref();
    return {
      state: 'claimed',
      async complete(answer) {
        clearInterval(renewal);
        await redis.eval(COMPLETE, 1, k, owned, JSON.stringify(answer), ttlSeconds);
      },
      async release() {
        clearInterval(renewal);
        await redis.eval(RELEASE, 1, k, owned);
      },
    };
  };

  return {
    async begin(client, key) {
      const k = redisKey(client, key);
      const owned = `${PENDING}${randomUUID()}`;
      const claim = async () => (await redis.set(k, owned, 'PX', pendingMs, 'NX')) === 'OK';
      if (await claim()) return hold(k, owned);
      const stored = await redis.get(k);
      // Expired or released between the two calls: claim again.
      if (stored === null) return (await claim()) ? hold(k, owned) : { state: 'pending' };
      if (stored.startsWith(PENDING)) return { state: 'pending' };
      return { state: 'done', answer: JSON.parse(stored) as IdempotentAnswer };
    },
  };
}
