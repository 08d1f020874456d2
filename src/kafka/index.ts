export type {
  ClusterDescription,
  Compression,
  ConfigEntry,
  ConfigResource,
  GroupDescription,
  GroupOffsets,
  KafkaAdmin,
  KafkaClient,
  KafkaClientOptions,
  KafkaProducer,
  Message,
  PartitionEnds,
  ProducerOptions,
  ProducerTransaction,
  RecordHeaders,
  SendFailure,
  SendRequest,
  TopicMetadata,
  TopicToCreate,
  WrittenRecord,
} from './api';
export {
  createKafka,
  describeCluster,
  processClientId,
  kafkaClientName,
  nodeRunsPlatformatic,
  KAFKA_CLIENTS,
  MEMBERS_UNKNOWN_HINT,
  type ClusterInfo,
  type KafkaClientName,
} from './client';
export {
  CommitFencedError,
  type Assignment,
  type BatchControl,
  type CommittedOffset,
  type GroupAdmin,
  type GroupConsumer,
  type GroupConsumerOptions,
  type GroupHandlers,
  type PartitionTransactions,
  type SideRecord,
  type StreamKafka,
} from './group';
export { defaultPartitionForKey } from './kafkajs/producer';
export {
  endOffsets,
  endOffsetSum,
  groupLag,
  missingTopics,
  topicOffsets,
  withAdmin,
  type PartitionOffsets,
} from './offsets';
export { type ConsumedRecord } from './record';
export { streamKafka } from './stream';
