import { defineStream } from '../../src/process';
import { count, defineWindows, distinct, sum, tumbling } from '../../src/window';
import { ANALYTICS_EVENT_V2_SCHEMA, type AnalyticsEventV2 } from './event';
import { EVENT_COUNTS_1H, EVENT_COUNTS_1M, EVENT_COUNTS_PARTIAL, EVENT_COUNTS_MIGRATIONS, EVENTS } from './tables';
import { validateAnalyticsEventV2 } from './validate';

export { ANALYTICS_EVENT_SCHEMA, ANALYTICS_EVENT_V2_SCHEMA, type AnalyticsEvent, type AnalyticsEventV2 } from './event';
export { validateAnalyticsEvent, validateAnalyticsEventV2 } from './validate';

const MINUTE = 60_000;
const seconds = (ms: number) => Math.floor(ms / 1000);

/** 1-minute tumbling windows per (event type, campaign): events, distinct users, sum of amount. */
export const eventCountWindows = defineWindows({
  assigner: tumbling(MINUTE),
  groupBy: {
    key: (e: AnalyticsEventV2) => `${e.event_type}\u0000${e.campaign_id ?? ''}`,
    fields: (e: AnalyticsEventV2) => ({ event_type: e.event_type, campaign_id: e.campaign_id ?? '' }),
  },
  aggregate: {
    events: count<AnalyticsEventV2>(),
    users: distinct((e: AnalyticsEventV2) => e.user_id),
    amount: sum((e: AnalyticsEventV2) => e.amount),
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
  source: { topic: 'events', schema: ANALYTICS_EVENT_V2_SCHEMA },
  validate: validateAnalyticsEventV2,
  eventTime: (e: AnalyticsEventV2) => e.event_time,
  dedup: { id: (e: AnalyticsEventV2) => e.event_id, ttlSeconds: 24 * 60 * 60, onUnavailable: 'pause' },
  raw: {
    table: 'events_raw',
    toRow: (e: AnalyticsEventV2, meta) => ({
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
  migrations: EVENT_COUNTS_MIGRATIONS,
  tables: [EVENT_COUNTS_PARTIAL, EVENT_COUNTS_1M, EVENT_COUNTS_1H, EVENTS],
});
