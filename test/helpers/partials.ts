import type { ClickHouseClient } from '@clickhouse/client';

/** Minutes, groups per minute and rows per group (one per Kafka partition) of `fillMonthOfPartials`. */
export const MONTH_OF_PARTIALS = { days: 30, groups: 4, partitions: 2 };
export const MONTH_OF_PARTIALS_ROWS =
  MONTH_OF_PARTIALS.days * 1440 * MONTH_OF_PARTIALS.groups * MONTH_OF_PARTIALS.partitions;

/**
 * Thirty days of window partials from `from` (epoch seconds, a midnight), as
 * the reference stream writes them: each minute, the groups (view, click) x
 * ('', c1), each from two Kafka partitions. Partition p counts p + 1 events
 * and user `p<p>`, so a merged window has 3 events and two users, a merged
 * hour 180 events; version 1000. One INSERT ... SELECT on the server (18.16
 * and current releases), 345,600 rows, a day to a partition of the table.
 */
export async function fillMonthOfPartials(client: ClickHouseClient, database: string, from: number): Promise<void> {
  const { days, groups, partitions } = MONTH_OF_PARTIALS;
  const perMinute = groups * partitions;
  await client.command({
    query: `INSERT INTO ${database}.event_counts_1m_partial
      (window_start, window_end, event_type, campaign_id, source_partition, events, amount, users, final, version, emitted_at)
      SELECT toDateTime(${from}) + intDiv(number, ${perMinute}) * 60 AS start, start + 60,
             ['view', 'click'][number % 2 + 1], ['', 'c1'][intDiv(number, 2) % 2 + 1],
             toUInt16(intDiv(number, ${groups}) % ${partitions}) AS source, source + 1, toDecimal64(1.25, 2),
             [concat('p', toString(source))], 1, 1000, start + 90
      FROM system.numbers LIMIT ${days * 1440 * perMinute}`,
  });
}
