import type { Row } from './definition';

/** Where an event would have gone, had its window still been open. */
export interface LateVerdict {
  windowStart: number;
  windowEnd: number;
  watermark: number;
  eventTime: number;
}

/**
 * The stream task's view of event-time windows across its partitions: each
 * partition keeps its own windows and watermark, the stream watermark is the
 * minimum over them (idle ones excepted), and closed windows come out as rows.
 */
export interface StreamWindows<E> {
  table: string;
  assign(partition: number, snapshot: { watermark: unknown; windows: unknown } | undefined, now: number): void;
  revoke(partition: number): void;
  /** Adds the event to its partition's windows, or says why it is late. */
  add(partition: number, event: E, eventTime: number, now: number): LateVerdict | undefined;
  /** Rows of every window the stream watermark has passed, per partition. */
  close(now: number): { partition: number; rows: Row[] }[];
  /** Rows of every open window (end of a bounded run). */
  closeAll(now: number): { partition: number; rows: Row[] }[];
  snapshot(partition: number): { watermark: unknown; windows: unknown };
  openWindows(): number;
  watermark(now: number): number;
}
