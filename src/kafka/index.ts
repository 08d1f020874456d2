export { createKafka, describeCluster, processClientId, type ClusterInfo } from './client';
export {
  endOffsets,
  endOffsetSum,
  groupLag,
  requireTopic,
  topicOffsets,
  withAdmin,
  type PartitionOffsets,
} from './offsets';
export { type ConsumedRecord } from './record';
