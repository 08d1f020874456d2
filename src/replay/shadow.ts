import type { ClickHouseClient } from '@clickhouse/client';
import { SluiceError } from '../errors';
import { assertIdentifier } from '../sink/clickhouse/migrations';

/**
 * Shadow tables of a replay and the swap that brings them in (DESIGN §3.9).
 *
 * A shadow replay writes its rows into `<table>__rebuild_<tag>`, a table
 * created `AS` the live one, while the live stream keeps writing the live
 * table. The swap then builds, for each table, the final content of every
 * ClickHouse partition the rebuild touched: the live rows whose identity
 * (the table's sorting key) the rebuild did not produce, plus the rebuilt
 * rows. That content replaces the live partition in one statement:
 *
 * - one partition: `ALTER TABLE … REPLACE PARTITION ID … FROM staging`
 *   (ClickHouse 18.16 and later), atomic for readers;
 * - several partitions: the whole table is staged and swapped, with
 *   `EXCHANGE TABLES` where the database supports it (Atomic engine,
 *   ClickHouse 20.x+), else `RENAME TABLE live TO old, staging TO live`,
 *   which ClickHouse runs under one lock.
 *
 * The caller holds the live stream's writes (src/sink/hold.ts) around the
 * swap: a live insert landing between the copy and the swap would be lost.
 * Rows outside the rebuilt partitions are never read or rewritten.
 */

export type SwapStrategy = 'replace-partition' | 'exchange-tables' | 'rename-tables';

export interface ShadowTable {
  live: string;
  rebuilt: string;
}

export interface SwapReport {
  table: string;
  strategy: SwapStrategy | 'nothing-rebuilt';
  /** ClickHouse partition ids that changed. */
  partitions: string[];
  rowsRebuilt: number;
  /** Live rows of those partitions carried over unchanged (their identity was not rebuilt). */
  rowsKept: number;
  ms: number;
}

const suffixed = (table: string, kind: 'rebuild' | 'swap' | 'old', tag: string) => assertIdentifier('table', `${table}__${kind}_${tag}`);

async function rows<T>(client: ClickHouseClient, query: string): Promise<T[]> {
  return (await client.query({ query, format: 'JSONEachRow' })).json<T>();
}

/** A short tag for this replay's tables: letters and digits only. */
export const shadowTag = (epoch: number) => epoch.toString(36);

/** Creates an empty rebuild table beside each live table (same columns, engine, partitioning and sorting key). */
export async function createShadowTables(client: ClickHouseClient, database: string, tables: string[], tag: string): Promise<ShadowTable[]> {
  const db = assertIdentifier('database', database);
  const out: ShadowTable[] = [];
  for (const live of tables) {
    const rebuilt = suffixed(assertIdentifier('table', live), 'rebuild', tag);
    await client.command({ query: `CREATE TABLE ${db}.${rebuilt} AS ${db}.${live}` });
    out.push({ live, rebuilt });
  }
  return out;
}

/** Drops this replay's rebuild and staging tables (after a swap, or after a failure). */
export async function dropShadowTables(client: ClickHouseClient, database: string, tables: ShadowTable[], tag: string): Promise<void> {
  const db = assertIdentifier('database', database);
  for (const { live, rebuilt } of tables) {
    for (const name of [rebuilt, suffixed(live, 'swap', tag), suffixed(live, 'old', tag)]) {
      await client.command({ query: `DROP TABLE IF EXISTS ${db}.${name}` });
    }
  }
}

/** EXCHANGE TABLES needs an Atomic database (ClickHouse 20.x+); 18.16 has only Ordinary ones. */
export async function canExchangeTables(client: ClickHouseClient, database: string): Promise<boolean> {
  const [row] = await rows<{ engine: string }>(client, `SELECT engine FROM system.databases WHERE name = '${assertIdentifier('database', database)}'`);
  return row?.engine === 'Atomic';
}

