import type { IHeaders } from 'kafkajs';

/** Where a record came from; every output row and dead letter can name it. */
export interface RecordMeta {
  topic: string;
  partition: number;
  offset: string;
  /** Kafka record timestamp, epoch ms as a string (as the client gives it). */
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: IHeaders;
}

/** Outcome of validating one decoded record: the typed event, or every reason it is invalid. */
export type Validation<E> = { ok: true; event: E } | { ok: false; errors: string[] };

export type Row = Record<string, unknown>;

/** A ClickHouse table the stream writes, with the statements that create it (idempotent, run by `sink migrate`). */
export interface TableDefinition {
  name: string;
  /** `CREATE ... IF NOT EXISTS` statements; `{db}` is replaced by the database name. */
  create: string[];
}

/**
 * A windowed aggregation of the stream. The window engine (src/window) does
 * the event-time work; the definition says what to group by, what to compute
 * and how a closed window becomes a ClickHouse row.
 */
export interface WindowOutput<E, W = unknown, C = unknown> {
  name: string;
  /** The window engine's configuration (assigner, aggregations, lateness), built with src/window. */
  windows: W;
  /** Max event-time disorder expected within a partition; the watermark trails the max event time by this. */
  outOfOrdernessMs: number;
  /** A partition with no records for this long stops holding the stream watermark back. */
  idleTimeoutMs: number;
  table: string;
  toRow(closed: C, meta: { version: number; emittedAt: number }): Row;
  /** Unused at runtime; ties E into the type so definitions are checked against the event. */
  readonly _event?: E;
}

export interface StreamDefinition<E> {
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
  raw?: { table: string; toRow(event: E, meta: RecordMeta): Row };
  windowed?: WindowOutput<E>;
  tables: TableDefinition[];
}

export function defineStream<E>(definition: StreamDefinition<E>): StreamDefinition<E> {
  if (!/^[a-z][a-z0-9-]{0,62}$/.test(definition.name)) {
    throw new Error(`stream name '${definition.name}' must be lowercase letters, digits and -`);
  }
  return definition;
}
