import type { ClickHouseClient } from '@clickhouse/client';
import type { ExpectedAnswer, WorkloadLogEntry } from '../../src/generator';
import type { StreamDefinition } from '../../src/process';
import eventCounts from '../../streams/event-counts';

/** The reference stream with a bug a replay must repair: amounts doubled in raw rows and window rows. */
export function buggyEventCounts(): StreamDefinition<unknown> {
  const base = eventCounts as unknown as StreamDefinition<unknown>;
  return {
    ...base,
    raw: {
      table: base.raw!.table,
      toRow: (e, meta) => {
        const row = base.raw!.toRow(e, meta);
        return { ...row, amount: row.amount == null ? row.amount : Number(row.amount) * 2 };
      },
    },
    windowed: {
      ...base.windowed!,
      toRow: (w, meta) => {
        const row = base.windowed!.toRow(w, meta);
        return { ...row, amount: Number(row.amount) * 2 };
      },
    },
  };
}

/** Reads the reference tables of one test database, in shapes a test can compare (the client is looked up per query: specs create it in beforeAll). */
export function referenceRows(clickhouse: () => ClickHouseClient) {
  const rows = async <T>(query: string) => (await clickhouse().query({ query, format: 'JSONEachRow' })).json<T>();
  return {
    rows,
    /** Every window partial, FINAL, in a stable order. */
    partials: () =>
      rows<Record<string, unknown>>(`SELECT toUnixTimestamp(window_start) * 1000 AS ws, toUnixTimestamp(window_end) * 1000 AS we, event_type, campaign_id,
          source_partition, events, amount, arraySort(users) AS users, final, version FROM event_counts_1m_partial FINAL
          ORDER BY window_start, event_type, campaign_id, source_partition`),
    raw: () => rows<Record<string, unknown>>('SELECT event_id, event_time_ms, amount, kafka_partition, kafka_offset FROM events_raw FINAL ORDER BY event_id'),
    /** The analysts' view for windows inside [from, to), in the shape of the generator's answer. */
    windowsIn: async (from: number, to: number) => {
      const found = await rows<Record<string, string | number>>(
        `SELECT toUnixTimestamp(window_start) * 1000 AS ws, toUnixTimestamp(window_end) * 1000 AS we, event_type, campaign_id,
                events, distinct_users, amount FROM event_counts_1m
         WHERE window_start >= toDateTime(${from / 1000}) AND window_end <= toDateTime(${to / 1000}) ORDER BY window_start, event_type, campaign_id`,
      );
      return found.map((r) => ({
        window_start: Number(r.ws), window_end: Number(r.we), event_type: String(r.event_type), campaign_id: String(r.campaign_id),
        events: Number(r.events), distinct_users: Number(r.distinct_users), sum_amount: Math.round(Number(r.amount) * 100) / 100,
      }));
    },
  };
}

/** The generator's answer restricted to windows inside [from, to). */
export const expectedWindowsIn = (expected: ExpectedAnswer, from: number, to: number) =>
  expected.windows.filter((w) => w.window_start >= from && w.window_end <= to);

/** Each valid event's true amount, by event id (first occurrence: duplicates re-send the same bytes). */
export function trueAmounts(log: WorkloadLogEntry[]): Map<string, number | null> {
  const truth = new Map<string, number | null>();
  for (const e of log) if (e.event && e.kind !== 'poison' && e.eventId && !truth.has(e.eventId)) truth.set(e.eventId, e.event.amount ?? null);
  return truth;
}
