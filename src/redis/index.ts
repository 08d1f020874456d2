export { createRedis, redisServerInfo } from './client';
