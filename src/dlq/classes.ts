import { ERROR_CODES, type ErrorCode } from '../errors';

/**
 * Whether redriving a dead letter of a class can ever succeed. A permanent
 * class means the record's own bytes are unreadable (no value, not wire
 * format, an unknown schema id, a broken Avro body): the same bytes fail the
 * same way however often they are redriven, so a redrive skips them unless
 * asked for. A transient class can pass after something outside the record
 * changes: a fixed validator or event-time function, a reader schema, an
 * outage that ended, or simply a later append time.
 *
 * A refused row (SINK_ROW_REFUSED) is neither: its record got through dedup
 * and windows and only the sink refused what it made, so its event id is
 * claimed (for the dedup TTL, 24 h) and, for a raw row, the event is already
 * counted in its window. A redriven copy would be dropped as a duplicate within
 * the TTL and counted a second time after it, so a redrive never sends one,
 * not even with --include-permanent: once the column can hold the value,
 * `sluice replay` of the event times recomputes the range under a fresh dedup
 * namespace and rewrites its raw rows and windows once.
 */
export const DEAD_LETTER_CLASSES = {
  VALUE_MISSING: { permanent: true },
  VALUE_UNDECODABLE: { permanent: true },
  WIRE_FORMAT_INVALID: { permanent: true },
  // Permanent for the registry as it is; a schema registered after the fact (restored from elsewhere) makes these
  // readable, which is what --include-permanent is for.
  SCHEMA_UNKNOWN: { permanent: true, passesAfter: 'the registry learns the id (redrive with --include-permanent)' },
  AVRO_INVALID: { permanent: true },
  SCHEMA_INCOMPATIBLE: { permanent: false, passesAfter: 'a reader schema that can read the writer' },
  EVENT_INVALID: { permanent: false, passesAfter: 'a fix to validate()' },
  EVENT_TIME_INVALID: { permanent: false, passesAfter: 'a fix to eventTime()' },
  EVENT_TIME_AHEAD: { permanent: false, passesAfter: 'time: the copy gets a later record timestamp' },
  SINK_ROW_REFUSED: {
    permanent: false,
    replayOnly: true,
    remedy:
      'never redriven (its event was claimed and counted when the row was refused: a copy would be a duplicate); widen the column, then `sluice replay` its event times',
  },
  SERVICE_UNAVAILABLE: { permanent: false, passesAfter: 'the outage' },
} as const satisfies Partial<Record<ErrorCode, ClassEntry>>;

interface ClassEntry {
  permanent: boolean;
  /** Can pass after this changes (redrive then). */
  passesAfter?: string;
  /** Never redriven: the remedy is a replay of the range, which `remedy` says. */
  replayOnly?: boolean;
  remedy?: string;
}

export type DeadLetterClass = keyof typeof DEAD_LETTER_CLASSES;

/** True for a class whose records can never pass as they are; a class Sluice does not know is not (it may be worth a try). */
export function isPermanentClass(errorClass: string): boolean {
  return Object.hasOwn(DEAD_LETTER_CLASSES, errorClass) && DEAD_LETTER_CLASSES[errorClass as DeadLetterClass].permanent;
}

/** True for a class a redrive never sends, whatever it is asked: the records' remedy is `sluice replay` (SINK_ROW_REFUSED). */
export function isReplayOnlyClass(errorClass: string): boolean {
  if (!Object.hasOwn(DEAD_LETTER_CLASSES, errorClass)) return false;
  const entry: ClassEntry = DEAD_LETTER_CLASSES[errorClass as DeadLetterClass];
  return entry.replayOnly === true;
}

/** `permanent`, `transient` or `replay` (never redriven: replay the range), as the CLI prints a class. */
export const classKind = (errorClass: string) =>
  isPermanentClass(errorClass) ? 'permanent' : isReplayOnlyClass(errorClass) ? 'replay' : 'transient';

/** One line per class: name, kind and meaning (from src/errors.ts), for --help and `dlq list`. */
export function describeDeadLetterClasses(indent = '  '): string[] {
  const width = Math.max(...Object.keys(DEAD_LETTER_CLASSES).map((c) => c.length));
  return (Object.keys(DEAD_LETTER_CLASSES) as DeadLetterClass[]).map((c) => {
    const entry: ClassEntry = DEAD_LETTER_CLASSES[c];
    const after = entry.passesAfter ? `; can pass after ${entry.passesAfter}` : entry.remedy ? `; ${entry.remedy}` : '';
    return `${indent}${c.padEnd(width)}  ${classKind(c).padEnd(9)}  ${ERROR_CODES[c]}${after}`;
  });
}
