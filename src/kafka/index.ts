export { createKafka, describeCluster, type ClusterInfo } from './client';
