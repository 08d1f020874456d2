import type { RecordMeta, Row } from './definition';

/**
 * What the stream task needs from the outside, as small interfaces, so the
 * same task runs on Kafka (the runner) and on in-memory lists (the test
 * driver). Implementations live in their own stages: src/schema, src/dedup,
 * src/window, src/sink/clickhouse, src/dlq, src/state.
 */

export interface Decoder {
  /**
   * Throws a non-retriable SluiceError for bytes that can never decode, a retriable one when the registry is down.
   * Returns the value itself when it needs no round trip (its schema is known): no await per record.
   */
  decode(value: Buffer): Record<string, unknown> | Promise<Record<string, unknown>>;
}

export interface DedupClaim {
  id: string;
  topic: string;
  partition: number;
  offset: string;
}

export interface Deduplicator {
  /** true = process it, false = a duplicate of a record that claimed the id first. One round trip per call. */
  claim(records: DedupClaim[]): Promise<boolean[]>;
}

/** A record that goes to `<topic>.dlq` with its original bytes and the reason. */
export interface DeadLetter {
  source: RecordMeta;
  errorClass: string;
  message: string;
  attempt: number;
}

/** An event that arrived after its window closed; goes to `<topic>.late`. */
export interface LateEvent {
  source: RecordMeta;
  windowStart: number;
  windowEnd: number;
  watermark: number;
  eventTime: number;
}

/** The sink side of a checkpoint: rows per table. */
export interface RowSink {
  /** Resolves once ClickHouse acknowledged every row; rejects with a retriable error while it cannot. */
  write(table: string, rows: Row[], position: { topic: string; partition: number; fromOffset: string; toOffset: string }[]): Promise<void>;
}

export interface SidePublisher {
  deadLetters(entries: DeadLetter[]): Promise<void>;
  late(entries: LateEvent[]): Promise<void>;
}
