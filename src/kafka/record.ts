import type { RecordHeaders } from './api';

/**
 * A record as read from Kafka, with where it came from. The runtime processes
 * these, dead letters keep them untouched, readers of side topics return them.
 */
export interface ConsumedRecord {
  topic: string;
  partition: number;
  /** As the client gives it: a decimal string (offsets exceed 2^53 in principle). */
  offset: string;
  /** Kafka record timestamp, epoch ms as a string. */
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeaders;
}
