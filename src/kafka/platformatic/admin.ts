import {
  Admin,
  ConfigResourceTypes,
  ConfigSources,
  consumerGroupDescribeV0,
  FindCoordinatorKeyTypes,
  ListOffsetTimestamps,
  type BaseOptions,
  type ConfigDescription,
  type ListedOffsetsTopic,
  type ListConsumerGroupOffsetsGroup,
} from '@platformatic/kafka';
import { ServiceError } from '../../errors';
import type { ConfigEntry, GroupDescription, GroupOffsets, KafkaAdmin, TopicMetadata, TopicToCreate } from '../api';
import { hasApiError } from './errors';

/** How long `createTopics` waits for every new partition to have a leader (kafkajs's `waitForLeaders`). */
const LEADERS_TIMEOUT_MS = 30_000;
const LEADERS_POLL_MS = 100;

/** Group states in which nobody consumes, so offsets may be set from outside (kafkajs's `setOffsets` check). */
const NOT_RUNNING = new Set(['Empty', 'Dead']);

/**
 * The project's admin operations on @platformatic/kafka's Admin. Offsets are decimal strings at this
 * edge and bigint inside the library. Most operations map onto one call; where the library has no
 * such call (connect, waiting for leaders, setOffsets' guard, offsets of every partition of a topic)
 * it is built from the closest primitive, and says so.
 */
