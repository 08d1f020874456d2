import { computeExpected, computeExpectedFromLog, type ExpectedWindowRow } from './expected';
import { createEventEncoder } from './encode';
import type { AnalyticsEventV2 } from '../../streams/event-counts/event';
import { toLogEntry, type WorkloadLogEntry } from './log';
import { generateWorkload } from './workload';

const T0 = Date.UTC(2026, 0, 1); // 1767225600000, a minute boundary
const MIN = 60_000;

const ev = (
  id: string,
  type: string,
  user: string,
  campaign: string | null,
  time: number,
  amount: number | null = null,
  channel = 'web',
): AnalyticsEventV2 => ({
  event_id: id,
  event_type: type,
  user_id: user,
  campaign_id: campaign,
  ad_id: campaign === null ? null : `${campaign}-ad-0`,
  event_time: time,
  amount,
  properties: {},
  channel,
});
const entry = (seq: number, kind: WorkloadLogEntry['kind'], event: AnalyticsEventV2): WorkloadLogEntry => ({
  seq,
  kind,
  key: event.event_id,
  eventId: event.event_id,
  event,
});

/** A hand-written log; the expected answer below is worked out by hand from it. */
const A = ev('a', 'view', 'u1', 'c1', T0 + 10_000);
const E = ev('e', 'view', 'u1', 'c1', T0 - 3_600_000, null, 'android');
const log: WorkloadLogEntry[] = [
  entry(0, 'valid', A),
  entry(1, 'valid', ev('b', 'view', 'u2', 'c1', T0 + 50_000)),
  { ...entry(2, 'duplicate', A), duplicateOf: 0 },
  entry(3, 'valid', ev('c', 'purchase', 'u1', null, T0 + 59_999, 10.25, 'ios')),
  { seq: 4, kind: 'poison', key: null, poisonReason: 'random-bytes', value: 'AQID' },
  entry(5, 'valid', ev('d', 'purchase', 'u3', null, T0 + MIN, 5.5)), // first ms of the next window
  entry(6, 'late', E),
  { ...entry(7, 'duplicate', E), duplicateOf: 6 }, // a re-sent late event: a dedup hit, not late twice
  entry(8, 'valid', ev('f', 'view', 'u1', 'c1', T0 + 30_000)),
  entry(9, 'valid', ev('g', 'purchase', 'u1', null, T0 + 5_000, 0.1)),
  {
    seq: 10,
    kind: 'poison',
    key: 'k1',
    eventId: 'h0',
    event: ev('h0', '', 'u1', null, T0, null, 'ios'), // poison: in no channel's count
    poisonReason: 'empty-event-type',
    value: 'AA==',
  },
  entry(11, 'duplicate', ev('h', 'view', 'u4', 'c2', T0 + 61_000)), // its original is not in the log: counts once
];

describe('computeExpected', () => {
  it('computes the answer of a hand-written log', () => {
    const expected = computeExpected(log);
    const windows: ExpectedWindowRow[] = [
      {
        window_start: T0,
        window_end: T0 + MIN,
        event_type: 'purchase',
        campaign_id: '',
        events: 2,
        distinct_users: 1,
        sum_amount: 10.35,
      },
      {
        window_start: T0,
        window_end: T0 + MIN,
        event_type: 'view',
        campaign_id: 'c1',
        events: 3,
        distinct_users: 2,
        sum_amount: 0,
      },
      {
        window_start: T0 + MIN,
        window_end: T0 + 2 * MIN,
        event_type: 'purchase',
        campaign_id: '',
        events: 1,
        distinct_users: 1,
        sum_amount: 5.5,
      },
      {
        window_start: T0 + MIN,
        window_end: T0 + 2 * MIN,
        event_type: 'view',
        campaign_id: 'c2',
        events: 1,
        distinct_users: 1,
        sum_amount: 0,
      },
    ];
    expect(expected.windows).toEqual(windows);
    expect(expected.records).toBe(12);
    expect(expected.byKind).toEqual({ valid: 6, duplicate: 3, late: 1, poison: 2 });
    expect([...expected.eventIds].sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']);
    // Every event of events_raw by its channel, the late one included.
    expect(expected.eventsByChannel).toEqual({ android: 1, ios: 1, web: 6 });
    expect([...expected.onTimeEventIds].sort()).toEqual(['a', 'b', 'c', 'd', 'f', 'g', 'h']);
    expect([...expected.lateEventIds]).toEqual(['e']);
    expect(expected.suppressedDuplicates).toBe(2);
    expect(expected.deadLetters).toEqual([
      { seq: 4, key: null, reason: 'random-bytes', value: 'AQID' },
      { seq: 10, key: 'k1', reason: 'empty-event-type', value: 'AA==' },
    ]);
    // From the late event an hour before to just after the last on-time one (d, in the second window).
    expect(expected.eventTimeSpan).toEqual({ from: T0 - 3_600_000, to: T0 + 61_001 });
  });

  it('counts an id once even when its first record comes after a re-send in the log order', () => {
    // The first occurrence wins, whatever kind it is recorded as.
    const expected = computeExpected([entry(0, 'valid', A), entry(1, 'late', A)]);
    expect(expected.lateEventIds.size).toBe(0);
    expect(expected.suppressedDuplicates).toBe(1);
  });

  it('refuses a log that is out of order or has an event-less event record', () => {
    expect(() => computeExpected([entry(1, 'valid', A), entry(0, 'valid', A)])).toThrow(/out of order/);
    expect(() => computeExpected([{ seq: 0, kind: 'valid', key: 'a' }])).toThrow(/no event/);
  });

  it('agrees with the generator on what a generated log contains', async () => {
    const generated = [...generateWorkload({ count: 5_000, seed: 9 }, createEventEncoder(1))].map(toLogEntry);
    async function* stream() {
      yield* generated;
    }
    const expected = await computeExpectedFromLog(stream());
    expect(expected.windows.reduce((n, w) => n + w.events, 0)).toBe(expected.byKind.valid);
    expect(expected.onTimeEventIds.size).toBe(expected.byKind.valid);
    expect(expected.lateEventIds.size).toBe(expected.byKind.late);
    expect(expected.suppressedDuplicates).toBe(expected.byKind.duplicate);
    expect(expected.deadLetters).toHaveLength(expected.byKind.poison);
    expect(Object.keys(expected.eventsByChannel)).toEqual(['android', 'ios', 'server', 'web']);
    expect(Object.values(expected.eventsByChannel).reduce((n, c) => n + c, 0)).toBe(expected.eventIds.size);
    // 5000 records at 100/s plus the 30 s lead-in: windows over 1-2 minutes of the first hour.
    expect(new Set(expected.windows.map((w) => w.window_start)).size).toBeGreaterThanOrEqual(2);
    for (const w of expected.windows) expect(w.distinct_users).toBeLessThanOrEqual(w.events);
  });
});
