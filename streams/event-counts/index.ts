import { defineStream } from '../../src/process';
import { validateAnalyticsEvent, type AnalyticsEvent } from '../../src/generator';
import { count, defineWindows, distinct, sum, tumbling } from '../../src/window';
import { EVENT_COUNTS_1H, EVENT_COUNTS_1M, EVENT_COUNTS_PARTIAL } from './tables';

/** The reference event as the stream sees it: v1 fields plus v2's channel ('unknown' from v1 writers). */
export type Event = AnalyticsEvent & { channel: string };

const MINUTE = 60_000;
const seconds = (ms: number) => Math.floor(ms / 1000);

/** 1-minute tumbling windows per (event type, campaign): events, distinct users, sum of amount. */
export const eventCountWindows = defineWindows({
  assigner: tumbling(MINUTE),
  groupBy: {
    key: (e: Event) => `${e.event_type}\u0000${e.campaign_id ?? ''}`,
    fields: (e: Event) => ({ event_type: e.event_type, campaign_id: e.campaign_id ?? '' }),
  },
  aggregate: {
    events: count<Event>(),
    users: distinct((e: Event) => e.user_id),
    amount: sum((e: Event) => e.amount),
  },
  // Events may arrive up to 30 s out of order (the watermark trails by that) and 30 s more is grace.
  allowedLatenessMs: 30_000,
});

/**
 * The reference pipeline (docs/design.md §4): events -> dedup by event id ->
 * events_raw, and 1-minute windows -> event_counts_1m (with an hourly rollup).
 */
export default defineStream({
  name: 'event-counts',
  source: { topic: 'events', schema: 'analytics_event.v2' },
  validate(value) {
    const result = validateAnalyticsEvent(value);
    if (!result.ok) return result;
    // The validator's event is a fresh object: completing it in place saves a copy of every field per event.
    const event = result.event as Event;
    event.channel = typeof value.channel === 'string' ? value.channel : 'unknown';
    return { ok: true, event };
  },
  eventTime: (e: Event) => e.event_time,
  dedup: { id: (e: Event) => e.event_id, ttlSeconds: 24 * 60 * 60, onUnavailable: 'pause' },
  raw: {
    table: 'events_raw',
    toRow: (e: Event, meta) => ({
      event_id: e.event_id,
      event_type: e.event_type,
      user_id: e.user_id,
      campaign_id: e.campaign_id ?? '',
      ad_id: e.ad_id ?? '',
      event_time: seconds(e.event_time),
      event_time_ms: e.event_time,
      amount: e.amount,
      property_keys: Object.keys(e.properties),
      property_values: Object.values(e.properties),
      channel: e.channel,
      kafka_topic: meta.topic,
      kafka_partition: meta.partition,
      kafka_offset: Number(meta.offset),
      ingested_at: seconds(Date.now()),
      // Same event, same row: a re-insert after a crash or a replay replaces it.
      version: 0,
    }),
  },
  windowed: {
    definition: eventCountWindows,
    outOfOrdernessMs: 30_000,
    idleTimeoutMs: 10_000,
    // An event stamped more than 5 minutes after its record was written is a producer clock bug: dead-letter it.
    // (Closer ones are windowed; either way an event moves the watermark no further than its record's time.)
    // `sluice replay` starts reading this much before a range, so it finds every event the stream accepted.
    maxEventTimeAheadMs: 300_000,
    table: 'event_counts_1m_partial',
    toRow: (w, { partition, version, emittedAt }) => ({
      window_start: seconds(w.windowStart),
      window_end: seconds(w.windowEnd),
      event_type: w.fields.event_type,
      campaign_id: w.fields.campaign_id,
      source_partition: partition,
      events: w.aggregates.events,
      amount: w.aggregates.amount,
      users: w.aggregates.users,
      final: w.final ? 1 : 0,
      version,
      emitted_at: seconds(emittedAt),
    }),
  },
  tables: [EVENT_COUNTS_PARTIAL, EVENT_COUNTS_1M, EVENT_COUNTS_1H],
});
