import type { AggregateResults, AggregationSpec, GroupFields, WindowDefinition, WindowResult } from '../window';
import type { ConsumedRecord } from '../kafka';
import { SluiceError } from '../errors';
import { assertIdentifier, type Migration, type TableDefinition } from '../sink/clickhouse/migrations';

/** Outcome of validating one decoded record: the typed event, or every reason it is invalid. */
export type Validation<E> = { ok: true; event: E } | { ok: false; errors: string[] };

export type Row = Record<string, unknown>;

/**
 * A windowed aggregation of the stream. The window engine (src/window) does
 * the event-time work; the definition says what to group by, what to compute
 * and how a closed window becomes a ClickHouse row.
 */
export interface WindowOutput<
  E,
  K extends GroupFields = GroupFields,
  A extends AggregationSpec<E> = AggregationSpec<E>,
> {
  /** Assigner, group key, aggregations and allowed lateness, built with `defineWindows`. */
  definition: WindowDefinition<E, K, A>;
  /** Max event-time disorder expected within a partition; the watermark trails the max event time by this. */
  outOfOrdernessMs: number;
  /** A partition with no records for this long stops holding the stream watermark back. */
  idleTimeoutMs: number;
  /**
   * An event whose time is further than this ahead of its Kafka record
   * timestamp goes to `.dlq` (EVENT_TIME_AHEAD) instead of the windows: one
   * such event would move its partition's watermark into the future for
   * good and make every later event of the partition late. Judged against
   * the record timestamp, not the wall clock, so a replay decides the same.
   * Unset: no limit.
   */
  maxEventTimeAheadMs?: number;
  table: string;
  /** One partition's partial result of one (window, group) as a row; ClickHouse merges the partitions' partials. */
  toRow(
    result: WindowResult<K, AggregateResults<A>>,
    meta: { partition: number; version: number; emittedAt: number },
  ): Row;
}

export interface StreamDefinition<
  E,
  K extends GroupFields = GroupFields,
  A extends AggregationSpec<E> = AggregationSpec<E>,
> {
  /** Names the consumer group (`sluice.<name>`), the dedup namespace and the state keys. */
  name: string;
  source: {
    topic: string;
    /** Avro schema file in avro/ (without .avsc) used as the reader schema. */
    schema: string;
  };
  validate(value: Record<string, unknown>): Validation<E>;
  eventTime(event: E): number;
  dedup?: {
    id(event: E): string;
    ttlSeconds: number;
    /** `pause` (default) stops consuming while Redis is down; `fail-open` lets events through and counts them. */
    onUnavailable: 'pause' | 'fail-open';
  };
  raw?: { table: string; toRow(event: E, meta: ConsumedRecord): Row };
  windowed?: WindowOutput<E, K, A>;
  tables: TableDefinition[];
  /**
   * Schema changes run once per database (recorded in `sluice_migrations`),
   * before `tables`: what a CREATE ... IF NOT EXISTS cannot say, such as a
   * setting only some server versions take.
   */
  migrations?: readonly Migration[];
}

/**
 * What `migrate` must create for these streams. A migration two streams share
 * (one definition spread into another) runs once; two different migrations
 * under one id are left for `migrate` to refuse.
 */
export function clickHouseSchemaOf(definitions: readonly Pick<StreamDefinition<never>, 'tables' | 'migrations'>[]): {
  tables: TableDefinition[];
  migrations: Migration[];
} {
  return {
    tables: definitions.flatMap((d) => d.tables),
    migrations: [...new Set(definitions.flatMap((d) => d.migrations ?? []))],
  };
}

/**
 * The shortest idle timeout a running stream accepts. A partition being read can go a few hundred ms
 * between batches (fetch waits, a checkpoint's inserts, a window closing), and one shorter idle timeout
 * took such a partition for idle and released it at another's watermark, turning its on-time events late
 * without any fault.
 */
export const MIN_IDLE_TIMEOUT_MS = 1000;

/** Refuses a windowed stream whose idle timeout is shorter than MIN_IDLE_TIMEOUT_MS, naming the setting. */
export function assertIdleTimeout(definition: Pick<StreamDefinition<never>, 'name' | 'windowed'>): void {
  const idle = definition.windowed?.idleTimeoutMs;
  if (idle !== undefined && !(idle >= MIN_IDLE_TIMEOUT_MS))
    throw new SluiceError(
      'STREAM_INVALID',
      `stream '${definition.name}': windowed.idleTimeoutMs is ${idle} ms; it must be at least ${MIN_IDLE_TIMEOUT_MS} ms, or partitions being read are taken for idle`,
    );
}

export function defineStream<E, K extends GroupFields = GroupFields, A extends AggregationSpec<E> = AggregationSpec<E>>(
  definition: StreamDefinition<E, K, A>,
): StreamDefinition<E, K, A> {
  if (typeof definition.name !== 'string' || !/^[a-z][a-z0-9-]{0,62}$/.test(definition.name)) {
    throw new SluiceError(
      'STREAM_INVALID',
      `stream name '${String(definition.name)}' must be lowercase letters, digits and -`,
    );
  }
  // Every table name a stream writes reaches SQL (sink, migrations, replays): refused here, before any statement is built.
  for (const table of [
    definition.raw?.table,
    definition.windowed?.table,
    ...(definition.tables ?? []).map((t) => t.name),
  ]) {
    if (table !== undefined) assertIdentifier('table', table);
  }
  assertIdleTimeout(definition);
  return definition;
}
