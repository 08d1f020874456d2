/**
 * What a dedup claim costs, in the client and in Redis: fresh ids claimed in
 * 500-record calls through `RedisDedupStore` (as the stream task claims a
 * chunk), then the same records again (redeliveries, answered from the
 * marks), against the local Redis. Run it on two checkouts to compare two
 * versions of the store (bench/README.md).
 *
 *   node --expose-gc --import tsx bench/dedup-claim.ts [ids=200000] [rounds=4]
 *
 * Reports this process's CPU per claim (building the call, the client's
 * encoding and parsing, the socket writes) and Redis' (`INFO cpu`, which
 * also counts anything else Redis does meanwhile: run it on a quiet
 * machine). The marks live under a scratch key prefix, deleted afterwards.
 * Not a test: timed numbers live here. Prints one JSON line per round.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { loadConfig } from '../src/config';
import { RedisDedupStore, type DedupRecord } from '../src/dedup';
import { createRedis } from '../src/redis';

const BATCH = 500;

async function redisCpuSeconds(redis: ReturnType<typeof createRedis>): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
  return field('used_cpu_user') + field('used_cpu_sys');
}

async function main(): Promise<void> {
  const ids = Number(process.argv[2] ?? 200_000);
  const rounds = Number(process.argv[3] ?? 4);
  const config = loadConfig();
  const redis = createRedis(config);
  await redis.connect();
  const keyPrefix = `bench-dedup-${randomBytes(3).toString('hex')}:`;
  try {
    for (let round = 1; round <= rounds; round++) {
      const store = new RedisDedupStore(redis, { keyPrefix, namespace: 'event-counts', epoch: round });
      const records: DedupRecord[] = Array.from({ length: ids }, (_, i) => ({
        id: randomUUID(),
        topic: 'bench.events',
        partition: i % 6,
        offset: String(1_000_000 + i),
      }));
      for (const kind of ['fresh', 'redelivered'] as const) {
        // With --expose-gc, the records just made are collected now, not during the measurement.
        (globalThis as { gc?: () => void }).gc?.();
        const cpu = process.cpuUsage();
        const redisBefore = await redisCpuSeconds(redis);
        const started = performance.now();
        let passed = 0;
        for (let i = 0; i < records.length; i += BATCH)
          for (const ok of await store.claim(records.slice(i, i + BATCH))) if (ok) passed++;
        const wallMs = performance.now() - started;
        const used = process.cpuUsage(cpu);
        const redisSeconds = (await redisCpuSeconds(redis)) - redisBefore;
        if (passed !== ids) throw new Error(`${kind}: ${passed} of ${ids} claims passed, expected all`);
        console.log(
          JSON.stringify({
            bench: 'dedup-claim',
            round,
            kind,
            ids,
            wall_ms: Math.round(wallMs),
            client_us_per_claim: Number(((used.user + used.system) / ids).toFixed(2)),
            redis_us_per_claim: Number(((redisSeconds * 1e6) / ids).toFixed(2)),
          }),
        );
      }
    }
  } finally {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 10_000);
      if (keys.length > 0) await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
    redis.disconnect();
  }
}

void main();
