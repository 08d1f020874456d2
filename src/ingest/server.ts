import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SluiceConfig } from '../config';
import { ConfigError, ServiceError } from '../errors';
import { createKafka } from '../kafka';
import { createEventProducer } from '../produce';
import { createRedis } from '../redis';
import { createLogger, type Logger } from '../telemetry';
import { ingestObservability } from '../telemetry/ingest';
import { createIngestApp } from './app';
import { loadApiKeyHashes } from './auth';
import { createDuplicateGuard, createRateLimiter } from './limits';
import { withTimeout } from '../timeout';

export interface RunningIngestServer {
  url: string;
  port: number;
  /** Stops accepting, finishes the requests in flight (their events are acknowledged), disconnects. */
  close(): Promise<void>;
}

export interface IngestServerOptions {
  /** Overrides of `config.ingest` (e.g. `port: 0` for a free port). */
  settings?: Partial<SluiceConfig['ingest']>;
  logger?: Logger;
}

/**
 * Starts `POST /v1/events` on the configured host and port: connects the
 * producer (resolving the schema id), Redis and a Kafka admin for readiness
 * first, so a server that listens can accept.
 */
export async function startIngestServer(config: SluiceConfig, options: IngestServerOptions = {}): Promise<RunningIngestServer> {
  const settings = { ...config.ingest, ...options.settings };
  const logger = options.logger ?? createLogger(config.log.level, { component: 'ingest' });
  const apiKeyHashes = loadApiKeyHashes(settings);
  if (apiKeyHashes.size === 0) {
    throw new ConfigError('no API keys configured: set ingest.apiKeys or SLUICE_INGEST_API_KEYS to sha256 hashes (`sluice serve hash-key <key>` prints one)');
  }

  const producer = createEventProducer<Record<string, unknown>>({ config, topic: settings.topic, schema: settings.schema });
  // Commands fail fast while Redis is down (503 to the client) instead of queueing without bound.
  const redis = createRedis(config, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  redis.on('error', (err: Error) => logger.warn({ err: err.message }, 'Redis connection error'));
  const admin = createKafka(config, { retry: { retries: 0 } }).admin();
  try {
    await producer.connect();
    await redis.connect();
    await admin.connect();
    const topics = await admin.listTopics();
    if (!topics.includes(settings.topic)) {
      throw new ConfigError(`topic ${settings.topic} does not exist: create it with \`sluice topics apply\` (or set ingest.topic)`);
    }
  } catch (err) {
    await producer.close().catch(() => undefined);
    redis.disconnect();
    await admin.disconnect().catch(() => undefined);
    if (err instanceof ConfigError || err instanceof ServiceError) throw err;
    throw new ServiceError('ingest', `cannot start the ingest API: ${(err as Error).message}`, { retriable: true, cause: err });
  }

  const ready = async () => {
    await withTimeout(redis.ping(), 2000, 'Redis');
    await withTimeout(admin.describeCluster(), 2000, 'Kafka');
  };
  const app = createIngestApp({
    settings,
    producer,
    apiKeyHashes,
    rateLimiter: createRateLimiter(redis, config.redis.keyPrefix, settings.rateLimitPerSecond),
    duplicates: settings.rejectDuplicates ? createDuplicateGuard(redis, config.redis.keyPrefix, settings.duplicateTtlSeconds) : undefined,
    logger,
    idField: 'event_id',
    ready,
    observability: ingestObservability({ topic: settings.topic, admin, ready }),
  });

  const server = await new Promise<Server>((resolve, reject) => {
    const listening = app.listen(settings.port, settings.host, (err?: Error) => (err ? reject(err) : resolve(listening)));
  }).catch(async (err: Error) => {
    await producer.close().catch(() => undefined);
    redis.disconnect();
    await admin.disconnect().catch(() => undefined);
    throw new ConfigError(`ingest API cannot listen on ${settings.host}:${settings.port} (${err.message}): choose another --port`);
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${settings.host.includes(':') ? `[${settings.host}]` : settings.host}:${port}`;
  logger.info({ url, topic: settings.topic, keys: apiKeyHashes.size, rejectDuplicates: settings.rejectDuplicates }, 'ingest API listening');

  return {
    url,
    port,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await producer.close();
      // quit() lets Redis close the connection; disconnect() would leave a 2 s timer behind.
      await withTimeout(redis.quit(), 1000, 'Redis').catch(() => redis.disconnect());
      await admin.disconnect().catch(() => undefined);
    },
  };
}
