import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import type { SluiceConfig } from '../config';
import { ConfigError, ServiceError, SluiceError, describeError } from '../errors';
import { dlqTopic, SideTopicCounter } from '../dlq';
import { createKafka } from '../kafka';
import type { StreamDefinition } from '../process';
import { createEventProducer } from '../produce';
import { createRedis } from '../redis';
import { createLogger, type Logger } from '../telemetry';
import { ingestObservability } from './monitor';
import { createAdminApp } from './admin';
import { createIngestApp } from './app';
import { loadApiKeyHashes } from './auth';
import { cachedFor } from './cached';
import { createIdempotencyStore } from './idempotency';
import { createDuplicateGuard, createRateLimiter } from './limits';
import { streamRules, streamsReading } from '../produce/stream-rules';
import { withTimeout } from '../timeout';

export interface RunningIngestServer {
  /** The public API: `POST /v1/events`, `/healthz`, `/readyz`. */
  url: string;
  port: number;
  /** The operator endpoints: status page, `/status.json`, `/metrics`. */
  adminUrl: string;
  adminPort: number;
  /** Stops accepting, finishes the requests in flight (their events are acknowledged), disconnects. */
  close(): Promise<void>;
}

export interface IngestServerOptions {
  /**
   * Overrides of `config.ingest` (e.g. `port: 0` for a free port). With `port: 0` and no
   * `adminPort`, the operator endpoints take a free port too: a fixed one would clash
   * between servers started side by side.
   */
  settings?: Partial<SluiceConfig['ingest']>;
  logger?: Logger;
  /**
   * The streams whose rules the API applies, instead of those in streams/ whose source is
   * `ingest.topic` (for a topic of another name, as in tests); `[]` applies none.
   */
  streams?: readonly StreamDefinition<unknown>[];
}

/** How long one readiness probe (a Redis ping, a Kafka metadata call) answers every `/readyz`. */
const READY_TTL_MS = 1000;

/** Listens, or says in one line which setting to change. */
async function listen(app: Express, host: string, port: number, setting: string): Promise<Server> {
  return new Promise<Server>((resolve, reject) => {
    const server = app.listen(port, host, (err?: Error) => (err ? reject(err) : resolve(server)));
  }).catch((err: Error) => {
    throw new ConfigError(`ingest API cannot listen on ${host}:${port} (${err.message}): choose another ${setting}`);
  });
}

/** Rejects naming the dependency: a client library's own message often does not (ioredis: "Stream isn't writeable..."). */
async function answers(what: string, call: () => Promise<unknown>): Promise<void> {
  try {
    await withTimeout(call(), 2000, what);
  } catch (err) {
    throw new ServiceError(what, `${what} unavailable: ${describeError(err)}`, { retriable: true, cause: err });
  }
}

