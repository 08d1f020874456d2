import type { ClickHouseClient } from '@clickhouse/client';
import { redactedUrl } from '../../config';
import { ServiceError } from '../../errors';
import { CircuitBreaker, type BreakerState } from './breaker';
import { createClickHouse, type ClickHouseSettings } from './client';
import {
  classifyClickHouseError,
  clickHouseErrorCode,
  isDataError,
  isSchemaError,
  SinkUnavailableError,
} from './errors';
import { detectServerFeatures, type ServerFeatures } from './features';
import { insertAttempt, SinkLeaseLostError } from '../hold';
import { assertIdentifier } from './migrations';
import { encodeRows, fetchColumns, rowProblems, type TableColumns } from './rows';
import { insertDedupToken, type Row, type SinkPosition } from './token';
import { sleep } from '../../clock';

export type { Row, SinkPosition } from './token';

export interface RowRejection {
  index: number;
  row: Row;
  problems: string[];
}

export interface AddResult {
  accepted: number;
  /** Rows that can never be inserted; not buffered. The runtime dead-letters them. */
  rejected: RowRejection[];
}

export interface ClickHouseSinkOptions {
  settings: ClickHouseSettings;
  database: string;
  /** Column types per table, if known up front; otherwise read from the server (system.columns) once per table. */
  columns?: Record<string, Record<string, string>>;
  /** Defaults to a client built from `settings`; an injected client is not closed by `close()`. */
  client?: ClickHouseClient;
  /** Detected from the server at the first flush when not given. */
  features?: ServerFeatures;
  /** A table's buffer is flushed in the background once it holds this many rows... */
  maxRows?: number;
  /** ...or this long after its first buffered row. */
  maxDelayMs?: number;
  /** `add` refuses (retriably) beyond this many buffered rows in total: memory stays bounded. */
  maxBufferedRows?: number;
  retry?: { retries?: number; baseMs?: number; capMs?: number };
  /** One insert attempt is aborted (and retried) after this long; it must stay well under a hold lease (src/sink/hold.ts). Default 30 s. */
  attemptTimeoutMs?: number;
  breaker?: { failureThreshold?: number; resetTimeoutMs?: number };
  /**
   * Columns whose value may differ when the same Kafka records are written
   * again (ingest time, version); left out of the dedup token's content hash.
   */
  volatileColumns?: string[];
  /** Failures of background (size/time) flushes; the rows stay buffered for the next flush. */
  onBackgroundError?: (err: unknown) => void;
  random?: () => number;
}

export interface SinkStats {
  rowsWritten: number;
  inserts: number;
  retries: number;
  failures: number;
  breaker: BreakerState;
}

interface TableBuffer {
  rows: Row[];
  positions: SinkPosition[];
  timer?: NodeJS.Timeout;
}

/**
 * Buffers rows per table and inserts them with JSONEachRow.
 *
 * The stream runtime decides when a flush must happen (before it commits
 * offsets); `flush()` resolves only once ClickHouse acknowledged every row
 * buffered when it was called. Size and time triggers flush in the background
 * for callers that do not flush themselves.
 *
 * Failures: retriable ones are retried with exponential backoff and full
 * jitter; consecutive failures open a circuit breaker, and while it is open
 * `flush()` rejects at once with a retriable SinkUnavailableError so the
 * runtime pauses consumption instead of waiting on a dead server. Rows that
 * can never be inserted are rejected row by row at `add()`, never mixed up
 * with service failures.
 */
export class ClickHouseSink {
  private readonly client: ClickHouseClient;
  private readonly ownsClient: boolean;
  private readonly buffers = new Map<string, TableBuffer>();
  private readonly columns = new Map<string, Promise<TableColumns>>();
  private features?: Promise<ServerFeatures>;
  private queue: Promise<void> = Promise.resolve();
  private readonly breaker: CircuitBreaker;
  private readonly counters = { rowsWritten: 0, inserts: 0, retries: 0, failures: 0 };
  private closed = false;

