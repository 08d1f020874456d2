/**
 * Every code a SluiceError can carry, with what it means. The set is closed:
 * a new kind of failure gets its code here first, so scripts, tests and the
 * dead-letter headers (a dead letter's error class is one of these codes)
 * never meet a code nobody documented.
 *
 * Naming: SUBJECT_CONDITION in upper snake case: the thing that failed, then
 * what is wrong with it (INVALID, MISSING, UNKNOWN, LOST, TIMEOUT, ...).
 */
export const ERROR_CODES = {
  // Settings and definitions, refused before any work starts.
  CONFIG_INVALID: 'a setting is missing or invalid',
  STREAM_NOT_FOUND: 'no stream of that name under streams/',
  STREAM_INVALID: 'a stream definition is malformed (name, default export)',
  WINDOW_DEFINITION_INVALID: 'a window definition (assigner, lateness, aggregations, grouping) is invalid',
  TOPIC_DECLARATION_INVALID: 'a topic declaration file is malformed',
  TOPIC_DRIFTED: 'a topic in the cluster differs from its declaration',
  DEDUP_OPTIONS_INVALID: 'a dedup TTL, namespace or epoch is out of range',
  PRODUCER_OPTIONS_INVALID: 'event producer limits are out of range',
  WORKLOAD_OPTIONS_INVALID: 'generator workload options are out of range',
  SQL_IDENTIFIER_INVALID: 'a database, table or column name is not a safe SQL identifier',
  MIGRATION_DUPLICATE: 'two ClickHouse migrations share an id',
  MIGRATION_INTERRUPTED: 'a ClickHouse migration stopped half-way in a state it cannot resume from',
  SCHEMA_INVALID: 'an Avro schema file cannot be parsed',

  // Outside services.
  SERVICE_UNAVAILABLE: 'Kafka, Redis, ClickHouse or the registry refused or is unreachable',
  SERVICE_ANSWER_INVALID: 'an outside service answered something Sluice cannot read',
  STACK_FAILED: 'a local service of the stack could not be installed, started or reached',
  REGISTRY_REJECTED: 'the schema registry refused a request (unknown subject, incompatible schema)',
  TOPIC_MISSING: 'a topic does not exist, or has no partitions',

  // One record: each is also the error class of the dead letter it causes.
  VALUE_MISSING: 'the record has no value (a tombstone)',
  VALUE_UNDECODABLE: 'the decoder failed on the value without naming why',
  WIRE_FORMAT_INVALID: 'the value is not in Confluent wire format (magic byte, schema id)',
  SCHEMA_UNKNOWN: 'the value names a schema id the registry does not know',
  AVRO_INVALID: 'the Avro body is truncated, malformed or has bytes left over',
  SCHEMA_INCOMPATIBLE: 'the writer schema cannot be read with the reader schema',
  EVENT_INVALID: "the decoded event fails its schema or the stream's validate()",
  EVENT_TIME_INVALID: 'an event time is not a finite epoch-millisecond number',
  EVENT_TIME_AHEAD: 'an event time is further ahead of its record timestamp than the stream allows',
  SINK_ROW_REFUSED: 'ClickHouse will never accept the row (a value its column cannot hold)',

  // Producing.
  VALUE_INVALID: 'a value does not match the schema it is being encoded with',
  ENCODER_OUTPUT_INVALID: 'an event encoder did not return Confluent wire format',
  PRODUCER_CLOSED: 'the event producer was used after it was closed',

  // The runtime and its state.
  LEASE_LOST: 'a lease held in Redis (the migration lease) was lost while its work ran',
  COMMIT_FENCED: 'a commit was refused: the group or the partition moved on to another member',
  STATE_AHEAD: "a partition's snapshot is past its committed offset",
  STATE_LOST: 'Redis restarted and may have lost the state of restored partitions',
  STATE_MISSING: "a partition's window state is gone and no older snapshot is left",
  WINDOW_STATE_INVALID: 'saved window state is malformed or from another window definition',
  SHUTDOWN_TIMEOUT: 'the runtime could not flush and commit within the shutdown timeout',

  // The hold a replay puts on a stream's ClickHouse writes.
  SINK_HELD: "a replay holds the stream's writes while it swaps tables in",
  SINK_LEASE_LOST: 'a write lost its lease on the hold',
  SINK_HOLD_LOST: "the replay's hold on the writes was lost",
  SINK_HOLD_TAKEN: 'another replay holds the writes',
  SINK_HOLD_TIMEOUT: 'live writes did not finish in time for the hold',

  // Replays.
  GROUP_ACTIVE: 'a consumer group still has live members',
  GROUP_PROTOCOL_MISMATCH:
    "a group's members speak different group protocols or assignors (kafka.client / kafka.groupProtocol differ)",
  SHADOW_TABLE_MISSING: 'a table to rebuild does not exist',
  SHADOW_KEY_MISSING: 'a table to rebuild has no sorting key to match rows by',
  SHADOW_PARTITION_INVALID: 'ClickHouse reported a partition id the swap cannot use',
  SHADOW_LIVE_CHANGED: 'rows reached a live table during its swap, despite the hold',
  SHADOW_SWAP_ABORTED: 'a swap stopped part way; the message lists what was swapped',

  // Tools.
  WORKLOAD_LOG_INVALID: 'a generator workload log is out of order or incomplete',
  RESULT_MISMATCH: "the pipeline's output differs from the generator's answer",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * One error root for everything a user can hit. `code` is stable (scripts and
 * tests match on it), `retriable` is the only thing retry logic reads, and the
 * message is one line that says what is wrong and what to do. Callers that
 * must tell failures apart check a subclass with `instanceof`, never the
 * message.
 *
 * A plain `Error` is left for two cases only: a broken invariant (a bug in
 * Sluice, worded `invariant: ...`), and a signal thrown inside a third-party
 * library's callback that the adapter owning the library catches and raises
 * again as a SluiceError.
 */
export class SluiceError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;

  constructor(code: ErrorCode, message: string, options: { retriable?: boolean; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'SluiceError';
    this.code = code;
    this.retriable = options.retriable ?? false;
  }
}

/** A setting is missing or invalid; raised at start-up, before any work. */
export class ConfigError extends SluiceError {
  constructor(message: string) {
    super('CONFIG_INVALID', message);
    this.name = 'ConfigError';
  }
}

/** A local service of the stack could not be installed, started or reached. */
export class StackError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('STACK_FAILED', message, { cause });
    this.name = 'StackError';
  }
}

/** An outside service (Kafka, Redis, ClickHouse, registry) refused or is unreachable. */
export class ServiceError extends SluiceError {
  readonly service: string;
  constructor(service: string, message: string, options: { retriable?: boolean; cause?: unknown } = {}) {
    super('SERVICE_UNAVAILABLE', message, options);
    this.name = 'ServiceError';
    this.service = service;
  }
}

export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n')[0] ?? String(err);
  return String(err);
}
