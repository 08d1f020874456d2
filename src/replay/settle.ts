import type { ClickHouseClient } from '@clickhouse/client';
import type { SluiceConfig } from '../config';
import { assertIdentifier, createClickHouse } from '../sink/clickhouse';
import type { Logger } from '../telemetry';
import type { TableChange } from './plan';

/** One ClickHouse partition merged down to one row per identity after an in-place replay. */
export interface SettledPartition {
  table: string;
  partitionId: string;
}

const quote = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/**
 * After an in-place replay every row of the range exists twice (the old and
 * the rewritten copy share an identity) until ClickHouse's background merge
 * folds them, which may take minutes or, for large parts, much longer: a
 * query without FINAL counts the range twice meanwhile. This merges the
 * partitions the replay wrote (OPTIMIZE … FINAL, synchronous on MergeTree), so
 * the tables read right without FINAL as soon as the replay returns. It costs
 * a rewrite of those partitions, which is why it is limited to them.
 * Partitions are named by id (`PARTITION ID`, on 18.16 and current releases),
 * looked up from the partition values the plan found (`toString` of the key).
 */
export async function settleReplacedPartitions(
  clickhouse: ClickHouseClient,
  database: string,
  tables: TableChange[],
): Promise<SettledPartition[]> {
  assertIdentifier('database', database);
  const settled: SettledPartition[] = [];
  for (const change of tables) {
    if (change.partitions.length === 0) continue;
    const table = assertIdentifier('table', change.table);
    // system.parts prints a partition as a literal: a number bare, a string quoted.
    const literals = change.partitions.flatMap((p) => [quote(p), quote(quote(p))]).join(', ');
    const ids = await (
      await clickhouse.query({
        query: `SELECT DISTINCT partition_id AS id FROM system.parts
                WHERE database = '${database}' AND table = '${table}' AND active AND partition IN (${literals}) ORDER BY id`,
        format: 'JSONEachRow',
      })
    ).json<{ id: string }>();
    for (const { id } of ids) {
      await clickhouse.command({ query: `OPTIMIZE TABLE ${database}.${table} PARTITION ID ${quote(id)} FINAL` });
      settled.push({ table, partitionId: id });
    }
  }
  return settled;
}

/** The in-place replay's last step: settle what it rewrote. A failure only leaves the merge to ClickHouse, so it is logged, not thrown. */
export async function settleAfterInPlaceReplay(
  config: SluiceConfig,
  tables: TableChange[],
  log: Logger,
): Promise<SettledPartition[]> {
  const clickhouse = createClickHouse(config.clickhouse, config.clickhouse.database);
  try {
    const settled = await settleReplacedPartitions(clickhouse, config.clickhouse.database, tables);
    log.info({ settled }, 'replaced partitions merged');
    return settled;
  } catch (err) {
    log.warn(
      { err: String(err) },
      'could not merge the replaced partitions: until ClickHouse merges them, query with FINAL (or the views)',
    );
    return [];
  } finally {
    await clickhouse.close().catch(() => undefined);
  }
}