/** The ClickHouse partitions a table's active parts hold. */
async function partitionsOf(client: ClickHouseClient, database: string, table: string): Promise<string[]> {
  const found = await rows<{ id: string }>(
    client,
    `SELECT DISTINCT partition_id AS id FROM system.parts WHERE database = '${database}' AND table = '${table}' AND active ORDER BY id`,
  );
  return found.map((r) => {
    if (!/^[A-Za-z0-9_-]+$/.test(r.id)) throw new SluiceError('SHADOW_PARTITION_ID', `unexpected partition id '${r.id}' in ${database}.${table}`);
    return r.id;
  });
}

async function count(client: ClickHouseClient, qualified: string): Promise<number> {
  const [row] = await rows<{ n: string }>(client, `SELECT count() AS n FROM ${qualified}`);
  return Number(row?.n ?? 0);
}

/**
 * Swaps one table's rebuilt partitions in. Call with the live writes held.
 * `exchange` says whether EXCHANGE TABLES is available (else RENAME is used).
 */
export async function swapIn(client: ClickHouseClient, database: string, table: ShadowTable, tag: string, exchange: boolean): Promise<SwapReport> {
  const started = Date.now();
  const db = assertIdentifier('database', database);
  const { live, rebuilt } = table;
  const partitions = await partitionsOf(client, db, rebuilt);
  const rowsRebuilt = await count(client, `${db}.${rebuilt}`);
  if (partitions.length === 0) return { table: live, strategy: 'nothing-rebuilt', partitions, rowsRebuilt, rowsKept: 0, ms: Date.now() - started };

  const [meta] = await rows<{ partition_key: string; sorting_key: string }>(
    client,
    `SELECT partition_key, sorting_key FROM system.tables WHERE database = '${db}' AND name = '${live}'`,
  );
  if (!meta?.sorting_key) throw new SluiceError('SHADOW_NO_KEY', `${db}.${live} has no sorting key: rows cannot be matched to their rebuilt version`);
  const key = `(${meta.sorting_key})`;
  const staging = suffixed(live, 'swap', tag);
  await client.command({ query: `DROP TABLE IF EXISTS ${db}.${staging}` });
  await client.command({ query: `CREATE TABLE ${db}.${staging} AS ${db}.${live}` });

  // Live rows of the rebuilt partitions (all of them when the whole table is swapped) that the rebuild did not replace.
  const single = partitions.length === 1;
  let scope = '1';
  if (single) {
    const [value] = await rows<{ partition: string }>(
      client,
      `SELECT any(partition) AS partition FROM system.parts WHERE database = '${db}' AND table = '${rebuilt}' AND active`,
    );
    scope = `(${meta.partition_key}) = ${value!.partition}`;
  }
  await client.command({
    query: `INSERT INTO ${db}.${staging} SELECT * FROM ${db}.${live} WHERE ${scope} AND ${key} NOT IN (SELECT ${meta.sorting_key} FROM ${db}.${rebuilt})`,
  });
  const rowsKept = await count(client, `${db}.${staging}`);
  await client.command({ query: `INSERT INTO ${db}.${staging} SELECT * FROM ${db}.${rebuilt}` });

  let strategy: SwapStrategy;
  if (single) {
    strategy = 'replace-partition';
    await client.command({ query: `ALTER TABLE ${db}.${live} REPLACE PARTITION ID '${partitions[0]}' FROM ${db}.${staging}` });
  } else if (exchange) {
    strategy = 'exchange-tables';
    await client.command({ query: `EXCHANGE TABLES ${db}.${live} AND ${db}.${staging}` });
  } else {
    strategy = 'rename-tables';
    const old = suffixed(live, 'old', tag);
    await client.command({ query: `RENAME TABLE ${db}.${live} TO ${db}.${old}, ${db}.${staging} TO ${db}.${live}` });
  }
  return { table: live, strategy, partitions, rowsRebuilt, rowsKept, ms: Date.now() - started };
}