  constructor(private readonly options: ClickHouseSinkOptions) {
    assertIdentifier('database', options.database);
    this.ownsClient = !options.client;
    this.client = options.client ?? createClickHouse(options.settings);
    if (options.features) this.features = Promise.resolve(options.features);
    this.breaker = new CircuitBreaker({
      failureThreshold: options.breaker?.failureThreshold ?? 5,
      resetTimeoutMs: options.breaker?.resetTimeoutMs ?? 10_000,
    });
  }

  get breakerState(): BreakerState {
    return this.breaker.state;
  }

  onBreakerStateChange(listener: (state: BreakerState) => void): void {
    this.breaker.onStateChange(listener);
  }

  stats(): SinkStats {
    return { ...this.counters, breaker: this.breaker.state };
  }

  pendingRows(): number {
    let n = 0;
    for (const b of this.buffers.values()) n += b.rows.length;
    return n;
  }

  /** Which rows can never be inserted into `table`, with every reason. Reads the table's columns once (cached). */
  async validate(table: string, rows: Row[]): Promise<RowRejection[]> {
    const columns = await this.columnsOf(table);
    const rejected: RowRejection[] = [];
    rows.forEach((row, index) => {
      const problems = rowProblems(columns, row);
      if (problems.length > 0) rejected.push({ index, row, problems });
    });
    return rejected;
  }

  /** Buffers the valid rows; returns the invalid ones. Rejects (retriably) when the buffer is full or ClickHouse cannot say what the table looks like. */
  async add(table: string, rows: Row[], position: SinkPosition): Promise<AddResult> {
    if (this.closed) throw new ServiceError('clickhouse', 'the ClickHouse sink is closed');
    const rejected = await this.validate(table, rows);
    const bad = new Set(rejected.map((r) => r.index));
    const encoded = encodeRows(await this.columnsOf(table), rows);
    const accepted = bad.size === 0 ? encoded : encoded.filter((_, i) => !bad.has(i));
    const limit = this.options.maxBufferedRows ?? 20 * (this.options.maxRows ?? 5000);
    if (this.pendingRows() + accepted.length > limit) {
      throw new ServiceError(
        'clickhouse',
        `the ClickHouse sink buffer is full (${this.pendingRows()} rows waiting): pause consumption until a flush succeeds`,
        { retriable: true },
      );
    }
    if (accepted.length === 0) return { accepted: 0, rejected };
    const buffer = this.buffers.get(table) ?? { rows: [], positions: [] };
    this.buffers.set(table, buffer);
    for (const row of accepted) buffer.rows.push(row);
    buffer.positions.push(position);
    if (buffer.rows.length >= (this.options.maxRows ?? 5000)) this.background(table);
    else if (!buffer.timer) {
      buffer.timer = setTimeout(() => this.background(table), this.options.maxDelayMs ?? 1000);
      buffer.timer.unref();
    }
    return { accepted: accepted.length, rejected };
  }

  /**
   * The stream runtime's port (RowSink): writes every row ClickHouse can ever
   * take, then resolves with the ones it cannot (never written), so one bad
   * value costs one dead letter, not the stream. Rows are checked against the
   * column types first; a block the server still refuses for its data is
   * split in halves until the refused rows are found.
   */
  async write(table: string, given: Row[], positions: SinkPosition[]): Promise<RowRejection[]> {
    if (this.closed) throw new ServiceError('clickhouse', 'the ClickHouse sink is closed');
    const rejected = await this.validate(table, given);
    // Decimals exactly as their column keeps them (rows.ts); rejections keep naming the rows as given.
    const rows = encodeRows(await this.columnsOf(table), given);
    const bad = new Set(rejected.map((r) => r.index));
    const indexes = rows.map((_, i) => i).filter((i) => !bad.has(i));
    // Not through the buffer: when the insert fails, the caller keeps these rows and offers them
    // again, so buffering them here as well would pile up a copy per retry (and fill the buffer
    // for good while ClickHouse is down). A retry after a partial success re-inserts the same
    // chunks with the same dedup tokens, which row identity makes harmless.
    await this.enqueue(async () => {
      await this.flushTable(table); // rows add()ed before go first, in order
      const chunkSize = this.options.maxRows ?? 5000;
      for (let i = 0; i < indexes.length; i += chunkSize) {
        rejected.push(...(await this.insertOrBisect(table, rows, indexes.slice(i, i + chunkSize), positions)));
      }
    });
    return rejected.sort((a, b) => a.index - b.index);
  }

