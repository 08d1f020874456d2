import type { ClickHouseClient } from '@clickhouse/client';
import { MEMBERS_UNKNOWN_HINT, type KafkaAdmin } from '../kafka';
import type { Redis } from 'ioredis';
import { dlqTopic } from '../dlq';
import { SluiceError } from '../errors';
import type { RegistryClient } from '../schema';

/** What one stream owns on the services, as `sluice delete stream` finds it. */
export interface StreamFootprint {
  stream: string;
  /** The source topic, its companions (.dlq, .late, .retry.N), or none when they are kept. */
  topics: string[];
  /** Which topics are kept with their subjects (and redrive groups, when the DLQ is), and why. */
  topicsKept?: string;
  /** Other consumer groups with offsets on the topic or a companion: readers this command does not know, whose topics are kept. */
  otherReaders: string[];
  /** The stream's group, its replay and shadow groups, the redrive groups of its dead-letter topic. */
  groups: string[];
  /** Groups of the list that still have members: deleting under a running processor is refused. */
  liveGroups: string[];
  /** Groups of the list whose members this client cannot see (KIP-848 through kafkajs): refused as if live. */
  membersUnknown: string[];
  /** Registry subjects of the topics (TopicNameStrategy: `<topic>-value`, `<topic>-key`). */
  subjects: string[];
  redisKeys: { patterns: string[]; count: number };
  clickhouse: {
    database: string;
    /** Drop the whole database: it holds nothing but this stream's tables (and the migration ledger). */
    dropDatabase: boolean;
    /** Otherwise the stream's own tables, dropped one by one. */
    tables: string[];
    /** Tables of others in the database: why it is kept. */
    others: string[];
    /** The stream's tables that another stream declares too: kept for it. */
    shared: string[];
  };
}

export interface FootprintInput {
  stream: string;
  topic: string;
  group: string;
  /** The tables and views the stream declares. */
  tables: string[];
  /** Tables and views other streams declare: a table both declare is kept. */
  tablesOfOthers: string[];
  /** The source topic of every other declared stream: a topic another stream reads is kept. */
  otherStreamSources: { stream: string; topic: string }[];
  keyPrefix: string;
  /** Checked as an SQL identifier by the caller (assertIdentifier). */
  database: string;
}

export interface Services {
  admin: KafkaAdmin;
  redis: Redis;
  clickhouse: ClickHouseClient;
  registry: RegistryClient;
}

/** The topic and the companions declared beside it; a topic that merely starts with the same letters is not one. */
export function isCompanionOf(topic: string, candidate: string): boolean {
  if (candidate === topic) return true;
  return candidate.startsWith(topic) && /^\.(dlq|late|retry\.\d+)$/.test(candidate.slice(topic.length));
}

/** The Redis keys of a stream (dedup marks, window state, epoch, replay hold), under the configured prefix. */
export function streamKeyPatterns(keyPrefix: string, stream: string): string[] {
  return [
    `${keyPrefix}dedup:${stream}:*`,
    `${keyPrefix}state:${stream}:*`,
    `${keyPrefix}epoch:${stream}`,
    `${keyPrefix}hold:${stream}`,
    `${keyPrefix}hold:${stream}:*`,
  ];
}

async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    keys.push(...found);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}

/** The groups a stream's own commands derive from its group: `sluice replay`'s and a shadow replay's. */
export const derivedGroups = (group: string): string[] => [`${group}.replay`, `${group}.shadow`];

/** Groups, other than `own`, with committed offsets on `topic`: someone reads it whom no stream declares. */
async function readersOf(admin: KafkaAdmin, topic: string, groups: string[], own: Set<string>): Promise<string[]> {
  // A throwaway reader of 'sluice dlq' is deleted when it finishes; one left over reads nothing.
  const candidates = groups.filter((g) => !own.has(g) && !g.startsWith('sluice.reader.'));
  const readers: string[] = [];
  // A few at a time: one request per group, and a cluster may have thousands.
  for (let i = 0; i < candidates.length; i += 16) {
    const batch = candidates.slice(i, i + 16);
    const offsets = await Promise.all(batch.map((groupId) => admin.fetchOffsets(groupId, [topic])));
    batch.forEach((groupId, n) => {
      if (offsets[n]!.some((t) => t.partitions.some((p) => Number(p.offset) >= 0))) readers.push(groupId);
    });
  }
  return readers.sort();
}

