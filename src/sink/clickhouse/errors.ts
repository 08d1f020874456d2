import { ServiceError, SluiceError } from '../../errors';
import { explainClickHouseError, type ClickHouseSettings } from './client';

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

export function clickHouseErrorCode(err: unknown): number | undefined {
  const own = (err as { code?: unknown })?.code;
  if (typeof own === 'string' && /^\d+$/.test(own)) return Number(own);
  const match = /Code: (\d+)/.exec((err as Error)?.message ?? '');
  return match ? Number(match[1]) : undefined;
}

/** One table for every ClickHouse failure: what to tell the user, and whether retrying can help. */
export function classifyClickHouseError(settings: ClickHouseSettings, err: unknown): ServiceError {
  if (err instanceof ServiceError) return err;
  const explained = explainClickHouseError(settings, err);
  if (explained.retriable) return explained;
  const code = clickHouseErrorCode(err);
  const transient = code !== undefined && TRANSIENT_CODES.has(code);
  const noCodeServerFailure = code === undefined && /\b50[234]\b|Service Unavailable|Bad Gateway/i.test((err as Error)?.message ?? '');
  if (transient || noCodeServerFailure) return new ServiceError('clickhouse', explained.message, { retriable: true, cause: err });
  return explained;
}

/** The sink's breaker is open: ClickHouse failed repeatedly. Retriable: the runtime pauses and tries later. */
export class SinkUnavailableError extends ServiceError {
  constructor(message: string, cause?: unknown) {
    super('clickhouse', message, { retriable: true, cause });
    this.name = 'SinkUnavailableError';
  }
}

/** Rows that can never be inserted (wrong type, unknown column): the runtime dead-letters them; retrying cannot help. */
export class RowsRejectedError extends SluiceError {
  constructor(
    readonly table: string,
    readonly rejections: { index: number; problems: string[] }[],
  ) {
    const first = rejections[0];
    super(
      'SINK_ROW_INVALID',
      `${rejections.length} row(s) cannot be inserted into ${table}${first ? ` (row ${first.index}: ${first.problems.join('; ')})` : ''}: send them to the dead-letter topic or fix the mapping`,
    );
    this.name = 'RowsRejectedError';
  }
}
