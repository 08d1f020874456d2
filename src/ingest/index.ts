export { startIngestServer, type RunningIngestServer, type IngestServerOptions } from './server';
export { createIngestApp, type IngestDependencies } from './app';
export { hashApiKey, loadApiKeyHashes, presentedKey } from './auth';
export {
  createRateLimiter,
  createDuplicateGuard,
  type RateLimiter,
  type RateDecision,
  type DuplicateGuard,
  type ClaimResult,
} from './limits';
export { createIdempotencyStore, IDEMPOTENCY_TTL_SECONDS, type IdempotencyStore } from './idempotency';
