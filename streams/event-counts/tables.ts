import type { TableDefinition } from '../../src/process';
import type { Migration } from '../../src/sink/clickhouse';

const EVENTS_RAW = `CREATE TABLE IF NOT EXISTS {db}.events_raw
(
    event_id String COMMENT 'producer uuid; the row identity a replay replaces',
    event_type String,
    user_id String,
    campaign_id String COMMENT 'empty string = no campaign (no Nullable in keys on 18.16)',
    ad_id String COMMENT 'empty string = no ad',
    event_time DateTime COMMENT 'event time, UTC, second precision',
    event_time_ms UInt64 COMMENT 'event time in epoch milliseconds',
    amount Nullable(Float64),
    property_keys Array(String) COMMENT 'properties map, keys; values at the same index in property_values',
    property_values Array(String),
    channel String,
    kafka_topic String,
    kafka_partition UInt16,
    kafka_offset UInt64,
    ingested_at DateTime,
    version UInt64 COMMENT 'ReplacingMergeTree keeps the row with the largest version per event_id'
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(event_time)
ORDER BY event_id`;

/**
 * The stream's raw table: one row per distinct event. Migrations rather than
 * a table definition, because its dedup window is set only on servers that
 * support it (and then once), and because databases that exist have these
 * ids in their `sluice_migrations` ledger already: the ids must never change.
 * Append only.
 */
export const EVENTS_RAW_MIGRATIONS: readonly Migration[] = [
  { id: '0001_events_raw', statements: [EVENTS_RAW] },
  {
    // Lets insert_deduplication_token drop a retried block on a non-replicated table (Replicated* tables dedup by default).
    id: '0002_events_raw_insert_dedup_window',
    statements: ['ALTER TABLE {db}.events_raw MODIFY SETTING non_replicated_deduplication_window = 1000'],
    when: (f) => f.nonReplicatedDeduplicationWindow && f.insertDeduplicationToken,
  },
];

/**
 * The reference stream's window tables. Each Kafka partition closes its own
 * partial of a (minute, event type, campaign) window, so a partial row is keyed
 * by the window, the group and the source partition; a re-emitted partial
 * (after a crash, or a final after an early one) replaces the earlier row by
 * version. The analysts' views merge the partials: counts and sums add up,
 * distinct users are the distinct users of the union of the partials' sets.
 */
export const EVENT_COUNTS_PARTIAL: TableDefinition = {
  name: 'event_counts_1m_partial',
  create: [
    `CREATE TABLE IF NOT EXISTS {db}.event_counts_1m_partial
(
    window_start DateTime COMMENT 'start of the 1-minute event-time window, UTC, inclusive',
    window_end DateTime COMMENT 'end of the window, exclusive',
    event_type String,
    campaign_id String COMMENT 'empty string = no campaign',
    source_partition UInt16 COMMENT 'Kafka partition of events whose partial this row is',
    events UInt64 COMMENT 'distinct events in this partial',
    amount Float64 COMMENT 'sum of amount (null counts as 0)',
    users Array(String) COMMENT 'distinct user ids in this partial',
    final UInt8 COMMENT '1 = the window closed; 0 = an early, speculative emission',
    version UInt64 COMMENT 'emission time in ms: the latest emission of a partial wins',
    emitted_at DateTime
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMMDD(window_start)
ORDER BY (window_start, window_end, event_type, campaign_id, source_partition)`,
  ],
};

export const EVENT_COUNTS_1M: TableDefinition = {
  name: 'event_counts_1m',
  create: [
    `CREATE VIEW IF NOT EXISTS {db}.event_counts_1m AS
SELECT
    window_start,
    window_end,
    event_type,
    campaign_id,
    sum(events) AS events,
    uniqExactArray(users) AS distinct_users,
    sum(amount) AS amount,
    min(final) AS final
FROM {db}.event_counts_1m_partial FINAL
GROUP BY window_start, window_end, event_type, campaign_id`,
  ],
};

export const EVENT_COUNTS_1H: TableDefinition = {
  name: 'event_counts_1h',
  create: [
    `CREATE VIEW IF NOT EXISTS {db}.event_counts_1h AS
SELECT
    toStartOfHour(window_start) AS hour,
    event_type,
    campaign_id,
    sum(events) AS events,
    uniqExactArray(users) AS distinct_users,
    sum(amount) AS amount
FROM {db}.event_counts_1m_partial FINAL
GROUP BY hour, event_type, campaign_id`,
  ],
};
