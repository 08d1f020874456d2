import type { GroupConsumer, GroupConsumerOptions, PartitionTransactions } from './group';

/**
 * The Kafka client Sluice is written against, in the project's own terms: nothing outside src/kafka
 * imports a Kafka library or its types (src/architecture.test.ts checks it). kafkajs implements it
 * (src/kafka/kafkajs/); a second client (@platformatic/kafka, for KIP-848 rebalancing) is meant to
 * implement the same interface, so every type here is narrowed to what the call sites use and says
 * nothing of how one library spells it.
 *
 * Offsets are decimal strings, as the runtime keeps them (they exceed 2^53 in principle); a client
 * that reads them as bigint converts at its edge.
 */

/** Record headers as read and written: a name may repeat (an array), and values are bytes or text. */
export interface RecordHeaders {
  [name: string]: Buffer | string | (Buffer | string)[] | undefined;
}

/** A record to write. */
export interface Message {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  headers?: RecordHeaders;
  /** Where to write it; otherwise Kafka's default partitioner picks by key (murmur2, as the Java client does). */
  partition?: number;
}

/** Where one written record landed. */
export interface WrittenRecord {
  topic: string;
  partition: number;
  offset: string;
}

/** Compression of a produce request: side records are gzipped so a copy of a large source record still fits. */
export type Compression = 'gzip' | 'none';

export interface SendRequest {
  topic: string;
  messages: Message[];
  compression?: Compression;
}

/** Why a send failed: `too-large` can never succeed, `topic-missing` waits for the topic to be created, `unavailable` may pass on retry. */
export type SendFailure = 'too-large' | 'topic-missing' | 'unavailable';

/** Writes to a transaction: visible to read_committed readers only once it commits, with the offsets it carries. */
export interface ProducerTransaction {
  send(request: SendRequest): Promise<WrittenRecord[]>;
  /** Commits `offsets` of `topic` for `groupId` with the transaction (TxnOffsetCommit), metadata included. */
  sendOffsets(
    groupId: string,
    topic: string,
    offsets: { partition: number; offset: string; metadata?: string | null }[],
  ): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export interface ProducerOptions {
  /**
   * Idempotent, with one request in flight so that retries keep each partition's order and never
   * write a record twice. Required by `transactionalId`.
   */
  idempotent?: boolean;
  /** The identity transactions are fenced by: a producer that takes it over aborts the previous holder's open one. */
  transactionalId?: string;
  /** How long Kafka lets a transaction stay open before aborting it; read_committed readers wait at most that long behind one. */
  transactionTimeoutMs?: number;
}

/**
 * A producer with acks=all. It never creates a topic: topics are declared (topics/, `sluice topics
 * apply`), and a record for a missing one fails as `topic-missing`.
 */
export interface KafkaProducer {
  connect(): Promise<void>;
  /** Resolves once every record is acknowledged by all in-sync replicas, with where each went, in order. */
  send(request: SendRequest): Promise<WrittenRecord[]>;
  /** Several topics in one request. */
  sendBatch(requests: SendRequest[]): Promise<WrittenRecord[]>;
  /** Begins a transaction (needs `transactionalId`); the first one takes the identity over. */
  transaction(): Promise<ProducerTransaction>;
  disconnect(): Promise<void>;
}

/** A topic as `createTopics` makes it; replication and configs follow the broker's defaults unless given. */
export interface TopicToCreate {
  topic: string;
  numPartitions: number;
  replicationFactor?: number;
  configEntries?: { name: string; value: string }[];
}

export interface TopicMetadata {
  name: string;
  partitions: { partitionId: number; leader: number; replicas: number[] }[];
}

/** A partition's earliest retained offset (`low`) and its end (`high`, the offset the next record takes). */
export interface PartitionEnds {
  partition: number;
  low: string;
  high: string;
}

export interface GroupOffsets {
  topic: string;
  /** `offset` is '-1' for a partition the group never committed. */
  partitions: { partition: number; offset: string; metadata: string | null }[];
}

export interface GroupDescription {
  groupId: string;
  /** Kafka's group state: Stable, Empty, Dead, PreparingRebalance, ...; `Unknown` when `membersUnknown`. */
  state: string;
  protocolType: string;
  members: { memberId: string; clientId: string; clientHost: string }[];
  /**
   * The group exists but this client cannot describe it: a KIP-848 (`group.protocol=consumer`) group
   * seen through kafkajs, which only speaks the classic DescribeGroups. It may have live members;
   * whoever must know that (delete, replay) refuses rather than guess.
   */
  membersUnknown?: boolean;
}

export interface ConfigResource {
  type: 'topic' | 'broker';
  /** The topic's name, or the broker's node id. */
  name: string;
  /** Only these configs; all of them otherwise. */
  configNames?: string[];
}

export interface ConfigEntry {
  name: string;
  value: string;
  /** Set on the topic itself (an override), rather than inherited from the broker's defaults. */
  setOnTopic: boolean;
}

export interface ClusterDescription {
  clusterId: string;
  brokers: { nodeId: number; host: string; port: number }[];
  controller: number | null;
}

/** The admin operations Sluice makes: topics, their offsets and configs, and consumer groups. */
export interface KafkaAdmin {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  describeCluster(): Promise<ClusterDescription>;

