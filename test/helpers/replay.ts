import type { ClickHouseClient } from '@clickhouse/client';
import { computeExpected, produceWorkload, type ExpectedAnswer, type WorkloadLogEntry } from '../../src/generator';
import { startStream, type StreamDefinition } from '../../src/process';
import { createLogger } from '../../src/telemetry';
import eventCounts from '../../streams/event-counts';
import { createTestContext, type TestContext } from './context';

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
      rows<
        Record<string, unknown>
      >(`SELECT toUnixTimestamp(window_start) * 1000 AS ws, toUnixTimestamp(window_end) * 1000 AS we, event_type, campaign_id,
          source_partition, events, amount, arraySort(users) AS users, final, version FROM event_counts_1m_partial FINAL
          ORDER BY window_start, event_type, campaign_id, source_partition`),
    raw: () =>
      rows<Record<string, unknown>>(
        'SELECT event_id, event_time_ms, amount, kafka_partition, kafka_offset FROM events_raw FINAL ORDER BY event_id',
      ),
    /** The analysts' view for windows inside [from, to), in the shape of the generator's answer. */
    windowsIn: async (from: number, to: number) => {
      const found = await rows<Record<string, string | number>>(
        `SELECT toUnixTimestamp(window_start) * 1000 AS ws, toUnixTimestamp(window_end) * 1000 AS we, event_type, campaign_id,
                events, distinct_users_in_window AS distinct_users, amount FROM event_counts_1m
         WHERE window_start >= toDateTime(${from / 1000}) AND window_end <= toDateTime(${to / 1000}) ORDER BY window_start, event_type, campaign_id`,
      );
      return found.map((r) => ({
        window_start: Number(r.ws),
        window_end: Number(r.we),
        event_type: String(r.event_type),
        campaign_id: String(r.campaign_id),
        events: Number(r.events),
        distinct_users: Number(r.distinct_users),
        sum_amount: Math.round(Number(r.amount) * 100) / 100,
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
  for (const e of log)
    if (e.event && e.kind !== 'poison' && e.eventId && !truth.has(e.eventId))
      truth.set(e.eventId, e.event.amount ?? null);
  return truth;
}

/** A test topic with the reference workload, already processed once by the buggy stream under the test's group. */
export interface BuggyFirstPass {
  ctx: TestContext;
  topic: string;
  log: WorkloadLogEntry[];
  expected: ExpectedAnswer;
  /** Environment for `sluice` child processes that should use the test's database and key prefix. */
  env: NodeJS.ProcessEnv;
}

/**
 * 20k reference records at 10 events/s of event time (about 33 minutes, so a
 * range in the middle has whole windows on both sides), run through the
 * buggy stream as a bounded run: the state a replay has to repair.
 */
export async function buggyFirstPass(label: string, seed: number): Promise<BuggyFirstPass> {
  const ctx = await createTestContext(label);
  const topic = await ctx.createTopic('events', 6);
  await ctx.createTopic('events.dlq', 1);
  await ctx.createTopic('events.late', 1);
  const produced = await produceWorkload({
    config: ctx.config,
    topic,
    count: 20_000,
    seed,
    ratePerSecond: 10,
    keepLog: true,
  });
  const log = produced.log!;
  const env = ctx.childEnv('warn');
  const running = await startStream(
    buggyEventCounts(),
    ctx.config,
    { bounded: true, groupId: ctx.group, topic },
    createLogger('warn'),
  );
  await running.done;
  return { ctx, topic, log, expected: computeExpected(log), env };
}

/** `sluice replay event-counts` of [from, to) for one topic and group, as the specs run it; `extra` adds flags. */
export const replayArgs = (topic: string, group: string, from: number, to: number, ...extra: string[]): string[] => [
  'replay',
  'event-counts',
  '--topic',
  topic,
  '--group',
  group,
  '--from',
  new Date(from).toISOString(),
  '--to',
  new Date(to).toISOString(),
  ...extra,
];
