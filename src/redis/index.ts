export { createRedis, redisServerInfo } from './client';
export { withLease, LeaseLostError, type LeaseOptions } from './lease';
