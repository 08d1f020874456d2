import type { ClickHouseClient } from '@clickhouse/client';
import type { ShadowTables, StagedContent } from '../../../src/replay/swap';
import type { Row } from '../../../src/sink/clickhouse/token';

/**
 * ClickHouse as the simulation needs it, in memory: ReplacingMergeTree
 * tables as rows with an identity (the sorting key's columns), an optional
 * version column and a partition function, taking inserts the way
 * ClickHouseSink sends them (`client.insert`, JSONEachRow) and the swap's
 * table work (ShadowTables, src/replay/swap.ts). What it keeps of
 * ClickHouse, checked against the real server by
 * test/integration/model-agreement.test.ts:
 *
 * - every insert is a part with a block number from the table's own counter;
 *   a merge keeps the highest block number of what it merges, REPLACE
 *   PARTITION gives the copied parts new ones;
 * - reading "as FINAL" gives one row per (partition, identity): the highest
 *   version, and on equal versions (or without a version column) the last
 *   inserted; reading without FINAL gives every row not merged away yet;
 * - `insert_deduplication_token`: an insert whose token is among the last
 *   `dedupWindow` tokens that landed in the table is dropped and reported
 *   as a success, as current servers do;
 * - an insert whose `abort_signal` fires before it landed never lands (the
 *   server had not received it whole); the `beforeInsert` hook is the time
 *   before that point, so a simulation makes inserts slow or failing there.
 *
 * Values are kept as given; comparisons treat numbers and numeric strings
 * as numbers (a UInt64 arrives as either), everything else as strings.
 */

export interface ModelTableSpec {
  /** The identity: the sorting key's columns. */
  key: string[];
  /** ReplacingMergeTree(version); none: the last inserted row of an identity wins. */
  version?: string;
  /** The ClickHouse partition id of a row, e.g. `(r) => String(r.day).replace(/-/g, '')` for `PARTITION BY toYYYYMMDD(day)`. */
  partition: (row: Row) => string;
  /** Insert deduplication window of this table; defaults to the model's. */
  dedupWindow?: number;
}

export interface ClickHouseModelOptions {
  /** How many recent insert tokens a table remembers (non_replicated_deduplication_window). Default 100. */
  dedupWindow?: number;
  /** Databases are Atomic (EXCHANGE TABLES works), as on ClickHouse 20.x+; default false, as on 18.16. */
  atomic?: boolean;
}

/** What the sink passes to `client.insert`. */
export interface ModelInsertParams {
  table: string;
  values: Row[];
  format?: string;
  clickhouse_settings?: Record<string, unknown>;
  abort_signal?: AbortSignal;
}

interface Stored {
  row: Row;
  /** The block number of the part holding the row (for a merged part, the highest it covers). */
  block: number;
}

interface Table {
  spec: ModelTableSpec;
  rows: Stored[];
  nextBlock: number;
  /** Tokens of the inserts that landed, oldest first, at most the window. */
  tokens: string[];
}

const NUMERIC = /^-?\d+(\.\d+)?$/;

/** Orders two column values: numerically when both are numbers or numeric strings, else as strings. */
export function compareValues(a: unknown, b: unknown): number {
  const numeric = (v: unknown) =>
    typeof v === 'number' || typeof v === 'bigint' || (typeof v === 'string' && NUMERIC.test(v));
  if (numeric(a) && numeric(b)) {
    const [x, y] = [String(a), String(b)];
    if (/^-?\d+$/.test(x) && /^-?\d+$/.test(y)) {
      const [p, q] = [BigInt(x), BigInt(y)];
      return p < q ? -1 : p > q ? 1 : 0;
    }
    return Number(x) - Number(y);
  }
  const [x, y] = [String(a ?? ''), String(b ?? '')];
  return x < y ? -1 : x > y ? 1 : 0;
}

const abortError = (signal: AbortSignal) =>
  signal.reason instanceof Error ? signal.reason : new Error('The user aborted a request.');

export class ClickHouseModel {
  /** Runs before an insert lands: throw to fail it, wait to make it slow. `table` is without the database. */
  beforeInsert?: (table: string, rows: Row[]) => Promise<void>;
  /** Runs after an insert landed: throw to lose the acknowledgement (the rows stay). */
  afterInsert?: (table: string, rows: Row[]) => Promise<void>;

  private readonly tables = new Map<string, Table>();
  private readonly dedupWindow: number;
  private readonly atomic: boolean;
  private queries = 0;

  constructor(options: ClickHouseModelOptions = {}) {
    this.dedupWindow = options.dedupWindow ?? 100;
    this.atomic = options.atomic ?? false;
  }

