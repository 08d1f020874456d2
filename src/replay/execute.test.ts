import { randomUUID } from 'node:crypto';
import { MemoryDedupStore } from '../dedup';
import type { ConsumedRecord } from '../kafka';
import type { Row, StreamDefinition } from '../process';
import { StreamTask } from '../process/task';
import { StreamWindows } from '../process/windows';
import { count, defineWindows, distinct, session, sum } from '../window';
import eventCounts, { type AnalyticsEventV2 } from '../../streams/event-counts';
import { rangeFilter, versionedAsOfPlan } from './execute';
import type { ReplayPlan } from './plan';
import { snapToWindows, type EventTimeRange } from './range';

/**
 * A replay of an event-time range against the live pass over the same
 * records, at the level of the task the runtime drives: the live pass (no
 * range) and the replay (its range and row filter, as executeReplay wires
 * them). ClickHouse ends with the live rows whose identity the replay did not
 * write plus the replay's rows: the replay must count what the live stream
 * counted, once.
 */
const MIN = 60_000;
const FROM = Date.UTC(2026, 10, 1, 10, 0, 0);
const TO = FROM + 10 * MIN;
const topic = 'events';
const reference = eventCounts as unknown as StreamDefinition<unknown>;

// Written an hour after the range (a late producer, a backfill): the record-time bound plays no part.
const record = (offset: number, event: AnalyticsEventV2): ConsumedRecord => ({
  topic,
  partition: 0,
  offset: String(offset),
  timestamp: String(FROM + 60 * MIN),
  key: Buffer.from(event.event_id),
  value: Buffer.from(JSON.stringify(event)),
  headers: {},
});

const click = (id: string, t: number): AnalyticsEventV2 => ({
  event_id: id,
  event_type: 'click',
  user_id: 'u1',
  campaign_id: 'camp-1',
  ad_id: null,
  event_time: t,
  amount: null,
  properties: {},
  channel: 'web',
});

/** The rows each table gets from one pass over the records: live (no range) or a replay of `range`. */
async function pass(
  definition: StreamDefinition<unknown>,
  records: ConsumedRecord[],
  range?: EventTimeRange,
): Promise<Map<string, Row[]>> {
  const filter = range ? rangeFilter(definition, range) : undefined;
  const def = filter?.definition ?? definition;
  let now = FROM + 60 * MIN;
  const task = new StreamTask(
    def,
    {
      decoder: { decode: (v: Buffer) => JSON.parse(v.toString()) as Record<string, unknown> },
      dedup: new MemoryDedupStore(),
      now: () => now++,
    },
    def.windowed ? new StreamWindows(def.windowed, topic) : undefined,
    range ? { eventTimeRange: range } : {},
  );
  task.assign(topic, 0, '0');
  await task.processBatch(topic, 0, records);
  task.closeAllWindows();
  const out = new Map<string, Row[]>();
  for (const [table, { rows }] of task.takeCheckpoint().rows)
    out.set(table, filter ? rows.filter((r) => filter.keep(table, r)) : rows);
  return out;
}

/** A table after the replay: the live rows whose identity the replay did not write, and the replay's. */
function afterReplay(
  live: Map<string, Row[]>,
  replay: Map<string, Row[]>,
  table: string,
  identity: (r: Row) => string,
) {
  const byId = new Map<string, Row>();
  for (const r of [...(live.get(table) ?? []), ...(replay.get(table) ?? [])]) byId.set(identity(r), r);
  return [...byId.values()];
}
const rawIdentity = (r: Row) => `${String(r.event_time)}|${String(r.event_id)}`;
const windowIdentity = (r: Row) =>
  [r.window_start, r.window_end, r.event_type, r.campaign_id, r.source_partition].map(String).join('|');
const events = (rows: Row[]) => rows.reduce((s, r) => s + Number(r.events), 0);

describe('a replay of an event-time range counts what the live stream counted, once', () => {
  it('an event id seen first outside the range stays a duplicate inside it (a retry that re-stamped its event time)', async () => {
    const range = snapToWindows({ from: FROM, to: TO }, reference.windowed!.definition.assigner);
    const id = randomUUID();
    const records = [record(0, click(id, FROM - 20_000)), record(1, click(id, FROM + 15_000))];

    const live = await pass(reference, records);
    expect(live.get('events_raw')).toHaveLength(1);
    const replay = await pass(reference, records, range);
    expect(replay.get('events_raw') ?? []).toEqual([]);

    expect(afterReplay(live, replay, 'events_raw', rawIdentity)).toHaveLength(1);
    expect(events(afterReplay(live, replay, 'event_counts_1m_partial', windowIdentity))).toBe(1);
  });

  it('a session that began before --from is kept as the live stream wrote it, not added again from its tail', async () => {
    const sessions = defineWindows({
      assigner: session(2 * MIN),
      groupBy: {
        key: (e: AnalyticsEventV2) => e.event_type,
        fields: (e: AnalyticsEventV2) => ({ event_type: e.event_type, campaign_id: '' }),
      },
      aggregate: {
        events: count<AnalyticsEventV2>(),
        users: distinct((e: AnalyticsEventV2) => e.user_id),
        amount: sum((e: AnalyticsEventV2) => e.amount),
      },
      allowedLatenessMs: 30_000,
    });
    const definition = {
      ...reference,
      windowed: { ...reference.windowed!, definition: sessions },
    } as unknown as StreamDefinition<unknown>;
    const range = snapToWindows({ from: FROM, to: TO }, sessions.assigner);
    const records = [
      // A minute before --from and on into the range: one session.
      record(0, click(randomUUID(), FROM - 60_000)),
      record(1, click(randomUUID(), FROM + 30_000)),
      record(2, click(randomUUID(), FROM + 90_000)),
      // Starting more than a gap after --from: certainly whole, so rewritten.
      record(3, click(randomUUID(), FROM + 5 * MIN)),
      record(4, click(randomUUID(), FROM + 6 * MIN)),
    ];

    const live = await pass(definition, records);
    const replay = await pass(definition, records, range);
    expect((replay.get('event_counts_1m_partial') ?? []).map((r) => [r.window_start, r.events])).toEqual([
      [(FROM + 5 * MIN) / 1000, 2],
    ]);
    expect(events(afterReplay(live, replay, 'event_counts_1m_partial', windowIdentity))).toBe(5);
  });
});

describe('versionedAsOfPlan', () => {
  it("gives a shadow replay's window rows no newer version than when the live stream had read what the replay reads", () => {
    const plan = {
      plannedAt: 5_000,
      partitions: [
        { partition: 0, start: '0', end: '5', records: '5', committedAt: 1_000 },
        { partition: 1, start: '0', end: '0', records: '0' },
      ],
    } as unknown as ReplayPlan;
    const toRow = versionedAsOfPlan(reference, plan).windowed!.toRow;
    const result = {
      windowStart: FROM,
      windowEnd: FROM + MIN,
      fields: { event_type: 'click', campaign_id: 'c' },
      aggregates: { events: 1, users: ['u1'], amount: 0 },
      final: true,
    } as unknown as Parameters<typeof toRow>[0];
    const version = (partition: number, now: number) =>
      toRow(result, { partition, version: now, emittedAt: now }).version;
    expect(version(0, 9_000)).toBe(1_000);
    expect(version(1, 9_000)).toBe(5_000); // no commit time known: the plan's
    expect(version(0, 500)).toBe(500);
  });
});