/** Looks up everything the stream owns; changes nothing. */
export async function findStreamFootprint(input: FootprintInput, services: Services): Promise<StreamFootprint> {
  const { admin, redis, clickhouse, registry } = services;
  const redrive = `sluice.redrive.${dlqTopic(input.topic)}`;
  const allGroups = (await admin.listGroups()).map((g) => g.groupId);
  const isRedrive = (g: string) => g === redrive || g.startsWith(`${redrive}.class.`);
  const streamGroups = new Set([input.group, ...derivedGroups(input.group)]);
  const own = new Set(allGroups.filter((g) => streamGroups.has(g) || isRedrive(g)));
  // The topic and each companion, with whoever else reads it: a declared stream, or a group with offsets on it.
  const candidates = (await admin.listTopics()).filter((t) => isCompanionOf(input.topic, t)).sort();
  const readers = new Map<string, string[]>();
  const otherReaders = new Set<string>();
  for (const topic of candidates) {
    const groupsReading = await readersOf(admin, topic, allGroups, own);
    groupsReading.forEach((g) => otherReaders.add(g));
    const streams = input.otherStreamSources.filter((o) => o.topic === topic).map((o) => o.stream);
    if (streams.length + groupsReading.length > 0)
      readers.set(topic, [...streams, ...groupsReading.map((g) => `group ${g}`)]);
  }
  // A source someone else reads is kept with all its companions; otherwise each companion someone reads is kept.
  if (!readers.has(input.topic)) {
    const streams = input.otherStreamSources.filter((o) => o.topic === input.topic).map((o) => o.stream);
    if (streams.length > 0) readers.set(input.topic, streams);
  }
  const keepAll = readers.has(input.topic);
  const topics = keepAll ? [] : candidates.filter((t) => !readers.has(t));
  const topicsKept = keepAll
    ? `topic '${input.topic}' is also read by ${readers.get(input.topic)!.join(', ')}`
    : readers.size > 0
      ? [...readers].map(([t, by]) => `${t} is also read by ${by.join(', ')}`).join('; ')
      : undefined;
  const keepDlq = keepAll || readers.has(dlqTopic(input.topic));
  // Exact names only: a prefix would take in every group that merely starts alike (`--group sluice` is all of them).
  const groups = allGroups.filter((g) => streamGroups.has(g) || (!keepDlq && isRedrive(g))).sort();
  const described = groups.length > 0 ? await admin.describeGroups(groups) : [];
  const liveGroups = described.filter((g) => g.members.length > 0).map((g) => g.groupId);
  const membersUnknown = described.filter((g) => g.membersUnknown).map((g) => g.groupId);
  const subjects = (await registry.subjects()).filter((s) => {
    const m = /^(.*)-(value|key)$/.exec(s);
    return m !== null && topics.includes(m[1]!);
  });
  const patterns = streamKeyPatterns(input.keyPrefix, input.stream);
  let count = 0;
  for (const p of patterns) count += (await scanKeys(redis, p)).length;
  const rows = await (
    await clickhouse.query({
      // A literal, not a query parameter: ClickHouse 18.16 has none; the name is a checked identifier.
      query: `SELECT name FROM system.tables WHERE database = '${input.database}'`,
      format: 'JSONEachRow',
    })
  ).json<{ name: string }>();
  const present = rows.map((r) => r.name);
  const ofOthers = new Set(input.tablesOfOthers);
  const shared = input.tables.filter((t) => ofOthers.has(t) && present.includes(t)).sort();
  const ownTables = new Set(input.tables.filter((t) => !ofOthers.has(t)));
  const others = present.filter((t) => !ownTables.has(t) && t !== 'sluice_migrations').sort();
  const databaseExists =
    present.length > 0 ||
    (
      await (
        await clickhouse.query({
          query: `SELECT name FROM system.databases WHERE name = '${input.database}'`,
          format: 'JSONEachRow',
        })
      ).json()
    ).length > 0;
  return {
    stream: input.stream,
    topics,
    topicsKept,
    otherReaders: [...otherReaders].sort(),
    groups,
    liveGroups,
    membersUnknown,
    subjects: subjects.sort(),
    redisKeys: { patterns, count },
    clickhouse: {
      database: input.database,
      dropDatabase: databaseExists && others.length === 0,
      tables: others.length === 0 ? [] : present.filter((t) => ownTables.has(t)).sort(),
      others,
      shared,
    },
  };
}

