import type { KafkaAdmin as Admin, KafkaClient } from './api';

/** Where a partition's log is now: its earliest retained offset and its end (the offset the next record takes). */
export interface PartitionOffsets {
  low: bigint;
  high: bigint;
}

/** Runs `work` with a connected admin client of `kafka`, disconnected afterwards whatever happens. */
export async function withAdmin<R>(kafka: KafkaClient, work: (admin: Admin) => Promise<R>): Promise<R> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Each partition's earliest retained and end offsets, by partition. */
export async function topicOffsets(admin: Admin, topic: string): Promise<Map<number, PartitionOffsets>> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return new Map(offsets.map((o) => [o.partition, { low: BigInt(o.low), high: BigInt(o.high) }]));
}

/** Each partition's end offset: where a reader that started now would stop to have read everything. */
export async function endOffsets(admin: Admin, topic: string): Promise<Map<number, bigint>> {
  return new Map([...(await topicOffsets(admin, topic))].map(([p, o]) => [p, o.high]));
}

/**
 * The partitions' end offsets summed: the records a topic has taken since it was created. In a topic
 * written in transactions every commit marker takes an offset too; count what a reader sees there by
 * reading it (src/dlq `SideTopicCounter`).
 */
export async function endOffsetSum(admin: Admin, topic: string): Promise<number> {
  let sum = 0;
  for (const end of (await endOffsets(admin, topic)).values()) sum += Number(end);
  return sum;
}

/** Records the group has not committed yet: per partition, the end offset minus its committed offset (0 before its first commit). */
export async function groupLag(admin: Admin, groupId: string, topic: string): Promise<number> {
  const ends = await endOffsets(admin, topic);
  const [committed] = await admin.fetchOffsets(groupId, [topic]);
  const done = new Map((committed?.partitions ?? []).map((p) => [p.partition, Math.max(0, Number(p.offset))]));
  let lag = 0;
  for (const [partition, end] of ends) lag += Number(end) - (done.get(partition) ?? 0);
  return lag;
}

/**
 * The topics of `topics` the cluster does not have. A processor asks before it creates anything
 * (database, tables) or joins its group, where a missing topic would otherwise fail late with the
 * broker's "This server does not host this topic-partition".
 */
export async function missingTopics(admin: Admin, topics: string[]): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  return topics.filter((t) => !existing.has(t));
}
