import type { RecordHeaders } from '../kafka';
import type { ErrorCode } from '../errors';

/** Header names Sluice adds to side-topic records. Values are always UTF-8 strings. */
export const DLQ_HEADERS = {
  sourceTopic: 'sluice.dlq.source.topic',
  sourcePartition: 'sluice.dlq.source.partition',
  sourceOffset: 'sluice.dlq.source.offset',
  sourceTimestamp: 'sluice.dlq.source.timestamp',
  stream: 'sluice.dlq.stream',
  errorClass: 'sluice.dlq.error.class',
  errorMessage: 'sluice.dlq.error.message',
  attempt: 'sluice.dlq.attempt',
  failedAt: 'sluice.dlq.failed.at',
  /** Set when the record was too large for the side topic even compressed: its value's size, the value left out. */
  valueOmitted: 'sluice.dlq.value.omitted',
} as const;

export const RETRY_HEADERS = {
  notBefore: 'sluice.retry.not-before',
  attempt: 'sluice.retry.attempt',
  /** Where the record first came from, so its dead letter names the original record, not a retry topic. */
  originTopic: 'sluice.retry.origin.topic',
  originPartition: 'sluice.retry.origin.partition',
  originOffset: 'sluice.retry.origin.offset',
  originTimestamp: 'sluice.retry.origin.timestamp',
  errorClass: 'sluice.retry.error.class',
  errorMessage: 'sluice.retry.error.message',
} as const;

export const LATE_HEADERS = {
  windowStart: 'sluice.late.window.start',
  windowEnd: 'sluice.late.window.end',
  watermark: 'sluice.late.watermark',
  eventTime: 'sluice.late.event.time',
  reason: 'sluice.late.reason',
  sourceTopic: 'sluice.late.source.topic',
  sourcePartition: 'sluice.late.source.partition',
  sourceOffset: 'sluice.late.source.offset',
} as const;

export const REDRIVE_HEADERS = {
  fromTopic: 'sluice.redrive.from.topic',
  fromPartition: 'sluice.redrive.from.partition',
  fromOffset: 'sluice.redrive.from.offset',
  at: 'sluice.redrive.at',
  /** The attempts the record had made when it was redriven (its dead letter's `sluice.dlq.attempt`): a dead letter of the copy counts on from there. */
  attempt: 'sluice.redrive.attempt',
} as const;

/**
 * Attempts a record made before this one: none for an ordinary record; for a
 * redriven copy, those its dead letter recorded. A copy redriven by a Sluice
 * that did not yet write `sluice.redrive.attempt` had failed at least once.
 */
export function attemptsBefore(headers: RecordHeaders | undefined): number {
  const carried = Number(headerString(headers, REDRIVE_HEADERS.attempt));
  if (Number.isSafeInteger(carried) && carried > 0) return carried;
  return headerString(headers, REDRIVE_HEADERS.fromTopic) === undefined ? 0 : 1;
}

/** A dead letter's `sluice.dlq.attempt` (1 when missing or unreadable: it failed at least once). */
export function deadLetterAttempt(headers: RecordHeaders | undefined): number {
  const attempt = Number(headerString(headers, DLQ_HEADERS.attempt));
  return Number.isSafeInteger(attempt) && attempt > 0 ? attempt : 1;
}

/**
 * Error classes of dead letters written before classes were error codes. They
 * are read as the code they became, so `dlq list` counts both spellings as one
 * class and a redrive filtered by either name takes both.
 */
const LEGACY_ERROR_CLASSES: Readonly<Record<string, ErrorCode>> = {
  TombstoneRecord: 'VALUE_MISSING',
  DecodeError: 'VALUE_UNDECODABLE',
  ValidationError: 'EVENT_INVALID',
  EventTimeAhead: 'EVENT_TIME_AHEAD',
  SinkRowRefused: 'SINK_ROW_REFUSED',
};

/** An error class, as a header or a filter names it, under its current name. */
export function currentErrorClass(name: string): string {
  return Object.hasOwn(LEGACY_ERROR_CLASSES, name) ? LEGACY_ERROR_CLASSES[name]! : name;
}

/** A dead letter's error class under its current name, `unknown` when the header is missing. */
export function errorClassOf(headers: RecordHeaders | undefined): string {
  return currentErrorClass(headerString(headers, DLQ_HEADERS.errorClass) ?? 'unknown');
}

/** A header's value as a string (first value if repeated), or undefined. */
export function headerString(headers: RecordHeaders | undefined, name: string): string | undefined {
  const raw = headers?.[name];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (value === undefined) return undefined;
  return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
}

/** The headers without Sluice's own ones of a namespace (e.g. `sluice.dlq.`), for re-producing an original record. */
export function withoutHeaders(headers: RecordHeaders | undefined, prefix: string): RecordHeaders {
  const kept: RecordHeaders = {};
  for (const [name, value] of Object.entries(headers ?? {})) if (!name.startsWith(prefix)) kept[name] = value;
  return kept;
}

/** Header values are one line and bounded: a stack trace or a huge message must not bloat every dead letter. */
export function headerText(text: string, max = 1000): string {
  const line = text.replace(/\s*\n\s*/g, ' | ');
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
