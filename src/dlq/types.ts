import type { IHeaders } from 'kafkajs';

/** The consumed record a side-topic entry refers to; same shape as the runtime's RecordMeta. */
export interface SourceRecord {
  topic: string;
  partition: number;
  offset: string;
  /** Kafka record timestamp, epoch ms as a string. */
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: IHeaders;
}

/** A record that goes to `<topic>.dlq`, or through a retry topic first. */
export interface DeadLetterEntry {
  source: SourceRecord;
  /** A stable name for the kind of failure (e.g. DecodeError, ValidationError), used to filter redrives. */
  errorClass: string;
  message: string;
  /** Attempts made so far, this one included (1 = failed once). */
  attempt: number;
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
