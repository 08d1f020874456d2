export { createRedis, redisServerInfo } from './client';
export { withLease, type LeaseOptions } from './lease';
