import { createHash } from 'node:crypto';

export type Row = Record<string, unknown>;

/** The Kafka records a batch of rows came from (inclusive offsets, as strings). */
export interface SinkPosition {
  topic: string;
  partition: number;
  fromOffset: string;
  toOffset: string;
}

/** Columns that may differ when the same records are written again; not part of a block's identity. */
export const DEFAULT_VOLATILE_COLUMNS = ['ingested_at', 'version'];

/**
 * The `insert_deduplication_token` of one insert block: same Kafka records and
 * same content give the same token, so ClickHouse (22.2+, with a dedup window
 * on the table) drops a retried or replayed block. The content hash is part of
 * it on purpose: a block covering the same offsets but holding other rows (a
 * window emitted differently after a restart) must not be taken for a
 * duplicate and silently dropped.
 */
export function insertDedupToken(
  table: string,
  rows: Row[],
  positions: SinkPosition[],
  volatileColumns: string[] = DEFAULT_VOLATILE_COLUMNS,
): string {
  const volatile = new Set(volatileColumns);
  const hash = createHash('sha256');
  hash.update(table);
  const ordered = [...positions].sort(
    (a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition || a.fromOffset.localeCompare(b.fromOffset),
  );
  for (const p of ordered) hash.update(`|${p.topic}/${p.partition}/${p.fromOffset}-${p.toOffset}`);
  for (const row of rows) {
    const stable = Object.keys(row)
      .filter((k) => !volatile.has(k))
      .sort()
      .map((k) => [k, row[k]]);
    hash.update(`\n${JSON.stringify(stable)}`);
  }
  return `sluice-${hash.digest('hex').slice(0, 40)}`;
}