export function platformaticAdmin(base: BaseOptions, explain: (err: unknown) => unknown): KafkaAdmin {
  // A closed client never reopens: a connect after disconnect builds a new one, as a kafkajs admin reconnects.
  let client: Admin | undefined;
  const admin = () => {
    if (!client || client.closed) client = new Admin(base);
    return client;
  };

  /** Every partition of `topic`, from fresh metadata (the caller may just have created or grown it). */
  async function partitionsOf(topic: string): Promise<number[]> {
    const metadata = await admin().metadata({ topics: [topic], forceUpdate: true });
    return metadata.topics.get(topic)!.partitions.map((_, index) => index);
  }

  async function listOffsets(topic: string, timestamp: bigint): Promise<Map<number, bigint>> {
    const partitions = await partitionsOf(topic);
    // READ_UNCOMMITTED, the library's default and kafkajs's: the end is the high watermark, commit markers included.
    const listed: ListedOffsetsTopic[] = await admin().listOffsets({
      topics: [{ name: topic, partitions: partitions.map((partitionIndex) => ({ partitionIndex, timestamp })) }],
    });
    return new Map(listed.flatMap((t) => t.partitions).map((p) => [p.partitionIndex, p.offset]));
  }

  /** Polls metadata until every partition of `topics` has a leader: the library's createTopics resolves before that. */
  async function waitForLeaders(topics: string[]): Promise<void> {
    const deadline = Date.now() + LEADERS_TIMEOUT_MS;
    for (;;) {
      const led = await admin()
        .metadata({ topics, forceUpdate: true })
        .then(
          (m) => topics.every((t) => (m.topics.get(t)?.partitions ?? []).every((p) => p.leader >= 0)),
          // A topic just created may not be in every broker's metadata yet (UNKNOWN_TOPIC_OR_PARTITION).
          () => false,
        );
      if (led) return;
      if (Date.now() > deadline)
        throw new ServiceError(
          'kafka',
          `topics ${topics.join(', ')} have no leader for every partition ${LEADERS_TIMEOUT_MS} ms after they were created`,
          { retriable: true },
        );
      await new Promise((resolve) => setTimeout(resolve, LEADERS_POLL_MS));
    }
  }

  /**
   * Classic DescribeGroups first: it answers a KIP-848 group as 'Dead' with no members, so such an answer is
   * asked again with ConsumerGroupDescribe, which the library's Admin does not call: its request is sent here
   * on the admin's connection to the group's coordinator.
   */
  async function describeGroups(groupIds: string[]): Promise<GroupDescription[]> {
    const described = await admin().describeGroups({ groups: groupIds });
    const out: GroupDescription[] = [];
    for (const groupId of groupIds) {
      const group = described.get(groupId);
      if (!group) continue;
      const members = [...group.members.values()];
      const consumerGroup = String(group.state) === 'Dead' ? await describeConsumerGroup(groupId) : undefined;
      out.push(
        consumerGroup ?? {
          groupId,
          state: String(group.state),
          protocolType: group.protocolType,
          members: members.map(({ id, clientId, clientHost }) => ({ memberId: id, clientId, clientHost })),
        },
      );
    }
    return out;
  }

  /** A KIP-848 group as ConsumerGroupDescribe tells it; undefined when there is no such group (or the broker has no such call). */
  async function describeConsumerGroup(groupId: string): Promise<GroupDescription | undefined> {
    const client = admin();
    const [coordinator] = await client.findCoordinator({ keyType: FindCoordinatorKeyTypes.GROUP, keys: [groupId] });
    if (!coordinator) return undefined;
    const connection = await client.connections.get({ host: coordinator.host, port: coordinator.port });
    try {
      const { groups } = await consumerGroupDescribeV0.api.async(connection, [groupId], false);
      const group = groups.find((g) => g.groupId === groupId);
      return group && consumerGroupDescription(group);
    } catch (err) {
      if (hasApiError(err, NOT_A_CONSUMER_GROUP)) return undefined;
      throw err;
    }
  }

  return {
    async connect() {
      // The library connects on a client's first request: one metadata request proves the brokers
      // answer and the credentials and certificates are accepted.
      try {
        await admin().metadata({ topics: [] });
      } catch (err) {
        throw explain(err);
      }
    },
    async disconnect() {
      await client?.close();
      client = undefined;
    },
    async describeCluster() {
      // No DescribeCluster call in the library: the metadata response names the cluster, its brokers and controller.
      const metadata = await admin().metadata({ topics: [], forceUpdate: true });
      return {
        clusterId: metadata.id,
        brokers: [...metadata.brokers].map(([nodeId, { host, port }]) => ({ nodeId, host, port })),
        controller: metadata.controllerId >= 0 ? metadata.controllerId : null,
      };
    },
    // Internal topics included, as kafkajs lists them.
    listTopics: () => admin().listTopics({ includeInternals: true }),
    async createTopics(topics) {
      const existing = new Set(await admin().listTopics({ includeInternals: true }));
      const created = topics.filter((t) => !existing.has(t.topic));
      // The library's configs apply to every topic of a request: one request per topic keeps each its own.
      await Promise.all(created.map((t) => createTopic(admin(), t)));
      if (created.length > 0) await waitForLeaders(created.map((t) => t.topic));
    },
    async deleteTopics(topics) {
      await admin().deleteTopics({ topics });
    },
    async createPartitions(topics) {
      await admin().createPartitions({ topics: topics.map(({ topic, count }) => ({ name: topic, count })) });
    },
    async fetchTopicMetadata(topics) {
      // kafkajs answers an empty list with every topic.
      const names = topics.length > 0 ? topics : await admin().listTopics({ includeInternals: true });
      const metadata = await admin().metadata({ topics: names, forceUpdate: true });
      return names.map((name): TopicMetadata => {
        const topic = metadata.topics.get(name)!;
        return {
          name,
          partitions: topic.partitions.map((p, partitionId) => ({
            partitionId,
            leader: p.leader,
            replicas: p.replicas,
          })),
        };
      });
    },
    async describeConfigs(resources) {
      const described = await admin().describeConfigs({
        includeSynonyms: false,
        resources: resources.map(({ type, name, configNames }) => ({
          resourceType: type === 'topic' ? ConfigResourceTypes.TOPIC : ConfigResourceTypes.BROKER,
          resourceName: name,
          ...(configNames ? { configurationKeys: configNames } : {}),
        })),
      });
      return describedConfigs(described);
    },
    async alterTopicConfigs(topics) {
      // AlterConfigs proper (not IncrementalAlterConfigs): it replaces the whole set of overrides, the semantics callers rely on.
      await admin().alterConfigs({
        validateOnly: false,
        resources: topics.map(({ topic, config }) => ({
          resourceType: ConfigResourceTypes.TOPIC,
          resourceName: topic,
          configs: Object.entries(config).map(([name, value]) => ({ name, value })),
        })),
      });
    },
    async fetchTopicOffsets(topic) {
      const [low, high] = await Promise.all([
        listOffsets(topic, ListOffsetTimestamps.EARLIEST),
        listOffsets(topic, ListOffsetTimestamps.LATEST),
      ]);
      return [...high.keys()]
        .sort((a, b) => a - b)
        .map((partition) => ({ partition, low: String(low.get(partition)), high: String(high.get(partition)) }));
    },
    async deleteRecords(topic, partitions) {
      await admin().deleteRecords({
        topics: [
          { name: topic, partitions: partitions.map((p) => ({ partition: p.partition, offset: BigInt(p.offset) })) },
        ],
      });
    },
    async fetchTopicOffsetsByTimestamp(topic, timestamp) {
      // Kafka answers -1 for a partition with no record that recent; kept as '-1' (the interface's contract).
      const found = await listOffsets(topic, BigInt(timestamp));
      return [...found].sort(([a], [b]) => a - b).map(([partition, offset]) => ({ partition, offset: String(offset) }));
    },
    async listGroups() {
      // Without a types filter the broker lists classic groups only: KIP-848 groups are asked for by name.
      return [...(await admin().listGroups({ types: ['classic', 'consumer'] })).values()].map(
        ({ id, protocolType }) => ({
          groupId: id,
          protocolType,
        }),
      );
    },
    describeGroups,
    async deleteGroups(groupIds) {
      await admin().deleteGroups({ groups: groupIds });
    },
    async fetchOffsets(groupId, topics) {
      // Named topics: every partition of each (from metadata), so a partition never committed reads '-1', as in kafkajs.
      const named = topics
        ? await Promise.all(topics.map(async (name) => ({ name, partitionIndexes: await partitionsOf(name) })))
        : undefined;
      const groups = await admin().listConsumerGroupOffsets({
        groups: [named ? { groupId, topics: named } : groupId],
      });
      return groupOffsets(groups, groupId);
    },
    async setOffsets(groupId, topic, partitions) {
      // The library's alterConsumerGroupOffsets is an OffsetCommit outside any generation, which the broker
      // takes only from an empty group; the state is checked first for kafkajs's clear refusal.
      const [group] = await describeGroups([groupId]);
      if (group && !NOT_RUNNING.has(group.state))
        throw new ServiceError(
          'kafka',
          `cannot set the offsets of group ${groupId}: it must have no running instances, its state is ${group.state}`,
        );
      await admin().alterConsumerGroupOffsets({
        groupId,
        topics: [
          {
            name: topic,
            partitionOffsets: partitions.map(({ partition, offset }) => ({ partition, offset: BigInt(offset) })),
          },
        ],
      });
    },
  };
}

