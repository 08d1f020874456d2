import type { TableDefinition } from '../../src/process';
import { SluiceError } from '../../src/errors';
import type { Migration, ServerFeatures } from '../../src/sink/clickhouse';

/** events_raw as first released (migration 0001; rebuilt by 0003). */
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

const DEDUP_WINDOW = 'ALTER TABLE {db}.events_raw MODIFY SETTING non_replicated_deduplication_window = 1000';

/** Money: whole cents, exact. Decimal(18, 2) exists on 18.16 and on current releases; sums widen to Decimal(38, 2). */
const MONEY = 'Decimal(18, 2)';

/**
 * A Float64 amount as the Decimal it stood for. CAST from Float64 truncates on
 * 18.16 (19.99 is stored as 19.989999…, and becomes 19.98), so the value is
 * rounded to cents and read back from its text, which is exact.
 */
const float64ToMoney = (column: string, nullable: boolean) =>
  `CAST(toString(round(${column}, 2)) AS ${nullable ? `Nullable(${MONEY})` : MONEY})`;

/**
 * events_raw as it is now: money as Decimal, and sorted by event time, so a
 * query over an hour reads about an hour of rows instead of the whole month
 * (the primary index skips the rest). The identity a re-insert replaces is
 * (event_time, event_id); event_time is part of the event, so the same event
 * always has the same key. Partitions stay monthly, as shadow replays and the
 * settling after an in-place replay work per partition.
 */
const eventsRawTable = (name: string) => `CREATE TABLE {db}.${name}
(
    event_id String COMMENT 'producer uuid; with event_time the row identity a replay replaces',
    event_type String,
    user_id String,
    campaign_id String COMMENT 'empty string = no campaign (no Nullable in keys on 18.16)',
    ad_id String COMMENT 'empty string = no ad',
    event_time DateTime COMMENT 'event time, UTC, second precision',
    event_time_ms UInt64 COMMENT 'event time in epoch milliseconds',
    amount Nullable(${MONEY}) COMMENT 'money, exact to the cent',
    property_keys Array(String) COMMENT 'properties map, keys; values at the same index in property_values',
    property_values Array(String),
    channel String,
    kafka_topic String,
    kafka_partition UInt16,
    kafka_offset UInt64,
    ingested_at DateTime,
    version UInt64 COMMENT 'ReplacingMergeTree keeps the row with the largest version per (event_time, event_id)'
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(event_time)
ORDER BY (event_time, event_id)`;

const EVENTS_RAW_COLUMNS = (amount: string) =>
  `event_id, event_type, user_id, campaign_id, ad_id, event_time, event_time_ms, ${amount}, property_keys, property_values, channel, kafka_topic, kafka_partition, kafka_offset, ingested_at, version`;

const partialTable = (name: string, amountType: string) => `CREATE TABLE IF NOT EXISTS {db}.${name}
(
    window_start DateTime COMMENT 'start of the 1-minute event-time window, UTC, inclusive',
    window_end DateTime COMMENT 'end of the window, exclusive',
    event_type String,
    campaign_id String COMMENT 'empty string = no campaign',
    source_partition UInt16 COMMENT 'Kafka partition of events whose partial this row is',
    events UInt64 COMMENT 'distinct events in this partial',
    amount ${amountType} COMMENT 'sum of amount (null counts as 0)',
    users Array(String) COMMENT 'distinct user ids in this partial',
    final UInt8 COMMENT '1 = the window closed; 0 = an early, speculative emission',
    version UInt64 COMMENT 'emission time in ms: the latest emission of a partial wins',
    emitted_at DateTime
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMMDD(window_start)
ORDER BY (window_start, window_end, event_type, campaign_id, source_partition)`;

const PARTIAL_COLUMNS = (amount: string) =>
  `window_start, window_end, event_type, campaign_id, source_partition, events, ${amount}, users, final, version, emitted_at`;

/**
 * A table rebuilt with a new definition, its rows converted on the way. 18.16
 * can neither convert Float64 to Decimal exactly in place nor change a sorting
 * key, so the rows are copied into a new table that then takes the old one's
 * name in one RENAME. Rows a running processor wrote to the old table between
 * the copy and the rename are copied once more after it: the copies have the
 * same identity, so nothing written meanwhile is lost, and a final merge of the
 * table folds them (the migration rewrites the table three times: copy, copy,
 * merge; it is meant to run once, before the new version's processors start). A copy left by an interrupted run is
 * dropped first; the migration is recorded only after its last statement.
 */