/** The plan as lines an operator reads before adding --yes. */
export function formatFootprint(f: StreamFootprint): string[] {
  const list = (xs: string[]) => (xs.length === 0 ? 'none' : xs.join(', '));
  const ch = f.clickhouse;
  return [
    `stream ${f.stream}`,
    `  kafka topics:     ${f.topics.length === 0 && f.topicsKept ? `kept (${f.topicsKept})` : `${list(f.topics)}${f.topicsKept ? `; kept: ${f.topicsKept}` : ''}`}`,
    `  consumer groups:  ${list(f.groups)}${f.liveGroups.length > 0 ? `  (live members in ${list(f.liveGroups)})` : ''}${f.membersUnknown.length > 0 ? `  (members not visible in ${list(f.membersUnknown)})` : ''}`,
    `  registry:         ${f.topics.length === 0 && f.topicsKept ? 'subjects kept with the topics' : list(f.subjects)}`,
    `  redis keys:       ${f.redisKeys.count} matching ${f.redisKeys.patterns.join(' ')}`,
    ch.dropDatabase
      ? `  clickhouse:       drop database ${ch.database}`
      : ch.others.length > 0
        ? `  clickhouse:       drop tables ${list(ch.tables.map((t) => `${ch.database}.${t}`))}; database kept (also holds ${list(ch.others)}${ch.shared.length > 0 ? `; ${list(ch.shared)} also declared by another stream` : ''})`
        : `  clickhouse:       database ${ch.database} does not exist`,
  ];
}

/**
 * Deletes what the footprint names, and nothing else. Refused while a group has live members: a
 * running processor would recreate what is deleted under it.
 */
export async function deleteStreamFootprint(f: StreamFootprint, services: Services): Promise<void> {
  if (f.liveGroups.length > 0)
    throw new SluiceError(
      'GROUP_ACTIVE',
      `stream ${f.stream} is running (live members in ${f.liveGroups.join(', ')}): stop its processors first, then retry`,
    );
  // A group whose members this client cannot see may be live: a running processor would recreate what is deleted.
  if (f.membersUnknown.length > 0)
    throw new SluiceError(
      'GROUP_ACTIVE',
      `cannot tell whether stream ${f.stream} is running: group ${f.membersUnknown.join(', ')} may have live members; ${MEMBERS_UNKNOWN_HINT}`,
    );
  const { admin, redis, clickhouse, registry } = services;
  if (f.groups.length > 0) await admin.deleteGroups(f.groups);
  if (f.topics.length > 0) await admin.deleteTopics(f.topics);
  for (const subject of f.subjects) {
    const path = `/subjects/${encodeURIComponent(subject)}`;
    // Soft delete first: the registry refuses a permanent delete of a subject that is not soft-deleted.
    await registry.request('DELETE', path);
    await registry.request('DELETE', `${path}?permanent=true`);
  }
  for (const pattern of f.redisKeys.patterns) {
    const keys = await scanKeys(redis, pattern);
    for (let i = 0; i < keys.length; i += 1000) await redis.del(...keys.slice(i, i + 1000));
  }
  const ch = f.clickhouse;
  if (ch.dropDatabase) await clickhouse.command({ query: `DROP DATABASE IF EXISTS ${ch.database}` });
  for (const table of ch.tables) await clickhouse.command({ query: `DROP TABLE IF EXISTS ${ch.database}.${table}` });
}
