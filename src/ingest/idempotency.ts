import { createHash } from 'node:crypto';
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

export type IdempotencyClaim =
  { state: 'claimed' } | { state: 'pending' } | { state: 'done'; answer: IdempotentAnswer };

export interface IdempotencyStore {
  /** Claims `key` for this request, or says it is being answered now, or gives its first answer. */
  begin(client: string, key: string): Promise<IdempotencyClaim>;
  /** Keeps the answer for the key's TTL. */
  complete(client: string, key: string, answer: IdempotentAnswer): Promise<void>;
  /** Gives the key up (the request was refused or failed): a retry with it is treated as new. */
  release(client: string, key: string): Promise<void>;
}

export const fingerprint = (body: unknown): string =>
  createHash('sha256')
    .update(JSON.stringify(body) ?? '')
    .digest('hex');

/**
 * Idempotency keys in Redis, per API key (a key is the client's, so two
 * clients cannot see each other's answers). A claim is `pending` for at most
 * `pendingMs` (a crashed request cannot hold its key longer), and becomes the
 * stored answer, for `ttlSeconds`, only once the events are in Kafka.
 */
export function createIdempotencyStore(
  redis: Redis,
  keyPrefix: string,
  ttlSeconds = IDEMPOTENCY_TTL_SECONDS,
  pendingMs = 60_000,
): IdempotencyStore {
  // The key is hashed: it is the client's text, of any characters.
  const redisKey = (client: string, key: string) =>
    `${keyPrefix}ingest:idempotency:${client}:${createHash('sha256').update(key).digest('hex')}`;
  return {
    async begin(client, key) {
      const k = redisKey(client, key);
      if ((await redis.set(k, 'pending', 'PX', pendingMs, 'NX')) === 'OK') return { state: 'claimed' };
      const stored = await redis.get(k);
      // Expired or released between the two calls: claim again.
      if (stored === null)
        return (await redis.set(k, 'pending', 'PX', pendingMs, 'NX')) === 'OK'
          ? { state: 'claimed' }
          : { state: 'pending' };
      if (stored === 'pending') return { state: 'pending' };
      return { state: 'done', answer: JSON.parse(stored) as IdempotentAnswer };
    },
    async complete(client, key, answer) {
      await redis.set(redisKey(client, key), JSON.stringify(answer), 'EX', ttlSeconds);
    },
    async release(client, key) {
      await redis.del(redisKey(client, key));
    },
  };
}
