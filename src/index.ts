/**
 * Sluice as a library, one export per stage of the data path, in the order an
 * event travels: schemas and topics, producing (SDK and HTTP ingestion), the
 * stream runtime (dedup, windows, state), the ClickHouse sink, dead letters.
 */
export * as config from './config';
export * as schema from './schema';
export * as topics from './topics';
export * as produce from './produce';
export * as ingest from './ingest';
export * as process from './process';
export * as dedup from './dedup';
export * as window from './window';
export * as state from './state';
export * as sink from './sink/clickhouse';
export * as dlq from './dlq';
export * as generator from './generator';
export { SluiceError, ConfigError, ServiceError } from './errors';
