export { createRedis, redactedRedisUrl, redisServerInfo } from './client';
export { withLease, LeaseLostError, type LeaseOptions } from './lease';