const TOPIC_EXISTS = new Set(['TOPIC_ALREADY_EXISTS']);
/** ConsumerGroupDescribe's answers for a group that is none of its kind: missing, classic, or a broker without KIP-848. */
const NOT_A_CONSUMER_GROUP = new Set(['GROUP_ID_NOT_FOUND', 'UNSUPPORTED_VERSION']);

/** A KIP-848 group in the project's terms. */
export function consumerGroupDescription(
  group: consumerGroupDescribeV0.ConsumerGroupDescribeResponseGroup,
): GroupDescription {
  return {
    groupId: group.groupId,
    state: group.groupState,
    protocolType: 'consumer',
    members: group.members.map(({ memberId, clientId, clientHost }) => ({ memberId, clientId, clientHost })),
  };
}

async function createTopic(admin: Admin, topic: TopicToCreate): Promise<void> {
  try {
    await admin.createTopics({
      topics: [
        {
          topic: topic.topic,
          partitions: topic.numPartitions,
          ...(topic.replicationFactor !== undefined ? { replicas: topic.replicationFactor } : {}),
        },
      ],
      configs: (topic.configEntries ?? []).map(({ name, value }) => ({ name, value })),
    });
  } catch (err) {
    // Created meanwhile by someone else: left alone, as kafkajs leaves it.
    if (!hasApiError(err, TOPIC_EXISTS)) throw err;
  }
}

/** Configs by resource name; an override is a config whose source is the topic itself. */
export function describedConfigs(described: ConfigDescription[]): Map<string, ConfigEntry[]> {
  return new Map(
    described.map((r) => [
      r.resourceName,
      r.configs.map((c) => ({
        name: c.name,
        // Kafka sends no value for a sensitive config.
        value: c.value ?? '',
        setOnTopic: c.configSource === ConfigSources.DYNAMIC_TOPIC_CONFIG,
      })),
    ]),
  );
}

/** One group's committed offsets as decimal strings; empty metadata reads as none, as kafkajs reads it. */
export function groupOffsets(groups: ListConsumerGroupOffsetsGroup[], groupId: string): GroupOffsets[] {
  const group = groups.find((g) => g.groupId === groupId);
  return (group?.topics ?? []).map((t) => ({
    topic: t.name,
    partitions: t.partitions.map((p) => ({
      partition: p.partitionIndex,
      offset: String(p.committedOffset),
      metadata: p.metadata || null,
    })),
  }));
}