const urlOf = (host: string, port: number) => `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

function stop(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

/**
 * Starts `POST /v1/events` on the configured host and port, and the operator
 * endpoints on the admin host and port: connects the producer (resolving the
 * schema id), Redis and a Kafka admin for readiness first, so a server that
 * listens can accept. Events are checked against the schema and against the
 * rules of the streams that read the topic (see src/produce/stream-rules.ts).
 */
export async function startIngestServer(
  config: SluiceConfig,
  options: IngestServerOptions = {},
): Promise<RunningIngestServer> {
  const adminPort = options.settings?.adminPort ?? (options.settings?.port === 0 ? 0 : config.ingest.adminPort);
  const settings = { ...config.ingest, ...options.settings, adminPort };
  const logger = options.logger ?? createLogger(config.log.level, { component: 'ingest' });
  const apiKeyHashes = loadApiKeyHashes(settings);
  if (apiKeyHashes.size === 0) {
    throw new ConfigError(
      'no API keys configured: set ingest.apiKeys or SLUICE_INGEST_API_KEYS to sha256 hashes (`sluice serve hash-key <key>` prints one)',
    );
  }
  // No stream reads the topic: the schema check alone applies.
  const streams = options.streams ?? streamsReading(settings.topic);
  const rules =
    streams.length > 0 ? streamRules(settings.schema, streams, `ingest.schema ${settings.schema}`) : undefined;

  // Each request's events in one transaction: a request is visible to the stream whole or not at all.
  const transactionalId = `${config.kafka.clientId}.ingest.${hostname()}.${randomBytes(4).toString('hex')}`;
  const producer = createEventProducer<Record<string, unknown>>({
    config,
    topic: settings.topic,
    schema: settings.schema,
    transactionalId,
  });
  // Commands fail fast while Redis is down (503 to the client) instead of queueing without bound.
  const redis = createRedis(config, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  redis.on('error', (err: Error) => logger.warn({ err: err.message }, 'Redis connection error'));
  const admin = createKafka(config, { retries: 0 }).admin();
  try {
    // The producer checks the topic exists before it registers the schema.
    await producer.connect();
    await redis.connect();
    await admin.connect();
  } catch (err) {
    if (err instanceof SluiceError && err.code === 'TOPIC_MISSING') {
      await producer.close().catch(() => undefined);
      redis.disconnect();
      throw new ConfigError(
        `topic ${settings.topic} does not exist: create it with \`sluice topics apply\` (or set ingest.topic)`,
      );
    }
    await producer.close().catch(() => undefined);
    redis.disconnect();
    await admin.disconnect().catch(() => undefined);
    if (err instanceof ConfigError || err instanceof ServiceError) throw err;
    throw new ServiceError('ingest', `cannot start the ingest API: ${(err as Error).message}`, {
      retriable: true,
      cause: err,
    });
  }

  // Anyone who can reach /readyz can ask: the probe runs at most once a second, however often it is asked.
  const ready = cachedFor(READY_TTL_MS, async () => {
    await answers('Redis', () => redis.ping());
    await answers('Kafka', () => admin.describeCluster());
  });
  const dlq = new SideTopicCounter(createKafka(config, { retries: 0 }), dlqTopic(settings.topic));
  const observability = ingestObservability({ topic: settings.topic, admin, ready, deadLetters: () => dlq.count() });
  const app = createIngestApp({
    settings,
    producer,
    apiKeyHashes,
    rateLimiter: createRateLimiter(redis, config.redis.keyPrefix, settings.rateLimitPerSecond),
    idempotency: createIdempotencyStore(redis, config.redis.keyPrefix, { topic: settings.topic }),
    duplicates: settings.rejectDuplicates
      ? createDuplicateGuard(redis, config.redis.keyPrefix, settings.duplicateTtlSeconds)
      : undefined,
    logger,
    idField: 'event_id',
    ready,
    streamRules: rules,
    countRequests: observability.middleware,
  });

  const servers: Server[] = [];
  try {
    servers.push(await listen(app, settings.host, settings.port, '--port (ingest.port)'));
    servers.push(
      await listen(
        createAdminApp(observability.router),
        settings.adminHost,
        settings.adminPort,
        'ingest.adminPort (SLUICE_INGEST_ADMIN_PORT)',
      ),
    );
  } catch (err) {
    await Promise.all(servers.map(stop));
    await producer.close().catch(() => undefined);
    redis.disconnect();
    await admin.disconnect().catch(() => undefined);
    throw err;
  }
  const [server, adminServer] = servers as [Server, Server];
  const { port } = server.address() as AddressInfo;
  const { port: actualAdminPort } = adminServer.address() as AddressInfo;
  const url = urlOf(settings.host, port);
  const adminUrl = urlOf(settings.adminHost, actualAdminPort);
  logger.info(
    {
      url,
      adminUrl,
      topic: settings.topic,
      streams: rules ? streams.map((s) => s.name) : [],
      keys: apiKeyHashes.size,
      rejectDuplicates: settings.rejectDuplicates,
    },
    'ingest API listening',
  );

  return {
    url,
    port,
    adminUrl,
    adminPort: actualAdminPort,
    async close() {
      await Promise.all([stop(server), stop(adminServer)]);
      await producer.close();
      // quit() lets Redis close the connection; disconnect() would leave a 2 s timer behind.
      await withTimeout(redis.quit(), 1000, 'Redis').catch(() => redis.disconnect());
      await admin.disconnect().catch(() => undefined);
    },
  };
}
