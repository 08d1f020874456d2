import type { ConsumedRecord } from '../kafka';

/** The consumed record a side-topic entry refers to. */
export type SourceRecord = ConsumedRecord;

/** A record that goes to `<topic>.dlq`, or through a retry topic first. */
export interface DeadLetterEntry {
  source: SourceRecord;
  /** A stable name for the kind of failure (e.g. DecodeError, ValidationError), used to filter redrives. */
  errorClass: string;
  message: string;
  /** Attempts made so far, this one included (1 = failed once). */
  attempt: number;
  /** Headers that describe what the dead letter is, when it is not a source record (a refused window partial). */
  headers?: Record<string, string>;
}

/** An event that arrived after its window closed; goes to `<topic>.late`. */
export interface LateEntry {
  source: SourceRecord;
  windowStart: number;
  windowEnd: number;
  watermark: number;
  eventTime: number;
  /** Defaults to `after-allowed-lateness`. */
  reason?: string;
}