  listTopics(): Promise<string[]>;
  /** Resolves once each new topic has a leader for every partition; a topic that exists is left alone. */
  createTopics(topics: TopicToCreate[]): Promise<void>;
  deleteTopics(topics: string[]): Promise<void>;
  /** Raises each topic's partition count to `count`. */
  createPartitions(topics: { topic: string; count: number }[]): Promise<void>;
  fetchTopicMetadata(topics: string[]): Promise<TopicMetadata[]>;
  /** Each resource's configs, by resource name. */
  describeConfigs(resources: ConfigResource[]): Promise<Map<string, ConfigEntry[]>>;
  /** Replaces each topic's whole set of overrides with `config` (configs left out return to the broker default). */
  alterTopicConfigs(topics: { topic: string; config: Record<string, string> }[]): Promise<void>;

  fetchTopicOffsets(topic: string): Promise<PartitionEnds[]>;
  /** Deletes each partition's records before `offset`, which becomes its log start (as retention would). */
  deleteRecords(topic: string, partitions: { partition: number; offset: string }[]): Promise<void>;
  /** Per partition, the first offset whose record timestamp is at or after `timestamp` (epoch ms); '-1' when there is none. */
  fetchTopicOffsetsByTimestamp(topic: string, timestamp: number): Promise<{ partition: number; offset: string }[]>;

  listGroups(): Promise<{ groupId: string; protocolType: string }[]>;
  describeGroups(groupIds: string[]): Promise<GroupDescription[]>;
  deleteGroups(groupIds: string[]): Promise<void>;
  /** The group's committed offsets of `topics`, or of every topic it committed when none are named. */
  fetchOffsets(groupId: string, topics?: string[]): Promise<GroupOffsets[]>;
  /** Sets an empty group's committed offsets of `topic`. */
  setOffsets(groupId: string, topic: string, partitions: { partition: number; offset: string }[]): Promise<void>;
}

/** Settings of one client, beyond those of the configuration. */
export interface KafkaClientOptions {
  /** The base of the id the brokers see (host and pid are added, `processClientId`). */
  clientId?: string;
  /** How often a failed request is retried before the call fails. */
  retries?: number;
}

/** Builds Sluice's Kafka clients; each is connected by its own `connect`/`start`. */
export interface KafkaClient {
  admin(): KafkaAdmin;
  producer(options?: ProducerOptions): KafkaProducer;
  /** A consumer-group member reading one topic (the stream runner, and readers that commit nothing). */
  consumer(options: GroupConsumerOptions): GroupConsumer;
  /** Exactly-once output per input partition of a group (docs/design.md §3.3.2). */
  transactions(options: { groupId: string; topic: string }): PartitionTransactions;
  /** What a failed `send` means, whatever this client wrapped the broker's error in. */
  sendFailure(err: unknown): SendFailure;
}
