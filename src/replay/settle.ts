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
  retry: { attempts: number; delayMs: number } = { attempts: 20, delayMs: 500 },
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
      await optimizePartition(clickhouse, database, table, id, retry);
      settled.push({ table, partitionId: id });
    }
  }
  return settled;
}

/**
 * OPTIMIZE … FINAL does nothing, and says nothing (unless optimize_throw_if_noop,
 * which chdb cannot take on a statement), while a background merge holds some
 * of the partition's parts: it is repeated until the partition is one part.
 */
async function optimizePartition(
  clickhouse: ClickHouseClient,
  database: string,
  table: string,
  id: string,
  retry: { attempts: number; delayMs: number },
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await clickhouse.command({ query: `OPTIMIZE TABLE ${database}.${table} PARTITION ID ${quote(id)} FINAL` });
    const [parts] = await (
      await clickhouse.query({
        query: `SELECT count() AS n FROM system.parts WHERE database = '${database}' AND table = '${table}' AND partition_id = ${quote(id)} AND active`,
        format: 'JSONEachRow',
      })
    ).json<{ n: string | number }>();
    if (Number(parts?.n ?? 0) <= 1) return;
    if (attempt >= retry.attempts)
      throw new Error(`partition ${id} of ${database}.${table} still has ${parts!.n} parts after ${attempt} merges`);
    await new Promise((resolve) => setTimeout(resolve, retry.delayMs));
  }
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
