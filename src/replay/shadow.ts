import type { ClickHouseClient } from '@clickhouse/client';
import { SluiceError } from '../errors';
import { assertIdentifier } from '../sink/clickhouse/migrations';
import { createShadows, dropShadows, type ShadowTable, type ShadowTables, type StagedContent } from './swap';

export { shadowTag, type ShadowTable, type SwapReport, type SwapStrategy } from './swap';

/**
 * Shadow tables of a replay on ClickHouse: the SQL side of ShadowTables
 * (./swap.ts has the swap itself and what it guarantees).
 *
 * Every statement runs on ClickHouse 18.16 (the local stack: Ordinary
 * databases, no EXCHANGE TABLES, no `_partition_id`) and on current
 * releases: table facts come from system.tables (`engine`, `engine_full`,
 * `partition_key`, `sorting_key`) and system.parts (`partition`,
 * `partition_id`, `max_block_number`), which both have.
 */

interface TableFacts {
  engine: string;
  partitionKey: string;
  /** The sorting key's expressions: a row's identity. */
  key: string[];
  /** ReplacingMergeTree's version column, if the table has one. */
  version?: string;
  /** FINAL applies (a Replacing engine): reads see one row per identity. */
  replacing: boolean;
}

/** Splits `a, f(b, c), 'x,y'` at its top-level commas. */
export function splitTopLevel(list: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < list.length; i++) {
    const c = list[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
    } else if (c === "'" || c === '`' || c === '"') quote = c;
    else if (c === '(' || c === '[') depth++;
    else if (c === ')' || c === ']') depth--;
    else if (c === ',' && depth === 0) {
      out.push(list.slice(start, i).trim());
      start = i + 1;
    }
  }
  const last = list.slice(start).trim();
  if (last !== '' || out.length > 0) out.push(last);
  return out;
}

/**
 * The version column of a *ReplacingMergeTree, from system.tables' `engine`
 * and `engine_full` (both on 18.16 and current servers). The engine's
 * arguments are, by form:
 * - `ReplacingMergeTree(ver)`, `ReplacingMergeTree(ver, is_deleted)` (23.x+): the first;
 * - `Replicated…('/path', '{replica}', ver)`, `Shared…(…)`: the first that is not a string literal;
 * - the old form `(date, [sampling,] key, 8192, ver)`: the one after the index granularity;
 * - none (`ReplacingMergeTree`, `ReplacingMergeTree()`): no version, the last inserted row wins.
 */
export function replacingVersionColumn(engine: string, engineFull: string): string | undefined {
  if (!/ReplacingMergeTree$/.test(engine) || !engineFull.startsWith(`${engine}(`)) return undefined;
  let depth = 0;
  let end = engine.length;
  let quote: string | undefined;
  for (; end < engineFull.length; end++) {
    const c = engineFull[end]!;
    if (quote) {
      if (c === '\\') end++;
      else if (c === quote) quote = undefined;
    } else if (c === "'") quote = c;
    else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) break;
  }
  const args = splitTopLevel(engineFull.slice(engine.length + 1, end));
  const granularity = args.findIndex((a) => /^\d+$/.test(a));
  const candidate = granularity >= 0 ? args[granularity + 1] : args.find((a) => !a.startsWith("'"));
  if (!candidate) return undefined;
  return assertIdentifier('column', candidate.replace(/^`(.*)`$/, '$1'));
}

const PARTITION_ID = /^[A-Za-z0-9_-]+$/;

export class SqlShadowTables implements ShadowTables {
  private readonly db: string;

  constructor(
    private readonly client: ClickHouseClient,
    database: string,
  ) {
    this.db = assertIdentifier('database', database);
  }

  private async rows<T>(query: string): Promise<T[]> {
    return (await this.client.query({ query, format: 'JSONEachRow' })).json<T>();
  }

  private async run(query: string): Promise<void> {
    await this.client.command({ query });
  }

  private name(table: string): string {
    return `${this.db}.${assertIdentifier('table', table)}`;
  }

