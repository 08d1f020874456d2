import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Redis } from 'ioredis';
import { loadConfig, type SluiceConfig } from '../../src/config';
import { sleep } from '../../src/clock';
import { createKafka, type KafkaAdmin, type KafkaClient } from '../../src/kafka';
import { createRedis } from '../../src/redis';
import { createClickHouse } from '../../src/sink/clickhouse/client';
import { stackDown, stackUp } from '../../src/stack';

/** The services a private stack runs; any of them can be stopped and started again on its own. */
export type PrivateService = 'kafka' | 'redis' | 'clickhouse' | 'registry';

/**
 * A second local stack, owned by one spec file, for tests that stop services:
 * the shared stack other specs use is never touched. Its data lives in a temp
 * dir, so a stopped service restarts with its data (Redis with its AOF).
 */
export interface PrivateStack {
  /** Config pointing at the private services, with a database and key prefix of its own. */
  config: SluiceConfig;
  /** Environment for a `sluice` child process that should use this stack. */
  env: NodeJS.ProcessEnv;
  kafka: KafkaClient;
  admin: KafkaAdmin;
  /** A client of the stack's database (`config.clickhouse.database`). */
  clickhouse(): ClickHouseClient;
  createTopic(name: string, partitions?: number): Promise<void>;
  /** Stops one service (SIGTERM, as an operator would) and waits until it is gone. */
  stop(service: PrivateService): Promise<void>;
  /** Starts it again and waits until it is healthy. */
  start(service: PrivateService): Promise<void>;
  /** Stops everything and removes the temp dir. */
  teardown(): Promise<void>;
}

/** Ports nothing listens on right now: bound and released by the kernel's choice. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((ok, fail) => {
          const server = createServer();
          server.once('error', fail);
          server.listen(0, '127.0.0.1', () => ok(server));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((ok) => s.close(ok))));
  return ports;
}

/**
 * Kafka's jars are large and slow to resolve: link the shared stack's copy
 * into the private stack's folder when it is there (Maven resolves them otherwise).
 */
function linkKafkaJars(sharedDir: string, privateDir: string, version: string): void {
  const shared = join(resolve(sharedDir), 'kafka', 'libs', version);
  if (!existsSync(shared)) return;
  mkdirSync(join(privateDir, 'kafka', 'libs'), { recursive: true });
  symlinkSync(shared, join(privateDir, 'kafka', 'libs', version), 'dir');
}

const quietLog = (line: string) => {
  if (process.env.SLUICE_TEST_STACK_LOG === '1') process.stderr.write(`[private stack] ${line}\n`);
};

export async function startPrivateStack(label: string): Promise<PrivateStack> {
  const dir = mkdtempSync(join(tmpdir(), `sluice-${label}-`));
  const [kafkaPort, controllerPort, redisPort, httpPort, tcpPort, registryPort] = await freePorts(6);
  const shared = loadConfig();
  linkKafkaJars(shared.stack.dir, dir, shared.stack.kafkaVersion);
  const env: NodeJS.ProcessEnv = {
    SLUICE_STACK_DIR: dir,
    SLUICE_STACK_KAFKA_VERSION: shared.stack.kafkaVersion,
    SLUICE_STACK_KAFKA_PORT: String(kafkaPort),
    SLUICE_STACK_KAFKA_CONTROLLER_PORT: String(controllerPort),
    SLUICE_STACK_REDIS_PORT: String(redisPort),
    SLUICE_STACK_CLICKHOUSE_HTTP_PORT: String(httpPort),
    SLUICE_STACK_CLICKHOUSE_TCP_PORT: String(tcpPort),
    SLUICE_STACK_REGISTRY_PORT: String(registryPort),
    SLUICE_STACK_START_TIMEOUT_SECONDS: '120',
    SLUICE_CLICKHOUSE_DATABASE: label.replace(/[^A-Za-z0-9]/g, '_'),
    SLUICE_REDIS_KEY_PREFIX: `test:${label}:`,
    SLUICE_LOG_LEVEL: 'warn',
  };
  // Only these variables: nothing of the shared stack's settings leaks in from the environment.
  const config = loadConfig(env);
  // The URLs the stack's defaults produce, spelled out so a child process needs nothing else.
  Object.assign(env, {
    SLUICE_KAFKA_BROKERS: config.kafka.brokers.join(','),
    SLUICE_REDIS_URL: config.redis.url,
    SLUICE_CLICKHOUSE_URL: config.clickhouse.url,
    SLUICE_REGISTRY_URL: config.registry.url,
  });

  try {
    await stackUp(config, quietLog);
  } catch (err) {
    await stackDown(config, quietLog).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const root = createClickHouse(config.clickhouse);
  await root.command({ query: `CREATE DATABASE IF NOT EXISTS ${config.clickhouse.database}` });
  await root.close();

  const kafka = createKafka(config);
  const admin = kafka.admin();
  await admin.connect();
  const clients: ClickHouseClient[] = [];
  return {
    config,
    env,
    kafka,
    admin,
    clickhouse() {
      const client = createClickHouse(config.clickhouse, config.clickhouse.database);
      clients.push(client);
      return client;
    },
    async createTopic(name, partitions = 1) {
      await admin.createTopics([{ topic: name, numPartitions: partitions }]);
      // After a broker restart (an outage scenario before this one) the new topic's metadata can lag its
      // creation: wait until every partition answers an offset request, as the scenario's first ones will.
      const deadline = Date.now() + 30_000;
      for (;;) {
        const ready = await admin.fetchTopicOffsets(name).then(
          (offsets) => offsets.length === partitions,
          () => false,
        );
        if (ready) return;
        if (Date.now() > deadline) throw new Error(`topic ${name} has no offsets 30 s after it was created`);
        await sleep(200);
      }
    },
    async stop(service) {
      await stackDown(config, quietLog, [service]);
    },
    async start(service) {
      await stackUp(config, quietLog, [service]);
    },
    async teardown() {
      await admin.disconnect().catch(() => undefined);
      await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
      await stackDown(config, quietLog);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A config on the private stack with a ClickHouse database and Redis key
 * prefix of its own (created here), and the environment for a `sluice` child
 * process using it: several scenarios can share one stack without seeing
 * each other's rows, dedup marks or window state.
 */
export async function scopeOf(
  stack: PrivateStack,
  label: string,
): Promise<{ config: SluiceConfig; env: NodeJS.ProcessEnv }> {
  const database = label.replace(/[^A-Za-z0-9]/g, '_');
  const keyPrefix = `test:${label}:`;
  const config: SluiceConfig = {
    ...stack.config,
    clickhouse: { ...stack.config.clickhouse, database },
    redis: { ...stack.config.redis, keyPrefix },
  };
  const root = createClickHouse(config.clickhouse);
  await root.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
  await root.close();
  return { config, env: { ...stack.env, SLUICE_CLICKHOUSE_DATABASE: database, SLUICE_REDIS_KEY_PREFIX: keyPrefix } };
}

/** A Redis client of the private stack (callers disconnect it). */
export async function privateRedis(stack: PrivateStack): Promise<Redis> {
  const redis = createRedis(stack.config, { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  await redis.connect();
  return redis;
}