  /** Inserts `rows[indexes]`; when the server refuses the block for its data, finds the refused rows (by the row it names, else by halving the block). */
  private async insertOrBisect(
    table: string,
    rows: Row[],
    indexes: number[],
    positions: SinkPosition[],
  ): Promise<RowRejection[]> {
    try {
      await this.insertWithRetry(
        table,
        indexes.length === rows.length ? rows : indexes.map((i) => rows[i]!),
        positions,
      );
      return [];
    } catch (err) {
      if (!(err instanceof ServiceError) || err.retriable || !isDataError(err)) throw err;
      const refused = (i: number) => ({
        index: indexes[i]!,
        row: rows[indexes[i]!]!,
        problems: [`ClickHouse refused it: ${err.message}`],
      });
      if (indexes.length === 1) return [refused(0)];
      // ClickHouse names the row it stopped at ("(at row 3)", 1-based): one insert per refused row, not a bisection.
      const at = Number(/\(at row (\d+)\)/.exec(err.message)?.[1] ?? 0) - 1;
      if (at >= 0 && at < indexes.length)
        return [
          refused(at),
          ...(await this.insertOrBisect(
            table,
            rows,
            indexes.filter((_, i) => i !== at),
            positions,
          )),
        ];
      const half = Math.ceil(indexes.length / 2);
      return [
        ...(await this.insertOrBisect(table, rows, indexes.slice(0, half), positions)),
        ...(await this.insertOrBisect(table, rows, indexes.slice(half), positions)),
      ];
    }
  }