  async partitions(table: string): Promise<string[]> {
    const found = await this.rows<{ id: string }>(
      `SELECT DISTINCT partition_id AS id FROM system.parts WHERE database = '${this.db}' AND table = '${assertIdentifier('table', table)}' AND active ORDER BY id`,
    );
    return found.map((r) => {
      if (!PARTITION_ID.test(r.id))
        throw new SluiceError('SHADOW_PARTITION_INVALID', `unexpected partition id '${r.id}' in ${this.db}.${table}`);
      return r.id;
    });
  }

  async count(table: string): Promise<number> {
    const [row] = await this.rows<{ n: string }>(`SELECT count() AS n FROM ${this.name(table)}`);
    return Number(row?.n ?? 0);
  }

  async createLike(table: string, like: string): Promise<void> {
    await this.run(`CREATE TABLE ${this.name(table)} AS ${this.name(like)}`);
  }

  async drop(table: string): Promise<void> {
    await this.run(`DROP TABLE IF EXISTS ${this.name(table)}`);
  }

  /**
   * The highest block number among the active parts: every insert gets a
   * new, higher one, and a merge keeps the highest of the parts it merges.
   * A deduplicated insert writes no part and leaves it as it is, rightly.
   */
  async insertMark(table: string, partition?: string): Promise<string> {
    const [row] = await this.rows<{ mark: string }>(
      `SELECT toString(max(max_block_number)) AS mark FROM system.parts
       WHERE database = '${this.db}' AND table = '${assertIdentifier('table', table)}' AND active${partition === undefined ? '' : ` AND partition_id = '${this.partitionId(partition)}'`}`,
    );
    return row?.mark ?? '0';
  }

  /**
   * Three INSERT … SELECTs into the staging table, reading through FINAL so
   * each identity arrives once and the staged table reads the same with or
   * without FINAL. `newer` is the set of identities whose live version beats
   * the rebuilt one (max over the unmerged rows is what FINAL keeps), built
   * with UNION ALL, GROUP BY and maxIf, which 18.16 has (no correlated
   * subqueries, and joins on expression keys are awkward there).
   */
  async stageMerged(staging: string, live: string, rebuilt: string, partition?: string): Promise<StagedContent> {
    const facts = await this.facts(live);
    const [stage, from, fresh] = [this.name(staging), this.name(live), this.name(rebuilt)];
    const key = facts.key.join(', ');
    const final = facts.replacing ? ' FINAL' : '';
    const scope = partition === undefined ? '1' : await this.scopeOf(facts, rebuilt, partition);

    let newer: string | undefined;
    let liveNewer = 0;
    if (facts.version) {
      const aliased = facts.key.map((e, i) => `${e} AS __k${i}`).join(', ');
      const keys = facts.key.map((_, i) => `__k${i}`).join(', ');
      newer = `SELECT ${keys} FROM (
          SELECT ${aliased}, ${facts.version} AS __v, 0 AS __src FROM ${from} WHERE ${scope} AND (${key}) IN (SELECT ${key} FROM ${fresh})
          UNION ALL
          SELECT ${aliased}, ${facts.version} AS __v, 1 AS __src FROM ${fresh}
        ) GROUP BY ${keys} HAVING countIf(__src = 0) > 0 AND maxIf(__v, __src = 0) > maxIf(__v, __src = 1)`;
      const [row] = await this.rows<{ n: string }>(`SELECT count() AS n FROM (${newer})`);
      liveNewer = Number(row?.n ?? 0);
      if (liveNewer === 0) newer = undefined; // the usual case: two fewer scans of the live partition
    }

    await this.run(
      `INSERT INTO ${stage} SELECT * FROM ${from}${final} WHERE ${scope} AND (${key}) NOT IN (SELECT ${key} FROM ${fresh})`,
    );
    if (newer)
      await this.run(`INSERT INTO ${stage} SELECT * FROM ${from}${final} WHERE ${scope} AND (${key}) IN (${newer})`);
    const rowsKept = await this.count(staging);
    await this.run(
      `INSERT INTO ${stage} SELECT * FROM ${fresh}${final}${newer ? ` WHERE (${key}) NOT IN (${newer})` : ''}`,
    );
    return { rowsKept, liveNewer };
  }

