import type { SluiceConfig } from '../config';
import { redactedUrl, settingName } from '../config';
import { ServiceError, SluiceError } from '../errors';
import { createRedis, withLease } from '../redis';
import {
  createClickHouse,
  detectServerFeatures,
  migrate,
  type MigrationReport,
  type ServerFeatures,
} from '../sink/clickhouse';
import { classifyClickHouseError } from '../sink/clickhouse/errors';
import { clickHouseSchemaOf, type StreamDefinition } from './definition';

export const migrationLeaseKeyOf = (config: SluiceConfig, database: string) =>
  `${config.redis.keyPrefix}lease:migrate:${database}`;

/**
 * A migration statement copies a whole table: its request may take long. A client that gave up on it
 * would release the lease while the server still runs the statement, and the next holder would start
 * the same rebuild beside it.
 */
const MIGRATION_REQUEST_TIMEOUT_MS = 6 * 3600_000;

/**
 * Runs the streams' ClickHouse migrations and creates their tables
 * (idempotent), one process at a time: the processors of a deployment start
 * together, and two running a rebuilding migration at once would rename the
 * table under each other's copy. The lease is held in the Redis the
 * processors already share; a process that waits for it then finds the
 * migrations recorded and only re-runs the IF NOT EXISTS table definitions.
 * `lease: false` (`sluice sink migrate --no-lease`) runs without one, for a
 * migration run while no processor runs.
 */
export async function migrateStreams(
  config: SluiceConfig,
  definitions: readonly Pick<StreamDefinition<never>, 'tables' | 'migrations'>[],
  options: { database?: string; lease?: boolean; onWait?: (holder: string, waitedMs: number) => void } = {},
): Promise<{ features: ServerFeatures; report: MigrationReport }> {
  const database = options.database ?? config.clickhouse.database;
  const client = createClickHouse(config.clickhouse, undefined, MIGRATION_REQUEST_TIMEOUT_MS);
  const explain = (err: unknown): never => {
    throw err instanceof SluiceError ? err : classifyClickHouseError(config.clickhouse, err);
  };
  try {
    // Asked on a client with the usual timeout: a server that does not answer is reported in seconds, not hours.
    const probe = createClickHouse(config.clickhouse);
    const features = await detectServerFeatures(probe)
      .catch(explain)
      .finally(() => probe.close());
    const run = (signal?: AbortSignal) =>
      migrate(client, database, { features, signal, ...clickHouseSchemaOf(definitions) }).catch(explain);
    if (options.lease === false) return { features, report: await run() };
    const redis = createRedis(config, { maxRetriesPerRequest: 3, connectTimeout: 5000, commandTimeout: 5000 });
    try {
      await redis.connect().catch((err) => {
        throw leaseRedisError(config, err);
      });
      const key = migrationLeaseKeyOf(config, database);
      const report = await withLease(redis, key, run, { onWait: options.onWait }).catch((err) => {
        throw leaseRedisError(config, err);
      });
      return { features, report };
    } finally {
      redis.disconnect();
    }
  } finally {
    await client.close();
  }
}

/** A Redis failure of the lease, explained; errors already explained (ClickHouse's, a lost lease) pass unchanged. */
function leaseRedisError(config: SluiceConfig, err: unknown): unknown {
  if (err instanceof SluiceError) return err;
  return new ServiceError(
    'redis',
    `Redis at ${redactedUrl(config.redis.url)}, which holds the migration lease, failed (${(err as Error)?.message ?? String(err)}): start it with 'sluice stack up' or fix ${settingName('redis.url')}; 'sluice sink migrate --no-lease' migrates without it while no processor runs`,
    { retriable: true, cause: err },
  );
}
