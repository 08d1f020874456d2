import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { isAbsolute, join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { parseError, type ClickHouseClientConfigOptions } from '@clickhouse/client';
import { ConfigError, ServiceError } from '../../errors';
import { assertIdentifier } from './migrations';

/**
 * ClickHouse as a library (chdb) behind the ordinary client, for
 * `clickhouse.url` = `chdb:///absolute/data/dir`:
 *
 * - `chdb:///dir`: the engine of the npm package `chdb` (a devDependency; a
 *   current release, 26.x), inside this process;
 * - `chdb:///dir?python=/venv/bin/python`: the engine of the chdb Python
 *   package in that interpreter, in a child process (src/sink/clickhouse/chdb_bridge.py),
 *   so the same code can run on the older engines PyPI's chdb releases embed.
 *
 * It exists so the project's SQL runs on current ClickHouse where only the
 * local 18.16 server can be installed: the tests use it
 * (test/clickhouse/, test/integration/event-counts-clickhouse-current.test.ts).
 * It is not a deployment target: there is no network, no user, no TLS, and
 * one data directory per process (chdb refuses a second one).
 *
 * What differs from a server, and what this file does about it:
 * - the client's `database` is not sent to the engine: each connection
 *   issues `USE <database>` before its first statement (the bridge, which
 *   serves every connection of this process in one session, before any
 *   statement whose database differs from the last one's);
 * - chdb turns per-query `clickhouse_settings` into `SET` statements that
 *   stay on the session, so an insert's dedup token would be reused by the
 *   next insert, which the engine would then drop: settings go into the
 *   statement's own `SETTINGS` clause instead (INSERT and SELECT), and
 *   settings of the HTTP interface alone are dropped;
 * - 64-bit integers come in JSON as numbers unless told otherwise, where a
 *   server quotes them: each session is set to the server's default (SERVER_DEFAULTS);
 * - credentials are ignored; `async_insert` defaults to 1 on chdb 26.x (the
 *   sink turns it off per insert, as on any server that has it).
 */

type Connection = NonNullable<ClickHouseClientConfigOptions['connection']>;
type QueryParams = Parameters<Connection['query']>[0];
type InsertParams = Parameters<Connection['insert']>[0];
type CommandParams = Parameters<Connection['command']>[0];
type ExecParams = Parameters<Connection['exec']>[0];
type PingParams = Parameters<Connection['ping']>[0];
type Summary = Awaited<ReturnType<Connection['command']>>['summary'];

export interface ChdbTarget {
  /** Absolute data directory of the engine. */
  dir: string;
  /** Python interpreter whose chdb package runs the engine; none: the npm package, in process. */
  python?: string;
}

/** The engine a `chdb:` URL names; undefined for any other URL (HTTP stays the default). */
export function chdbTarget(url: string): ChdbTarget | undefined {
  if (!url.startsWith('chdb:')) return undefined;
  const parsed = new URL(url);
  const dir = decodeURIComponent(parsed.pathname);
  if (parsed.host !== '' || !isAbsolute(dir) || dir === '/') {
    throw new ConfigError(
      `clickhouse.url '${url}': a chdb URL names an absolute data directory, as chdb:///var/lib/sluice-chdb`,
    );
  }
  const python = parsed.searchParams.get('python') ?? undefined;
  if (python !== undefined && !isAbsolute(python))
    throw new ConfigError(`clickhouse.url '${url}': python= must be an absolute path to an interpreter`);
  return { dir, python };
}

/** A connection for `createClient({ connection })` to the engine `target` names, with `database` as its default database. */
export function chdbConnection(target: ChdbTarget, database?: string): Connection {
  if (database !== undefined) assertIdentifier('database', database);
  if (target.python) return new StatementConnection(new BridgeConnection(target, database), undefined, false);
  return new StatementConnection(inProcessConnection(target), database, true);
}

function inProcessConnection(target: ChdbTarget): Connection {
  let module: { createChdbConnection(options: { path: string }): unknown };
  try {
    // Loaded only for a chdb URL: deployments talk HTTP and need not install the engine.
    // (Typed here: the package's types sit behind an `exports` map this project's module resolution does not read.)
    module = require('chdb/connection') as typeof module;
  } catch (err) {
    throw new ConfigError(
      `clickhouse.url chdb://${target.dir} needs the npm package chdb (npm install chdb): ${(err as Error).message.split('\n')[0]}`,
    );
  }
  try {
    return module.createChdbConnection({ path: target.dir }) as Connection;
  } catch (err) {
    throw new ConfigError(
      `clickhouse.url chdb://${target.dir}: ${(err as Error).message.split('\n')[0]} (chdb opens one data directory per process)`,
    );
  }
}

/**
 * Where chdb's defaults differ from a server's in what the project reads:
 * a server sends 64-bit integers in JSON as strings, chdb as numbers, and
 * code that passed on numbers could fail on strings. (async_insert, 1 on
 * chdb 26.x and 0 on servers, is left as it is: the sink must not depend on it.)
 * The bridge runs the same statements (chdb_bridge.py).
 */
export const SERVER_DEFAULTS = ['SET output_format_json_quote_64bit_integers = 1'];

/** Settings of ClickHouse's HTTP interface: an embedded engine has no such layer and would refuse them. */
const HTTP_ONLY_SETTINGS = new Set([
  'wait_end_of_query',
  'send_progress_in_http_headers',
  'http_response_buffer_size',
  'http_headers_progress_interval_ms',
  'http_send_progress_interval_ms',
  'enable_http_compression',
  'http_zlib_compression_level',
]);

/** A SQL literal for a setting's value: numbers and booleans as they are, anything else a quoted string. */
function settingValue(value: unknown): string {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'boolean') return value ? '1' : '0';
  return `'${String(value).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * `query` with its settings as its own `SETTINGS` clause, which lasts for
 * that statement only. INSERT ... FORMAT and SELECT ... FORMAT (what the
 * client builds) take it right before FORMAT; other statements get none.
 */
export function withStatementSettings(query: string, settings: Record<string, unknown> | undefined): string {
  const entries = Object.entries(settings ?? {}).filter(
    ([name, value]) => value !== undefined && !HTTP_ONLY_SETTINGS.has(name),
  );
  if (entries.length === 0) return query;
  for (const [name] of entries)
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`invariant: invalid ClickHouse setting name '${name}'`);
  const clause = `SETTINGS ${entries.map(([name, value]) => `${name} = ${settingValue(value)}`).join(', ')}`;
  const format = /\s+FORMAT\s+[A-Za-z0-9_]+\s*$/.exec(query);
  if (!format)
    throw new Error(
      `invariant: settings ${entries.map(([n]) => n).join(', ')} cannot be sent with this statement to chdb (only INSERT/SELECT ... FORMAT take a SETTINGS clause here)`,
    );
  return `${query.slice(0, format.index)} ${clause}${query.slice(format.index)}`;
}

/**
 * Puts the client's per-query settings into each statement and selects the
 * default database, on top of an engine connection that has no HTTP layer.
 */
class StatementConnection implements Connection {
  private using?: Promise<void>;

  constructor(
    private readonly inner: Connection,
    private readonly database: string | undefined,
    /** The connection is a session of its own (npm chdb), to be set up like a server's; the bridge sets up its one session itself. */
    private readonly session: boolean,
  ) {}

  private ready(): Promise<void> {
    this.using ??= (async () => {
      if (this.session) for (const statement of SERVER_DEFAULTS) await this.inner.command({ query: statement });
      if (this.database) await this.inner.command({ query: `USE ${this.database}` });
    })().catch((err: unknown) => {
      this.using = undefined; // e.g. the database is created later: the next statement tries again
      throw err;
    });
    return this.using;
  }

  private statement<P extends QueryParams>(params: P): P {
    return {
      ...params,
      query: withStatementSettings(params.query, params.clickhouse_settings),
      clickhouse_settings: {},
    };
  }

  async query(params: QueryParams) {
    await this.ready();
    return this.inner.query(this.statement(params));
  }

  async insert(params: InsertParams) {
    await this.ready();
    return this.inner.insert(this.statement(params));
  }

  async command(params: CommandParams) {
    await this.ready();
    return this.inner.command(this.statement(params));
  }

  async exec(params: ExecParams) {
    await this.ready();
    return this.inner.exec(this.statement(params));
  }

  ping(params: PingParams) {
    return this.inner.ping(params);
  }

  close() {
    return this.inner.close();
  }
}

interface BridgeAnswer {
  id: number;
  ok: boolean;
  data?: string;
  error?: string;
  rows_read?: number;
  bytes_read?: number;
  elapsed?: number;
  version?: string;
}

interface Statement {
  db: string | null;
  sql: string;
  format?: string;
  params?: Record<string, unknown>;
}

/** One Python child per interpreter and data directory, shared by this process's connections and ended with the last of them. */
class Bridge {
  private static readonly open = new Map<string, Bridge>();
  private readonly child: ChildProcess;
  private readonly requests: Writable;
  private readonly pending = new Map<number, (answer: BridgeAnswer) => void>();
  private nextId = 1;
  private users = 0;
  private stderr = '';
  private exited?: Error;
  readonly started: Promise<string>;

  static acquire(target: ChdbTarget): Bridge {
    const key = `${target.python}\0${target.dir}`;
    let bridge = Bridge.open.get(key);
    if (!bridge || bridge.exited) {
      bridge = new Bridge(target);
      Bridge.open.set(key, bridge);
    }
    bridge.users += 1;
    return bridge;
  }

  private constructor(private readonly target: ChdbTarget) {
    // Requests on fd 4, answers on fd 3; stdin is empty: the engine reads an INSERT's data from
    // stdin when it can (as clickhouse-local does), which would swallow the requests.
    this.child = spawn(target.python!, ['-u', join(__dirname, 'chdb_bridge.py'), target.dir], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
    });
    this.requests = this.child.stdio[4] as Writable;
    this.requests.on('error', () => undefined); // a child that died is reported by its 'exit'
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-4000)));
    let buffered = '';
    const answers = this.child.stdio[3] as Readable;
    let resolveStarted!: (version: string) => void;
    let rejectStarted!: (err: Error) => void;
    this.started = new Promise((resolve, reject) => ((resolveStarted = resolve), (rejectStarted = reject)));
    this.started.catch(() => undefined);
    answers.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const answer = JSON.parse(buffered.slice(0, nl)) as BridgeAnswer;
        buffered = buffered.slice(nl + 1);
        if (answer.id === 0) resolveStarted(answer.version ?? '');
        this.pending.get(answer.id)?.(answer);
        this.pending.delete(answer.id);
      }
    });
    const fail = (reason: string) => {
      this.exited ??= new ServiceError(
        'clickhouse',
        `the chdb engine of ${target.python} (data ${target.dir}) ${reason}: ${this.stderr.trim().split('\n').slice(-3).join(' | ')}`,
      );
      rejectStarted(this.exited);
      for (const [id, settle] of this.pending) settle({ id, ok: false, error: this.exited.message });
      this.pending.clear();
    };
    this.child.on('error', (err) => fail(`could not start (${err.message})`));
    this.child.on('exit', (code, signal) => fail(`exited (${signal ?? code})`));
  }

  async run(statement: Statement, signal?: AbortSignal): Promise<BridgeAnswer> {
    await this.started;
    if (this.exited) throw this.exited;
    signal?.throwIfAborted();
    const id = this.nextId++;
    const answer = new Promise<BridgeAnswer>((resolve) => this.pending.set(id, resolve));
    this.requests.write(`${JSON.stringify({ id, ...statement })}\n`);
    // An aborted statement still runs to its end in the engine, as one a server has received would.
    const aborted = signal
      ? new Promise<never>((_, reject) =>
          signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }),
        )
      : undefined;
    const settled = await (aborted ? Promise.race([answer, aborted]) : answer);
    if (!settled.ok) throw parseError(settled.error ?? 'chdb failed');
    return settled;
  }

  async release(): Promise<void> {
    this.users -= 1;
    if (this.users > 0 || this.exited) return;
    Bridge.open.delete(`${this.target.python}\0${this.target.dir}`);
    const gone = new Promise((resolve) => this.child.once('exit', resolve));
    this.requests.end(); // the bridge closes its session and exits at the end of its input
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(timer);
  }
}

async function bodyOf(values: string | Readable): Promise<string> {
  if (typeof values === 'string') return values;
  let body = '';
  for await (const chunk of values)
    body += typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
  return body;
}

function readable(data: Buffer): Readable {
  const stream = Readable.from([data]);
  stream.on('error', () => undefined); // a result set closed unread destroys its stream with an error nobody else listens to
  return stream;
}

const summaryOf = (answer: BridgeAnswer, written: boolean): Summary => {
  const rows = String(answer.rows_read ?? 0);
  const bytes = String(answer.bytes_read ?? 0);
  return {
    read_rows: rows,
    read_bytes: bytes,
    written_rows: written ? rows : '0',
    written_bytes: written ? bytes : '0',
    total_rows_to_read: '0',
    result_rows: written ? '0' : rows,
    result_bytes: written ? '0' : bytes,
    elapsed_ns: String(Math.round((answer.elapsed ?? 0) * 1e9)),
  };
};

/** The Connection contract over the Python bridge; every statement carries this connection's database. */
class BridgeConnection implements Connection {
  private readonly bridge: Bridge;
  private closed = false;

  constructor(
    target: ChdbTarget,
    private readonly database: string | undefined,
  ) {
    this.bridge = Bridge.acquire(target);
  }

  private run(params: QueryParams, sql: string, format?: string) {
    if (this.closed) throw new Error('invariant: the chdb connection is used after close');
    const bound = params.query_params && Object.keys(params.query_params).length > 0 ? params.query_params : undefined;
    return this.bridge.run({ db: this.database ?? null, sql, format, params: bound }, params.abort_signal);
  }

  private base(params: QueryParams) {
    return { query_id: params.query_id ?? randomUUID(), response_headers: {}, http_status_code: 200 };
  }

  async query(params: QueryParams) {
    const answer = await this.run(params, params.query);
    return { ...this.base(params), stream: readable(Buffer.from(answer.data ?? '', 'base64')) };
  }

  async insert(params: InsertParams) {
    const body = await bodyOf(params.values);
    // No rows: nothing to send (the engine refuses an INSERT without data).
    if (body.trim() === '') return { ...this.base(params), summary: summaryOf({ id: 0, ok: true }, true) };
    const answer = await this.run(params, `${params.query}\n${body}`);
    return { ...this.base(params), summary: summaryOf(answer, true) };
  }

  async command(params: CommandParams) {
    const answer = await this.run(params, params.query);
    return { ...this.base(params), summary: summaryOf(answer, false) };
  }

  async exec(params: ExecParams) {
    const body = params.values ? await bodyOf(params.values) : '';
    const answer = await this.run(params, body.trim() === '' ? params.query : `${params.query}\n${body}`);
    return {
      ...this.base(params),
      stream: readable(Buffer.from(answer.data ?? '', 'base64')),
      summary: summaryOf(answer, false),
    };
  }

  async ping(params: PingParams) {
    try {
      await this.run({ query: 'SELECT 1', abort_signal: params.abort_signal }, 'SELECT 1');
      return { success: true as const };
    } catch (err) {
      return { success: false as const, error: err as Error };
    }
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    await this.bridge.release();
  }
}
