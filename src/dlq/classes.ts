import { ERROR_CODES, type ErrorCode } from '../errors';

/**
 * Whether redriving a dead letter of a class can ever succeed. A permanent
 * class means the record's own bytes are unreadable (no value, not wire
 * format, an unknown schema id, a broken Avro body): the same bytes fail the
 * same way however often they are redriven, so a redrive skips them unless
 * asked for. Every other class can pass after something outside the record
 * changes: a fixed validator or event-time function, a reader schema, a
 * widened column, an outage that ended, or simply a later append time.
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
  SINK_ROW_REFUSED: { permanent: false, passesAfter: 'a column that can hold the value' },
  SERVICE_UNAVAILABLE: { permanent: false, passesAfter: 'the outage' },
} as const satisfies Partial<Record<ErrorCode, { permanent: boolean; passesAfter?: string }>>;

export type DeadLetterClass = keyof typeof DEAD_LETTER_CLASSES;

/** True for a class whose records can never pass as they are; a class Sluice does not know is not (it may be worth a try). */
export function isPermanentClass(errorClass: string): boolean {
  return Object.hasOwn(DEAD_LETTER_CLASSES, errorClass) && DEAD_LETTER_CLASSES[errorClass as DeadLetterClass].permanent;
}

/** `permanent` or `transient`, as the CLI prints a class. */
export const classKind = (errorClass: string) => (isPermanentClass(errorClass) ? 'permanent' : 'transient');

/** One line per class: name, kind and meaning (from src/errors.ts), for --help and `dlq list`. */
export function describeDeadLetterClasses(indent = '  '): string[] {
  const width = Math.max(...Object.keys(DEAD_LETTER_CLASSES).map((c) => c.length));
  return (Object.keys(DEAD_LETTER_CLASSES) as DeadLetterClass[]).map((c) => {
    const entry: { permanent: boolean; passesAfter?: string } = DEAD_LETTER_CLASSES[c];
    const after = entry.passesAfter ? `; can pass after ${entry.passesAfter}` : '';
    return `${indent}${c.padEnd(width)}  ${classKind(c).padEnd(9)}  ${ERROR_CODES[c]}${after}`;
  });
}
