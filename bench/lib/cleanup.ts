/**
 * Removing what a run created on the shared stack, all named after its id:
 * topics (Kafka Streams' internal ones too), consumer groups, Redis keys,
 * ClickHouse databases and registry subjects.
 */
import type { SluiceConfig } from '../../src/config';
import { createKafka } from '../../src/kafka';
import { createRedis } from '../../src/redis';
import { createClickHouse } from '../../src/sink/clickhouse/client';
import { note } from './report';

export async function deleteRedisKeys(config: SluiceConfig, prefix: string): Promise<number> {
  const redis = createRedis(config);
  await redis.connect();
  let deleted = 0;
  try {
    const stream = redis.scanStream({ match: `${prefix}*`, count: 5000 });
    for await (const keys of stream as AsyncIterable<string[]>) {
      if (keys.length > 0) deleted += await redis.unlink(...keys);
    }
  } finally {
    redis.disconnect();
  }
  return deleted;
}

/** Soft, then permanently: the registry keeps a soft-deleted subject's schemas. */
export async function deleteSubject(config: SluiceConfig, subject: string): Promise<void> {
  const base = `${config.registry.url}/subjects/${encodeURIComponent(subject)}`;
  await fetch(base, { method: 'DELETE' }).catch(() => undefined);
  await fetch(`${base}?permanent=true`, { method: 'DELETE' }).catch(() => undefined);
}

export async function cleanup(config: SluiceConfig, runHex: string): Promise<void> {
  note(`cleaning up run ${runHex} (topics, groups, Redis keys, ClickHouse databases, subjects)`);
  const admin = createKafka(config).admin();
  await admin.connect();
  const clickhouse = createClickHouse(config.clickhouse);
  try {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(`bench.${runHex}`));
    if (topics.length > 0) await admin.deleteTopics(topics).catch(() => undefined);
    const groups = (await admin.listGroups()).map((g) => g.groupId).filter((g) => g.startsWith(`bench.${runHex}`));
    if (groups.length > 0) await admin.deleteGroups(groups).catch(() => undefined);
    const keys = await deleteRedisKeys(config, `bench:${runHex}`);
    const dbs = await (
      await clickhouse.query({ query: 'SHOW DATABASES', format: 'JSONEachRow' })
    ).json<{ name: string }>();
    const owned = dbs.map((d) => d.name).filter((d) => d.startsWith(`bench_${runHex}`));
    for (const db of owned) await clickhouse.command({ query: `DROP DATABASE IF EXISTS ${db}` });
    const subjects = (await (await fetch(`${config.registry.url}/subjects`)).json()) as string[];
    for (const s of subjects.filter((x) => x.startsWith(`bench.${runHex}`))) await deleteSubject(config, s);
    note(`  removed ${topics.length} topics, ${groups.length} groups, ${keys} Redis keys, ${owned.length} databases`);
  } finally {
    await admin.disconnect();
    await clickhouse.close();
  }
}