  createTable(database: string, table: string, spec: ModelTableSpec): void {
    const name = `${database}.${table}`;
    if (this.tables.has(name)) throw new Error(`Code: 57. DB::Exception: Table ${name} already exists.`);
    this.tables.set(name, { spec, rows: [], nextBlock: 1, tokens: [] });
  }

  hasTable(database: string, table: string): boolean {
    return this.tables.has(`${database}.${table}`);
  }

  /** Table names of a database, sorted. */
  tableNames(database: string): string[] {
    return [...this.tables.keys()]
      .filter((n) => n.startsWith(`${database}.`))
      .map((n) => n.slice(database.length + 1))
      .sort();
  }

  /** The object to give ClickHouseSink as `client` (with `columns` and `features`, so it only inserts). */
  asClient(): ClickHouseClient {
    const refuse = () => {
      throw new Error('the ClickHouse model takes inserts only: give the sink `columns` and `features`');
    };
    return {
      insert: (params: ModelInsertParams) => this.insert(params),
      close: async () => undefined,
      query: refuse,
      command: refuse,
      exec: refuse,
      ping: refuse,
    } as unknown as ClickHouseClient;
  }

  /** `client.insert` as the sink calls it; `table` is `<database>.<table>`. */
  async insert(
    params: ModelInsertParams,
  ): Promise<{ executed: boolean; query_id: string; response_headers: Record<string, string> }> {
    const signal = params.abort_signal;
    if (signal?.aborted) throw abortError(signal);
    const table = this.table(params.table);
    if ((params.format ?? 'JSONEachRow') !== 'JSONEachRow')
      throw new Error(`the ClickHouse model reads JSONEachRow only, not ${params.format}`);
    const rows = params.values.map((r) => ({ ...r }));
    const bare = params.table.slice(params.table.indexOf('.') + 1);
    if (this.beforeInsert) {
      const before = this.beforeInsert(bare, rows);
      if (signal) {
        // The client gives up at once; the server never gets the rest of the request.
        await new Promise<void>((resolve, reject) => {
          const onAbort = () => reject(abortError(signal));
          signal.addEventListener('abort', onAbort, { once: true });
          before.then(
            () => {
              signal.removeEventListener('abort', onAbort);
              resolve();
            },
            (err: unknown) => {
              signal.removeEventListener('abort', onAbort);
              reject(err);
            },
          );
        });
      } else await before;
    }
    if (signal?.aborted) throw abortError(signal);
    const token = params.clickhouse_settings?.insert_deduplication_token;
    const query_id = `model-${++this.queries}`;
    if (typeof token === 'string' && table.tokens.includes(token))
      return { executed: true, query_id, response_headers: {} };
    this.append(table, rows);
    if (typeof token === 'string') {
      table.tokens.push(token);
      const window = table.spec.dedupWindow ?? this.dedupWindow;
      if (table.tokens.length > window) table.tokens.splice(0, table.tokens.length - window);
    }
    await this.afterInsert?.(bare, rows);
    return { executed: true, query_id, response_headers: {} };
  }

  /** The table as `SELECT … FINAL` reads it: one row per (partition, identity), sorted by identity. */
  final(database: string, table: string): Row[] {
    return this.finalOf(this.table(`${database}.${table}`)).map((s) => ({ ...s.row }));
  }

  /** The table as read without FINAL: every row not merged away, in insertion order. */
  rows(database: string, table: string): Row[] {
    return this.table(`${database}.${table}`).rows.map((s) => ({ ...s.row }));
  }

  /** A merge of every partition (OPTIMIZE … FINAL): only what FINAL shows remains. */
  merge(database: string, table: string): void {
    const t = this.table(`${database}.${table}`);
    const top = new Map<string, number>();
    for (const s of t.rows) {
      const p = t.spec.partition(s.row);
      top.set(p, Math.max(top.get(p) ?? 0, s.block));
    }
    t.rows = this.finalOf(t, false).map((s) => ({ row: s.row, block: top.get(t.spec.partition(s.row))! }));
  }

