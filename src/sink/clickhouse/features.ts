import type { ClickHouseClient } from '@clickhouse/client';
import { SluiceError } from '../../errors';

/**
 * What the connected ClickHouse server can do, for SQL that must run on 18.16
 * (the local stack) and on current releases (users). Setting-shaped features
 * are read from the server's own system tables, which is exact; the version
 * is kept for features that are not settings, and as the fallback.
 */
export interface ServerFeatures {
  version: string;
  major: number;
  minor: number;
  /** INSERT setting `insert_deduplication_token` (ClickHouse 22.2). */
  insertDeduplicationToken: boolean;
  /** MergeTree setting `non_replicated_deduplication_window` (insert dedup without replication; 21.x). */
  nonReplicatedDeduplicationWindow: boolean;
  /** `async_insert` (21.11). Sluice never needs it; detected so callers can avoid relying on server defaults. */
  asyncInsert: boolean;
  /** `DateTime64` type (20.1). */
  dateTime64: boolean;
  /** `COMMENT '...'` after a CREATE TABLE (system.tables has a `comment` column). Column comments work on 18.16 already. */
  tableComments: boolean;
  /**
   * A WHERE on a view reaches the primary-key analysis of a FINAL read inside
   * it, through the view's GROUP BY (the query plan's filter push-down), so a
   * view over `... FINAL` reads only the granules the filter asks for. Seen on
   * 24.8 and later (the oldest release the project's specs run); 18.16 reads
   * the whole table there, and never pushes a filter into a FINAL subquery.
   * Not a setting: from the version alone.
   */
  viewFiltersReachFinal: boolean;
}

export function parseVersion(version: string): { major: number; minor: number } {
  const match = /^(\d+)\.(\d+)/.exec(version.trim());
  if (!match) throw new SluiceError('SERVICE_ANSWER_INVALID', `cannot parse ClickHouse version '${version}'`);
  return { major: Number(match[1]), minor: Number(match[2]) };
}

const atLeast = (v: { major: number; minor: number }, major: number, minor: number) =>
  v.major > major || (v.major === major && v.minor >= minor);

/** Features implied by the version alone (release notes); used when the system tables cannot be read. */
export function featuresFromVersion(version: string): ServerFeatures {
  const v = parseVersion(version);
  return {
    version,
    ...v,
    insertDeduplicationToken: atLeast(v, 22, 2),
    nonReplicatedDeduplicationWindow: atLeast(v, 21, 4),
    asyncInsert: atLeast(v, 21, 11),
    dateTime64: atLeast(v, 20, 1),
    tableComments: atLeast(v, 21, 6),
    viewFiltersReachFinal: atLeast(v, 24, 8),
  };
}

/** One round trip: the version plus the presence of each setting-shaped feature. */
export async function detectServerFeatures(client: ClickHouseClient): Promise<ServerFeatures> {
  const result = await client.query({
    query: `SELECT version() AS version,
      (SELECT groupArray(name) FROM system.settings WHERE name IN ('insert_deduplication_token', 'async_insert')) AS settings,
      (SELECT count() FROM system.merge_tree_settings WHERE name = 'non_replicated_deduplication_window') AS window,
      (SELECT count() FROM system.columns WHERE database = 'system' AND table = 'tables' AND name = 'comment') AS table_comment`,
    format: 'JSONEachRow',
  });
  const [row] = await result.json<{
    version: string;
    settings: string[];
    window: string | number;
    table_comment: string | number;
  }>();
  if (!row) throw new SluiceError('SERVICE_ANSWER_INVALID', 'ClickHouse answered SELECT version() with no row');
  return {
    ...featuresFromVersion(row.version),
    insertDeduplicationToken: row.settings.includes('insert_deduplication_token'),
    asyncInsert: row.settings.includes('async_insert'),
    nonReplicatedDeduplicationWindow: Number(row.window) > 0,
    tableComments: Number(row.table_comment) > 0,
  };
}
