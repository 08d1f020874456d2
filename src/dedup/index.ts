export {
  claimant,
  dedupKeyPrefix,
  DEFAULT_DEDUP_TTL_SECONDS,
  type DedupRecord,
  type DedupScope,
  type DedupStore,
} from './store';
export { MemoryDedupStore } from './memory';
export { connectRedisDedupStore, RedisDedupStore, type RedisDedupOptions } from './redis';
export { dedupFailOpenCounter } from './metrics';
