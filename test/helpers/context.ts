import { randomBytes } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Redis } from 'ioredis';
import { loadConfig, type SluiceConfig } from '../../src/config';
import { createKafka, type KafkaAdmin, type TopicToCreate } from '../../src/kafka';
import { createRedis } from '../../src/redis';
import { createClickHouse } from '../../src/sink/clickhouse/client';

/**
 * Everything one integration spec owns on the shared stack: its own topics,
 * consumer group, Redis key prefix and ClickHouse database, all named after a
 * random id so specs cannot collide, and all removed by `cleanup()`.
 */
export interface TestContext {
  id: string;
  config: SluiceConfig;
  /** A topic name unique to this context. */
  topic(name: string): string;
  group: string;
  admin: KafkaAdmin;
  redis: Redis;
  /** A client whose default database is this context's database. */
  clickhouse: ClickHouseClient;
  createTopic(name: string, partitions?: number, extra?: Partial<TopicToCreate>): Promise<string>;
  /** Environment for a `sluice` child process that should use this context's database and key prefix. */
  childEnv(logLevel?: string): NodeJS.ProcessEnv;
  cleanup(): Promise<void>;
}

export async function createTestContext(label: string): Promise<TestContext> {
  const id = `t_${label.replace(/[^A-Za-z0-9]/g, '_')}_${randomBytes(4).toString('hex')}`;
  const base = loadConfig();
  const config: SluiceConfig = {
    ...base,
    redis: { ...base.redis, keyPrefix: `test:${id}:` },
    clickhouse: { ...base.clickhouse, database: id },
  };
  const admin = createKafka(config).admin();
  await admin.connect();
  const redis = createRedis(config);
  await redis.connect();
  const root = createClickHouse(config.clickhouse);
  await root.command({ query: `CREATE DATABASE IF NOT EXISTS ${id}` });
  await root.close();
  const clickhouse = createClickHouse(config.clickhouse, id);
  const topics: string[] = [];

  const topic = (name: string) => `${id}.${name}`;
  return {
    id,
    config,
    topic,
    group: `${id}.group`,
    admin,
    redis,
    clickhouse,
    childEnv: (logLevel = 'warn') => ({
      SLUICE_CLICKHOUSE_DATABASE: id,
      SLUICE_REDIS_KEY_PREFIX: config.redis.keyPrefix,
      SLUICE_LOG_LEVEL: logLevel,
    }),
    async createTopic(name, partitions = 1, extra = {}) {
      const full = topic(name);
      await admin.createTopics([{ topic: full, numPartitions: partitions, ...extra }]);
      topics.push(full);
      return full;
    },
    async cleanup() {
      const owned = (await admin.listTopics()).filter((t) => t.startsWith(`${id}.`));
      if (owned.length > 0) await admin.deleteTopics(owned).catch(() => undefined);
      const groups = (await admin.listGroups()).map((g) => g.groupId).filter((g) => g.startsWith(`${id}.`));
      if (groups.length > 0) await admin.deleteGroups(groups).catch(() => undefined);
      await admin.disconnect();
      // In slices: a large run leaves a million dedup marks, too many for one call's arguments.
      const keys = await redis.keys(`test:${id}:*`);
      for (let i = 0; i < keys.length; i += 10_000) await redis.del(...keys.slice(i, i + 10_000));
      redis.disconnect();
      await clickhouse.command({ query: `DROP DATABASE IF EXISTS ${id}` });
      // Subjects registered for this context's topics (`<topic>-value`), soft then hard deleted.
      const registry = config.registry.url;
      const subjects = (await (await fetch(`${registry}/subjects`)).json().catch(() => [])) as string[];
      for (const s of subjects.filter((x) => x.startsWith(`${id}.`))) {
        await fetch(`${registry}/subjects/${encodeURIComponent(s)}`, { method: 'DELETE' });
        await fetch(`${registry}/subjects/${encodeURIComponent(s)}?permanent=true`, { method: 'DELETE' });
      }
      await clickhouse.close();
    },
  };
}