const rebuild =
  (table: string, create: (name: string) => string, columns: string, converted: string) =>
  (tables: ReadonlySet<string>): string[] => {
    const staged = `${table}__rebuilding`;
    const replaced = `${table}__replaced`;
    const afterRename = [
      `INSERT INTO {db}.${table} (${columns}) SELECT ${converted} FROM {db}.${replaced}`,
      `DROP TABLE {db}.${replaced}`,
      // Fold the second copy now: a query without FINAL must not count every row twice until background merges get to it.
      `OPTIMIZE TABLE {db}.${table} FINAL`,
    ];
    if (tables.has(replaced)) {
      // An earlier run stopped after the old table was renamed away. 18.16 renames one table at a time,
      // so the new one may not have taken the name yet; the second copy is safe to repeat (same identities).
      if (!tables.has(table)) return [`RENAME TABLE {db}.${staged} TO {db}.${table}`, ...afterRename];
      if (tables.has(staged))
        throw new SluiceError(
          'MIGRATION_INTERRUPTED',
          `a rebuild of ${table} stopped half-way and left ${table}, ${staged} and ${replaced}: keep the table with the rows (usually ${replaced}, the original), drop the others, rename it back to ${table}, and start again`,
        );
      return afterRename;
    }
    return [
      `DROP TABLE IF EXISTS {db}.${staged}`,
      create(staged),
      `INSERT INTO {db}.${staged} (${columns}) SELECT ${converted} FROM {db}.${table}`,
      `RENAME TABLE {db}.${table} TO {db}.${replaced}, {db}.${staged} TO {db}.${table}`,
      ...afterRename,
    ];
  };

/**
 * The stream's migrations. Databases that exist have these ids in their
 * `sluice_migrations` ledger already: ids never change, and the list is append
 * only. Migrations run before the table definitions, so the window partial
 * table is created by its migration in its first form before it is rebuilt.
 */
export const EVENTS_RAW_MIGRATIONS: readonly Migration[] = [
  { id: '0001_events_raw', statements: [EVENTS_RAW] },
  {
    // Lets insert_deduplication_token drop a retried block on a non-replicated table (Replicated* tables dedup by default).
    id: '0002_events_raw_insert_dedup_window',
    statements: [DEDUP_WINDOW],
    when: (f) => f.nonReplicatedDeduplicationWindow && f.insertDeduplicationToken,
  },
  {
    // Money as Float64 summed to 999.0000000000001; ordered by event_id, an hour's query read the whole month.
    id: '0003_events_raw_decimal_amount_time_order',
    statements: rebuild(
      'events_raw',
      eventsRawTable,
      EVENTS_RAW_COLUMNS('amount'),
      EVENTS_RAW_COLUMNS(float64ToMoney('amount', true)),
    ),
  },
  {
    // The rebuilt table has the engine's default settings: the dedup window again, where the server has it.
    id: '0004_events_raw_insert_dedup_window_after_rebuild',
    statements: [DEDUP_WINDOW],
    when: (f) => f.nonReplicatedDeduplicationWindow && f.insertDeduplicationToken,
  },
];

/**
 * The window tables' migrations (the raw-only stream, streams/events-raw, has
 * none of these tables); the event-counts stream runs both lists, raw first.
 * Append only, as above.
 */
export const WINDOW_MIGRATIONS: readonly Migration[] = [
  {
    id: '0005_event_counts_1m_partial_decimal_amount',
    statements: (tables) => [
      // The table in its first form, unless an interrupted run of this migration had already renamed it away.
      ...(tables.has('event_counts_1m_partial__replaced') ? [] : [partialTable('event_counts_1m_partial', 'Float64')]),
      ...rebuild(
        'event_counts_1m_partial',
        (name) => partialTable(name, MONEY),
        PARTIAL_COLUMNS('amount'),
        PARTIAL_COLUMNS(float64ToMoney('amount', false)),
      )(tables),
    ],
  },
  {
    // Views are created IF NOT EXISTS: drop the former ones (a summable distinct_users) so the table definitions create the new ones.
    id: '0006_analyst_views_mergeable_users',
    statements: ['DROP TABLE IF EXISTS {db}.event_counts_1m', 'DROP TABLE IF EXISTS {db}.event_counts_1h'],
  },
  {
    // On 18.16 the FINAL views read the whole partial table before any filter: dropped, so the table definitions
    // create them again in the form this server filters early (EVENT_COUNTS_1M); on current servers the same form again.
    id: '0007_window_views_filter_early',
    statements: ['DROP TABLE IF EXISTS {db}.event_counts_1m', 'DROP TABLE IF EXISTS {db}.event_counts_1h'],
  },
];

export const EVENT_COUNTS_MIGRATIONS: readonly Migration[] = [...EVENTS_RAW_MIGRATIONS, ...WINDOW_MIGRATIONS];

/**
 * The reference stream's window tables. Each Kafka partition closes its own
 * partial of a (minute, event type, campaign) window, so a partial row is keyed
 * by the window, the group and the source partition; a re-emitted partial
 * (after a crash, or a final after an early one) replaces the earlier row by
 * version. The analysts' views merge the partials: counts and sums add up,
 * distinct users are the distinct users of the union of the partials' sets.
 * The table is sorted and partitioned by window start, so a read that knows
 * its time range skips the other days' parts and the other granules.
 */
export const EVENT_COUNTS_PARTIAL = {
  name: 'event_counts_1m_partial',
  create: [partialTable('event_counts_1m_partial', MONEY)],
} satisfies TableDefinition;

