import { MEMBERS_UNKNOWN_HINT, type KafkaAdmin } from '../kafka';
import { SluiceError } from '../errors';

/** A member of a consumer group, as an operator recognises it. */
export interface GroupMember {
  memberId: string;
  clientId: string;
  host: string;
}

export interface GroupInfo {
  groupId: string;
  state: string;
  protocolType: string;
  members: GroupMember[];
  /** This client cannot see the group's members (a KIP-848 group through kafkajs): it may be live. */
  membersUnknown?: boolean;
}

export interface PartitionOffsets {
  partition: number;
  /** First retained offset. */
  low: bigint;
  /** End offset: the next offset to be written. */
  high: bigint;
  /** The group's committed offset (the next record it will process); null when it has none. */
  committed: bigint | null;
  /** The metadata stored with it (a stream's commits name the window-state snapshots to restore). */
  metadata: string | null;
}

/** Refused because a group still has members: changing its offsets or replaying under it would race them. */
export class LiveMembersError extends SluiceError {
  constructor(group: string, members: GroupMember[] | 'unknown') {
    super(
      'GROUP_ACTIVE',
      members === 'unknown'
        ? `group '${group}' may have live members: ${MEMBERS_UNKNOWN_HINT}`
        : `group '${group}' has ${members.length} live member(s): ${members.map((m) => `${m.clientId}@${m.host} (${m.memberId})`).join(', ')}; stop them first (SIGTERM the sluice run processes), then retry`,
    );
  }
}

export async function describeGroup(admin: KafkaAdmin, groupId: string): Promise<GroupInfo> {
  const [g] = await admin.describeGroups([groupId]);
  return {
    groupId,
    state: g?.state ?? 'Dead',
    protocolType: g?.protocolType ?? '',
    members: (g?.members ?? []).map((m) => ({ memberId: m.memberId, clientId: m.clientId, host: m.clientHost })),
    ...(g?.membersUnknown ? { membersUnknown: true } : {}),
  };
}

export async function listGroups(admin: KafkaAdmin): Promise<GroupInfo[]> {
  const groups = await admin.listGroups();
  if (groups.length === 0) return [];
  const described = await admin.describeGroups(groups.map((g) => g.groupId));
  return described
    .map((g) => ({
      groupId: g.groupId,
      state: g.state,
      protocolType: g.protocolType,
      members: g.members.map((m) => ({ memberId: m.memberId, clientId: m.clientId, host: m.clientHost })),
      ...(g.membersUnknown ? { membersUnknown: true } : {}),
    }))
    .sort((a, b) => a.groupId.localeCompare(b.groupId));
}

export async function refuseLiveMembers(admin: KafkaAdmin, groupId: string): Promise<void> {
  const info = await describeGroup(admin, groupId);
  if (info.membersUnknown) throw new LiveMembersError(groupId, 'unknown');
  if (info.members.length > 0) throw new LiveMembersError(groupId, info.members);
}

/** The topics a group has committed offsets for. */
export async function groupTopics(admin: KafkaAdmin, groupId: string): Promise<string[]> {
  const committed = await admin.fetchOffsets(groupId);
  return committed.filter((t) => t.partitions.some((p) => p.offset !== '-1')).map((t) => t.topic);
}

export async function partitionOffsets(admin: KafkaAdmin, groupId: string, topic: string): Promise<PartitionOffsets[]> {
  const ends = await admin.fetchTopicOffsets(topic).catch((err: unknown) => {
    throw new SluiceError(
      'TOPIC_MISSING',
      `cannot read offsets of topic '${topic}': ${(err as Error).message}; check the name with 'sluice topics list'`,
    );
  });
  const [committed] = await admin.fetchOffsets(groupId, [topic]);
  const byPartition = new Map((committed?.partitions ?? []).map((p) => [p.partition, p]));
  return ends
    .map((e) => {
      const c = byPartition.get(e.partition);
      const offset = c === undefined || c.offset === '-1' ? null : BigInt(c.offset);
      return {
        partition: e.partition,
        low: BigInt(e.low),
        high: BigInt(e.high),
        committed: offset,
        metadata: offset === null ? null : (c?.metadata ?? null),
      };
    })
    .sort((a, b) => a.partition - b.partition);
}

/**
 * The first offset per partition whose record timestamp is at or after `ms`
 * (Kafka ListOffsets by timestamp); the end offset where no record is that recent.
 */
export async function offsetsForTime(admin: KafkaAdmin, topic: string, ms: number): Promise<Map<number, bigint>> {
  const found = await admin.fetchTopicOffsetsByTimestamp(topic, ms);
  const ends = await admin.fetchTopicOffsets(topic);
  const high = new Map(ends.map((e) => [e.partition, BigInt(e.high)]));
  return new Map(found.map((f) => [f.partition, f.offset === '-1' ? high.get(f.partition)! : BigInt(f.offset)]));
}

export const clamp = (v: bigint, low: bigint, high: bigint) => (v < low ? low : v > high ? high : v);
