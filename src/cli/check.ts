import type { Command } from 'commander';
import { loadConfig, redactedUrl, type SluiceConfig } from '../config';
import { ServiceError } from '../errors';
import { describeCluster } from '../kafka';
import { redisServerInfo } from '../redis';
import { RegistryClient } from '../schema';
import { clickHouseVersion } from '../sink/clickhouse/client';
import { printLine } from './output';

/**
 * Connects to every configured service with the configured credentials. A
 * processor runs the same checks at start-up, so a wrong URL or password
 * fails there in one line instead of deep inside the first batch.
 */
export async function checkServices(config: SluiceConfig): Promise<string[]> {
  const kafka = describeCluster(config).then(
    (i) => `kafka      ${config.kafka.brokers.join(',')}: cluster ${i.clusterId}, ${i.brokers} broker(s)`,
    (err: unknown) => {
      throw new ServiceError(
        'kafka',
        `Kafka at ${config.kafka.brokers.join(',')} is unreachable (${(err as Error).message}): start it with 'sluice stack up' or fix SLUICE_KAFKA_BROKERS`,
        { retriable: true, cause: err },
      );
    },
  );
  const redis = redisServerInfo(config).then((i) => `redis      Redis ${i.redis_version}`);
  const clickhouse = clickHouseVersion(config.clickhouse).then(
    (v) => `clickhouse ${redactedUrl(config.clickhouse.url)}: ClickHouse ${v}`,
  );
  // The registry is a service like the others: a processor cannot decode a record without it.
  const registry = new RegistryClient(config.registry.url, { timeoutMs: 5000 })
    .subjects()
    .then((subjects) => `registry   ${config.registry.url}: ${subjects.length} subject(s)`);
  return Promise.all([kafka, redis, clickhouse, registry]);
}

export function registerCheckCommand(program: Command): void {
  program
    .command('check')
    .description('connect to the configured Kafka, Redis, ClickHouse and schema registry and report each')
    .addHelpText(
      'after',
      '\nExamples:\n  sluice check\n  SLUICE_CLICKHOUSE_URL=https://ch.example.com:8443 sluice check\n  SLUICE_REGISTRY_URL=http://registry:8081 sluice check',
    )
    .action(async () => {
      for (const line of await checkServices(loadConfig())) printLine(line);
    });
}