/**
 * The analysts' views. A distinct count cannot be added up across windows (a
 * user active in two minutes would count twice), so the views offer the
 * distinct user ids themselves (`users`, an array), which merge at any grain
 * with uniqExactArray(users), and name their per-window counts after the
 * window they belong to.
 *
 * Each view has two forms with the same columns and the same rows; the server
 * decides which one a database gets (at `sink migrate`), so that a filter on
 * the view's time column reads about the range it asks for:
 *
 * - current servers (`viewFiltersReachFinal`): the latest version of each
 *   partial by `FINAL`, then merged. The server takes the filter through the
 *   GROUP BY to the table's sorting key. (The per-window count is computed
 *   outside the grouping: inside it, `users` would name the merged array, an
 *   aggregate within an aggregate.)
 * - older servers (18.16): there a view runs whole before any filter, and
 *   `enable_optimize_predicate_expression` pushes a filter into a subquery
 *   but never into a FINAL one. So the latest version of each partial is
 *   taken by grouping on its identity (the table's sorting key) with argMax,
 *   and merged in a second grouping; with the setting on, a filter on the
 *   window start (or the hour) goes down both groupings to the table. There
 *   is no outer `SELECT *, length(users)` (with one, 18.16 pushes a filter
 *   on a merged column, `events > 10`, into the WHERE of the grouping and
 *   fails), and the inner level's columns have names of their own
 *   (`partial_*`), so no name means two things between the levels. On a
 *   whole-table read this form is slower than FINAL (docs/analysts.md,
 *   "What a query reads").
 *
 * argMax keeps the row of the largest `version * 2 + final`: the largest
 * version, as FINAL does; of two emissions in the same millisecond (an early
 * one, then the window closing), the final one, which FINAL keeps as the row
 * inserted last.
 */
const LATEST_PARTIALS = `SELECT
        window_start,
        window_end,
        event_type,
        campaign_id,
        argMax(events, version * 2 + final) AS partial_events,
        argMax(users, version * 2 + final) AS partial_users,
        argMax(amount, version * 2 + final) AS partial_amount,
        argMax(final, version * 2 + final) AS partial_final
    FROM {db}.event_counts_1m_partial
    GROUP BY window_start, window_end, event_type, campaign_id, source_partition`;

export const EVENT_COUNTS_1M = {
  name: 'event_counts_1m',
  create: (features: ServerFeatures) => [
    features.viewFiltersReachFinal
      ? `CREATE VIEW IF NOT EXISTS {db}.event_counts_1m AS
SELECT *, length(users) AS distinct_users_in_window
FROM
(
    SELECT
        window_start,
        window_end,
        event_type,
        campaign_id,
        sum(events) AS events,
        groupUniqArrayArray(users) AS users,
        sum(amount) AS amount,
        min(final) AS final
    FROM {db}.event_counts_1m_partial FINAL
    GROUP BY window_start, window_end, event_type, campaign_id
)`
      : `CREATE VIEW IF NOT EXISTS {db}.event_counts_1m AS
SELECT
    window_start,
    window_end,
    event_type,
    campaign_id,
    sum(partial_events) AS events,
    groupUniqArrayArray(partial_users) AS users,
    sum(partial_amount) AS amount,
    min(partial_final) AS final,
    length(users) AS distinct_users_in_window
FROM
(
    ${LATEST_PARTIALS}
)
GROUP BY window_start, window_end, event_type, campaign_id`,
  ],
} satisfies TableDefinition;

export const EVENT_COUNTS_1H = {
  name: 'event_counts_1h',
  create: (features: ServerFeatures) => [
    features.viewFiltersReachFinal
      ? `CREATE VIEW IF NOT EXISTS {db}.event_counts_1h AS
SELECT *, length(users) AS distinct_users_in_hour
FROM
(
    SELECT
        toStartOfHour(window_start) AS hour,
        event_type,
        campaign_id,
        sum(events) AS events,
        groupUniqArrayArray(users) AS users,
        sum(amount) AS amount
    FROM {db}.event_counts_1m_partial FINAL
    GROUP BY hour, event_type, campaign_id
)`
      : `CREATE VIEW IF NOT EXISTS {db}.event_counts_1h AS
SELECT
    toStartOfHour(window_start) AS hour,
    event_type,
    campaign_id,
    sum(partial_events) AS events,
    groupUniqArrayArray(partial_users) AS users,
    sum(partial_amount) AS amount,
    length(users) AS distinct_users_in_hour
FROM
(
    ${LATEST_PARTIALS}
)
GROUP BY hour, event_type, campaign_id`,
  ],
} satisfies TableDefinition;

/**
 * events_raw with each event once, whether or not the background merge has
 * folded a re-inserted copy yet (an in-place replay rewrites every row of its
 * range). Analysts query this instead of remembering FINAL.
 */
export const EVENTS: TableDefinition = {
  name: 'events',
  create: [
    `CREATE VIEW IF NOT EXISTS {db}.events AS
SELECT ${EVENTS_RAW_COLUMNS('amount')}
FROM {db}.events_raw FINAL`,
  ],
};
