export { createKafka, describeCluster, type ClusterInfo } from './client';
export { endOffsets, endOffsetSum, groupLag, topicOffsets, withAdmin, type PartitionOffsets } from './offsets';
export { type ConsumedRecord } from './record';