  /** The swap's table work on `database`. */
  shadowTables(database: string): ShadowTables {
    const name = (table: string) => `${database}.${table}`;
    return {
      partitions: async (table) => {
        const t = this.table(name(table));
        return [...new Set(t.rows.map((s) => t.spec.partition(s.row)))].sort();
      },
      count: async (table) => {
        return this.table(name(table)).rows.length;
      },
      createLike: async (table, like) => {
        const source = this.table(name(like));
        this.createTable(database, table, source.spec);
      },
      drop: async (table) => {
        this.tables.delete(name(table));
      },
      insertMark: async (table, partition) => {
        const t = this.table(name(table));
        let top = 0;
        for (const s of t.rows)
          if (partition === undefined || t.spec.partition(s.row) === partition) top = Math.max(top, s.block);
        return String(top);
      },
      stageMerged: async (staging, live, rebuilt, partition): Promise<StagedContent> => {
        return this.stage(this.table(name(staging)), this.table(name(live)), this.table(name(rebuilt)), partition);
      },
      replacePartition: async (table, partition, from) => {
        const [t, f] = [this.table(name(table)), this.table(name(from))];
        t.rows = t.rows.filter((s) => t.spec.partition(s.row) !== partition);
        // Each copied part gets a new block number of the destination, in order.
        const blocks = new Map<number, number>();
        for (const s of f.rows.filter((s) => f.spec.partition(s.row) === partition)) {
          if (!blocks.has(s.block)) blocks.set(s.block, t.nextBlock++);
          t.rows.push({ row: { ...s.row }, block: blocks.get(s.block)! });
        }
      },
      canExchange: async () => {
        return this.atomic;
      },
      exchange: async (a, b) => {
        if (!this.atomic)
          throw new Error('Code: 48. DB::Exception: EXCHANGE TABLES is not supported by an Ordinary database.');
        const [x, y] = [this.table(name(a)), this.table(name(b))];
        this.tables.set(name(a), y);
        this.tables.set(name(b), x);
      },
      renameSwap: async (live, staging, old) => {
        if (this.tables.has(name(old))) throw new Error(`Code: 57. DB::Exception: Table ${name(old)} already exists.`);
        const [l, s] = [this.table(name(live)), this.table(name(staging))];
        this.tables.delete(name(staging));
        this.tables.set(name(old), l);
        this.tables.set(name(live), s);
      },
    };
  }

  private table(qualified: string): Table {
    const t = this.tables.get(qualified);
    if (!t) throw new Error(`Code: 60. DB::Exception: Table ${qualified} doesn't exist.`);
    return t;
  }

  private identity(spec: ModelTableSpec, row: Row): string {
    return JSON.stringify(spec.key.map((c) => (row[c] === undefined || row[c] === null ? null : String(row[c]))));
  }

  /** One insert: a part per partition it touches, each with its own block number. */
  private append(t: Table, rows: Row[]): void {
    const blocks = new Map<string, number>();
    for (const row of rows) {
      const p = t.spec.partition(row);
      if (!blocks.has(p)) blocks.set(p, t.nextBlock++);
      t.rows.push({ row, block: blocks.get(p)! });
    }
  }

  /** FINAL: per (partition, identity) the highest version, the later row on ties (rows are kept in insertion order). */
  private finalOf(t: Table, sorted = true): Stored[] {
    const winners = new Map<string, Stored>();
    for (const s of t.rows) {
      const id = `${t.spec.partition(s.row)}|${this.identity(t.spec, s.row)}`;
      const best = winners.get(id);
      if (!best || !t.spec.version || compareValues(s.row[t.spec.version], best.row[t.spec.version]) >= 0)
        winners.set(id, s);
    }
    const out = [...winners.values()];
    if (sorted) {
      out.sort((a, b) => {
        for (const c of t.spec.key) {
          const d = compareValues(a.row[c], b.row[c]);
          if (d !== 0) return d;
        }
        return compareValues(t.spec.partition(a.row), t.spec.partition(b.row));
      });
    }
    return out;
  }

  /** What SqlShadowTables.stageMerged does, on rows (src/replay/shadow.ts). */
  private stage(staging: Table, live: Table, rebuilt: Table, partition?: string): StagedContent {
    const spec = live.spec;
    const inScope = (row: Row) => partition === undefined || spec.partition(row) === partition;
    const rebuiltIds = new Set(rebuilt.rows.map((s) => this.identity(spec, s.row)));
    const newer = new Set<string>();
    if (spec.version) {
      const version = spec.version;
      const top = (rows: Stored[]) => {
        const out = new Map<string, unknown>();
        for (const s of rows) {
          const id = this.identity(spec, s.row);
          if (!out.has(id) || compareValues(s.row[version], out.get(id)) > 0) out.set(id, s.row[version]);
        }
        return out;
      };
      const fresh = top(rebuilt.rows);
      for (const [id, v] of top(
        live.rows.filter((s) => inScope(s.row) && rebuiltIds.has(this.identity(spec, s.row))),
      )) {
        if (compareValues(v, fresh.get(id)) > 0) newer.add(id);
      }
    }
    const kept = this.finalOf(live, false).filter(
      (s) => inScope(s.row) && (!rebuiltIds.has(this.identity(spec, s.row)) || newer.has(this.identity(spec, s.row))),
    );
    this.append(
      staging,
      kept.map((s) => ({ ...s.row })),
    );
    this.append(
      staging,
      this.finalOf(rebuilt, false)
        .filter((s) => !newer.has(this.identity(spec, s.row)))
        .map((s) => ({ ...s.row })),
    );
    return { rowsKept: kept.length, liveNewer: newer.size };
  }
}
