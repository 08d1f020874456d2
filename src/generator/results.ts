import type { ClickHouseClient } from '@clickhouse/client';
import type { ExpectedWindowRow } from './expected';

/**
 * The window rows a run left in ClickHouse, in the shape of the expected
 * answer, so tests and the benchmark compare like with like. `view` has one
 * row per (window, event_type, campaign_id) with events, distinct_users and
 * amount (the reference stream's `event_counts_1m`). With `overlapping`
 * (epoch ms, [from, to)), only the windows that overlap that span of event time.
 */
export async function readWindowRows(
  clickhouse: ClickHouseClient,
  view = 'event_counts_1m',
  overlapping?: { from: number; to: number },
): Promise<ExpectedWindowRow[]> {
  // The times are selected in epoch ms under the columns' own names: filter them outside, in those units.
  const where = overlapping ? `WHERE window_end > ${overlapping.from} AND window_start < ${overlapping.to}` : '';
  const rows = await (
    await clickhouse.query({
      query: `SELECT * FROM (
                SELECT toUnixTimestamp(window_start) * 1000 AS window_start, toUnixTimestamp(window_end) * 1000 AS window_end,
                       event_type, campaign_id, events, distinct_users_in_window AS distinct_users, amount
                FROM ${view}
              ) ${where} ORDER BY window_start, event_type, campaign_id`,
      format: 'JSONEachRow',
    })
  ).json<Record<string, string | number>>();
  return rows.map((r) => ({
    window_start: Number(r.window_start),
    window_end: Number(r.window_end),
    event_type: String(r.event_type),
    campaign_id: String(r.campaign_id),
    events: Number(r.events),
    distinct_users: Number(r.distinct_users),
    // Amounts are whole cents by construction (Decimal in ClickHouse): compared in cents.
    sum_amount: Math.round(Number(r.amount) * 100) / 100,
  }));
}
