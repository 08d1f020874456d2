export { createKafka, describeCluster, type ClusterInfo } from './client';
export { type ConsumedRecord } from './record';