  async replacePartition(table: string, partition: string, from: string): Promise<void> {
    await this.run(
      `ALTER TABLE ${this.name(table)} REPLACE PARTITION ID '${this.partitionId(partition)}' FROM ${this.name(from)}`,
    );
  }

  /** EXCHANGE TABLES needs an Atomic database (ClickHouse 20.x+); 18.16 has only Ordinary ones. */
  async canExchange(): Promise<boolean> {
    const [row] = await this.rows<{ engine: string }>(`SELECT engine FROM system.databases WHERE name = '${this.db}'`);
    return row?.engine === 'Atomic';
  }

  async exchange(a: string, b: string): Promise<void> {
    await this.run(`EXCHANGE TABLES ${this.name(a)} AND ${this.name(b)}`);
  }

  /** One statement: ClickHouse renames both under one lock, so readers never find the table missing. */
  async renameSwap(live: string, staging: string, old: string): Promise<void> {
    await this.run(`RENAME TABLE ${this.name(live)} TO ${this.name(old)}, ${this.name(staging)} TO ${this.name(live)}`);
  }

  private partitionId(partition: string): string {
    if (!PARTITION_ID.test(partition))
      throw new SluiceError('SHADOW_PARTITION_INVALID', `unexpected partition id '${partition}'`);
    return partition;
  }

  private async facts(table: string): Promise<TableFacts> {
    const [meta] = await this.rows<{ engine: string; engine_full: string; partition_key: string; sorting_key: string }>(
      `SELECT engine, engine_full, partition_key, sorting_key FROM system.tables WHERE database = '${this.db}' AND name = '${assertIdentifier('table', table)}'`,
    );
    if (!meta) throw new SluiceError('SHADOW_TABLE_MISSING', `${this.db}.${table} does not exist`);
    if (!meta.sorting_key)
      throw new SluiceError(
        'SHADOW_KEY_MISSING',
        `${this.db}.${table} has no sorting key: rows cannot be matched to their rebuilt version`,
      );
    return {
      engine: meta.engine,
      partitionKey: meta.partition_key,
      key: splitTopLevel(meta.sorting_key),
      version: replacingVersionColumn(meta.engine, meta.engine_full),
      replacing: /ReplacingMergeTree$/.test(meta.engine),
    };
  }

  /** A WHERE condition for the rows of one partition: its key expression equals the partition's value (system.parts prints it as a literal). */
  private async scopeOf(facts: TableFacts, table: string, partition: string): Promise<string> {
    if (facts.partitionKey === '') return '1'; // unpartitioned: the one partition is the whole table
    const [value] = await this.rows<{ partition: string }>(
      `SELECT any(partition) AS partition FROM system.parts WHERE database = '${this.db}' AND table = '${assertIdentifier('table', table)}' AND partition_id = '${this.partitionId(partition)}' AND active`,
    );
    if (!value?.partition)
      throw new SluiceError(
        'SHADOW_PARTITION_INVALID',
        `partition ${partition} of ${this.db}.${table} has no active part`,
      );
    return `(${facts.partitionKey}) = ${value.partition}`;
  }
}

/** Creates an empty rebuild table beside each live table (same columns, engine, partitioning and sorting key). */
export async function createShadowTables(
  client: ClickHouseClient,
  database: string,
  tables: string[],
  tag: string,
): Promise<ShadowTable[]> {
  return createShadows(new SqlShadowTables(client, database), tables, tag);
}

/** Drops this replay's rebuild and staging tables (after a swap, or after a failure). */
export async function dropShadowTables(
  client: ClickHouseClient,
  database: string,
  tables: ShadowTable[],
  tag: string,
): Promise<void> {
  await dropShadows(new SqlShadowTables(client, database), tables, tag);
}
