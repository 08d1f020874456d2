/**
 * The reference workload (docs/design.md §4): a seeded generator of the reference
 * stream's events (streams/event-counts) with duplicates, disorder, late and
 * poison records; its log; and the expected results computed from that log
 * alone. Its poison breaks the rules of the stream's own validator.
 */
export {
  generateWorkload,
  resolveWorkloadOptions,
  plannedKindCounts,
  WorkloadOptionsError,
  RECORD_KINDS,
  UNDECODABLE_REASONS,
  INVALID_REASONS,
  UNKNOWN_SCHEMA_ID,
  DEFAULT_EVENT_TYPES,
  DEFAULT_START_TIME,
  LATE_AFTER_FRACTION,
  DUPLICATE_LOOKBACK,
  CHANNELS,
  type RecordKind,
  type PoisonReason,
  type EventTypeSpec,
  type WorkloadOptions,
  type ResolvedWorkloadOptions,
  type WorkloadRecord,
  type EncodeEvent,
} from './workload';
export { createEventEncoder } from './encode';
export { toLogEntry, formatLogLine, parseLogLine, readLogFile, LogWriter, type WorkloadLogEntry } from './log';
export { WorkloadTally, type WorkloadSummary } from './summary';
export {
  ExpectedAnswerBuilder,
  computeExpected,
  computeExpectedFromLog,
  ONE_MINUTE_MS,
  type ExpectedAnswer,
  type ExpectedWindowRow,
  type ExpectedDeadLetter,
} from './expected';
export { produceWorkload, type ProduceWorkloadOptions, type ProduceResult } from './produce';
export { SeededRandom } from './random';
export { readWindowRows } from './results';
export { checkRun, type CheckedFigure, type OutputScope, type RunCheck, type RunOutputs } from './check';
