import { ServiceError } from '../../errors';
import { clickHouseErrorCode, clickHouseFailed, explainClickHouseError, type ClickHouseSettings } from './client';

export { clickHouseErrorCode } from './client';

/**
 * Server error codes that mean "try again later" (load, limits, network,
 * replication), as opposed to errors in the query or the data, which will
 * fail the same way every time. Numeric codes, because 18.16 sends no names.
 */
const TRANSIENT_CODES = new Set([
  3, // UNEXPECTED_END_OF_FILE (connection cut mid-request)
  32, // ATTEMPT_TO_READ_AFTER_EOF
  159, // TIMEOUT_EXCEEDED
  160, // TOO_SLOW
  202, // TOO_MANY_SIMULTANEOUS_QUERIES
  203, // NO_FREE_CONNECTION
  209, // SOCKET_TIMEOUT
  210, // NETWORK_ERROR
  236, // ABORTED
  241, // MEMORY_LIMIT_EXCEEDED
  242, // TABLE_IS_READ_ONLY (replica lost its keeper session)
  252, // TOO_MANY_PARTS
  285, // TOO_FEW_LIVE_REPLICAS
  319, // UNKNOWN_STATUS_OF_INSERT
  394, // QUERY_WAS_CANCELLED
  425, // SYSTEM_ERROR
  999, // KEEPER_EXCEPTION
]);

/** One table for every ClickHouse failure: what to tell the user, and whether retrying can help. */
export function classifyClickHouseError(settings: ClickHouseSettings, err: unknown): ServiceError {
  if (err instanceof ServiceError) return err;
  const code = clickHouseErrorCode(err);
  // The server refused these rows or this table: never an outage, whatever value or name its message quotes
  // (a refused 'ETIMEDOUT', a table session_timeouts), so the words that mark an outage are not looked for.
  if (code !== undefined && (DATA_CODES.has(code) || SCHEMA_CODES.has(code))) return clickHouseFailed(settings, err);
  const explained = explainClickHouseError(settings, err);
  if (explained.retriable) return explained;
  const transient = code !== undefined && TRANSIENT_CODES.has(code);
  const noCodeServerFailure =
    code === undefined && /\b50[234]\b|Service Unavailable|Bad Gateway/i.test((err as Error)?.message ?? '');
  if (transient || noCodeServerFailure)
    return new ServiceError('clickhouse', explained.message, { retriable: true, cause: err });
  return explained;
}

/** The sink's breaker is open: ClickHouse failed repeatedly. Retriable: the runtime pauses and tries later. */
export class SinkUnavailableError extends ServiceError {
  constructor(message: string, cause?: unknown) {
    super('clickhouse', message, { retriable: true, cause });
    this.name = 'SinkUnavailableError';
  }
}

/**
 * Server error codes that blame the data of an insert block (a value the
 * column cannot hold or parse), not the query, the table or the server: a
 * block refused with one of these is split to find the refused rows.
 */
const DATA_CODES = new Set([
  6, // CANNOT_PARSE_TEXT
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  53, // TYPE_MISMATCH
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA
  131, // TOO_LARGE_STRING_SIZE
  190, // SIZES_OF_ARRAYS_DOESNT_MATCH
  321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
  407, // DECIMAL_OVERFLOW
]);

export function isDataError(err: unknown): boolean {
  const code = clickHouseErrorCode((err as { cause?: unknown }).cause ?? err) ?? clickHouseErrorCode(err);
  return code !== undefined && DATA_CODES.has(code);
}

/** Server error codes that mean the table or one of its columns is not what the sink read before: its cached columns are stale. */
const SCHEMA_CODES = new Set([
  16, // NO_SUCH_COLUMN_IN_TABLE
  60, // UNKNOWN_TABLE
]);

export function isSchemaError(err: unknown): boolean {
  const code = clickHouseErrorCode((err as { cause?: unknown }).cause ?? err) ?? clickHouseErrorCode(err);
  if (code !== undefined && SCHEMA_CODES.has(code)) return true;
  // Servers that name the error without its number.
  return /UNKNOWN_TABLE|NO_SUCH_COLUMN/.test((err as Error)?.message ?? '');
}