  /** Writes everything buffered so far; resolves once ClickHouse acknowledged all of it. */
  flush(): Promise<void> {
    return this.enqueue(async () => {
      for (const table of [...this.buffers.keys()]) await this.flushTable(table);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const b of this.buffers.values()) clearTimeout(b.timer);
    await this.queue.catch(() => undefined);
    if (this.ownsClient) await this.client.close();
  }

  /** Flushes run one at a time, in order, so a flush never overtakes an earlier one. */
  private enqueue(work: () => Promise<void>): Promise<void> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private background(table: string): void {
    const buffer = this.buffers.get(table);
    if (buffer?.timer) {
      clearTimeout(buffer.timer);
      buffer.timer = undefined;
    }
    this.enqueue(() => this.flushTable(table)).catch((err: unknown) => this.options.onBackgroundError?.(err));
  }

  private async flushTable(table: string): Promise<void> {
    const buffer = this.buffers.get(table);
    if (!buffer || buffer.rows.length === 0) return;
    clearTimeout(buffer.timer);
    buffer.timer = undefined;
    const chunkSize = this.options.maxRows ?? 5000;
    while (buffer.rows.length > 0) {
      const chunk = buffer.rows.slice(0, chunkSize);
      await this.insertWithRetry(table, chunk, buffer.positions);
      buffer.rows.splice(0, chunk.length);
    }
    buffer.positions = [];
  }

  private async insertWithRetry(table: string, rows: Row[], positions: SinkPosition[]): Promise<void> {
    const retries = this.options.retry?.retries ?? 3;
    let token: string | undefined;
    for (let attempt = 0; ; attempt++) {
      if (!this.breaker.tryAcquire()) {
        throw new SinkUnavailableError(
          `ClickHouse at ${redactedUrl(this.options.settings.url)} failed ${this.breaker.consecutiveFailures} times in a row; not trying again for ${this.breaker.retryInMs()} ms (circuit open)`,
        );
      }
      // Cut when the write's hold lease is lost (the rows must not land after it) or after attemptTimeoutMs.
      const bound = insertAttempt(this.options.attemptTimeoutMs);
      try {
        if (bound.cut()) throw bound.cut();
        // Inside the attempt: an unreachable server fails here first, and that must count for the breaker too.
        const features = await this.serverFeatures();
        if (features.insertDeduplicationToken)
          token ??= insertDedupToken(table, rows, positions, this.options.volatileColumns);
        await this.client.insert({
          table: `${this.options.database}.${table}`,
          values: rows,
          format: 'JSONEachRow',
          clickhouse_settings: {
            ...(token ? { insert_deduplication_token: token } : {}),
            // A server defaulting to async inserts would acknowledge before the rows are visible.
            ...(features.asyncInsert ? { async_insert: 0 } : {}),
          },
          abort_signal: bound.signal,
        });
        this.breaker.success();
        this.counters.inserts += 1;
        this.counters.rowsWritten += rows.length;
        return;
      } catch (err) {
        bound.end();
        const cut = bound.cut();
        if (cut instanceof SinkLeaseLostError) {
          // Not ClickHouse's failure; the runtime retries the write under a new lease. The attempt says nothing
          // of the server, but must not hold a half-open breaker's one trial for good.
          this.breaker.abandon();
          throw cut;
        }
        const error = cut ?? classifyClickHouseError(this.options.settings, err);
        this.counters.failures += 1;
        if (!error.retriable) {
          // A refusal the server answered (it names a code: these rows, this table) shows it is up, and closes a
          // half-open breaker; anything else says nothing of it and only gives the trial back. Either way the
          // trial ends: left in flight, it made the breaker refuse every later insert.
          if (clickHouseErrorCode(err) !== undefined) this.breaker.success();
          else this.breaker.abandon();
          if (isSchemaError(error)) this.columns.delete(table);
          throw error;
        }
        this.breaker.failure();
        if (attempt >= retries) throw error;
        this.counters.retries += 1;
        await sleep(this.backoffMs(attempt));
      } finally {
        bound.end();
      }
    }
  }

  /** Full jitter: a random delay up to min(cap, base * 2^attempt), so many processors do not retry in lockstep. */
  private backoffMs(attempt: number): number {
    const base = this.options.retry?.baseMs ?? 100;
    const cap = this.options.retry?.capMs ?? 5000;
    return Math.floor((this.options.random ?? Math.random)() * Math.min(cap, base * 2 ** attempt));
  }

  private serverFeatures(): Promise<ServerFeatures> {
    if (!this.features) {
      this.features = detectServerFeatures(this.client).catch((err: unknown) => {
        this.features = undefined;
        throw classifyClickHouseError(this.options.settings, err);
      });
    }
    return this.features;
  }

  private columnsOf(table: string): Promise<TableColumns> {
    assertIdentifier('table', table);
    let columns = this.columns.get(table);
    const declared = this.options.columns?.[table];
    if (!columns && declared) {
      columns = Promise.resolve(new Map(Object.entries(declared)));
      this.columns.set(table, columns);
    }
    if (!columns) {
      columns = fetchColumns(this.client, this.options.database, table).then(
        (c) => {
          if (c.size === 0) {
            this.columns.delete(table);
            throw new ServiceError(
              'clickhouse',
              `table ${this.options.database}.${table} does not exist: run 'sluice sink migrate'`,
            );
          }
          return c;
        },
        (err: unknown) => {
          this.columns.delete(table);
          throw classifyClickHouseError(this.options.settings, err);
        },
      );
      this.columns.set(table, columns);
    }
    return columns;
  }
}
