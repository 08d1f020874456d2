import type { SideRecord } from '../kafka/group';
import type { DeadLetter, LateEvent } from '../dlq';
import type { ConsumedRecord } from '../kafka';
import type { Row } from './definition';

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
   * `recheckUnknown`: ask the registry now about a schema id it did not know a moment ago. A
   * SCHEMA_UNKNOWN error may carry `askedAt`: when the registry was asked, on the clock of TaskPorts.elapsed.
   */
  decode(
    value: Buffer,
    options?: { recheckUnknown?: boolean },
  ): Record<string, unknown> | Promise<Record<string, unknown>>;
  /**
   * The registry id of the schema the value was written with, if its header names one: the live verdict
   * "schema unknown" is kept per id, so that a re-read repeats it (see UnknownSchema).
   */
  schemaOf?(value: Buffer): number | undefined;
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

/** A window's partial result, as a row's origin: which partition's windows emitted it. */
export class WindowRowOrigin {
  /**
   * Emitted while records before the committed offset were processed again (a restore from an older
   * snapshot): this emission happened before, and what it caused (a dead letter) was published then.
   */
  republished = false;

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly windowStart: number,
    readonly windowEnd: number,
    /** The group's key fields. */
    readonly fields: Record<string, unknown>,
  ) {}
}

/** What a row was made from: the record it stands for (raw rows), or a window partial. */
export type RowOrigin = ConsumedRecord | WindowRowOrigin;

/** A row the sink will never accept (a value its column cannot hold), by its index in the batch. */
export interface RowRefusal {
  index: number;
  problems: string[];
}

/** The sink side of a checkpoint: rows per table. */
export interface RowSink {
  /**
   * Resolves once ClickHouse acknowledged every row it can ever take, with the rows it refused
   * (never written; the checkpoint dead-letters them); rejects with a retriable error while it cannot.
   */
  write(
    table: string,
    rows: Row[],
    position: { topic: string; partition: number; fromOffset: string; toOffset: string }[],
  ): Promise<RowRefusal[]>;
}

/**
 * How dead letters and late events become side-topic records (`<topic>.dlq`, `<topic>.late`, with
 * their headers). The runtime writes them, with the offsets they cover, in one Kafka transaction per
 * input partition.
 */
export interface SideOutputs {
  records(deadLetters: DeadLetter[], late: LateEvent[]): SideRecord[];
}
