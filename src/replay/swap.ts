import { systemClock, type Clock } from '../clock';
import { describeError, SluiceError } from '../errors';
import { assertIdentifier } from '../sink/clickhouse/migrations';
import type { HeldWrites, SinkHold } from '../sink/hold';

/**
 * The swap of a shadow replay (docs/design.md §3.9), over a small port to the
 * tables (ShadowTables: SQL on ClickHouse in ./shadow.ts, a model in
 * test/sim/models/clickhouse.ts), with the live writes held (SinkHold).
 *
 * For each table, the swap builds the final content of every ClickHouse
 * partition the rebuild touched, in a staging table, and puts it in place in
 * one statement:
 *
 * - one partition: `REPLACE PARTITION` from the staging table, atomic for readers;
 * - several partitions: the whole table is staged and swapped, with
 *   `EXCHANGE TABLES` where the database supports it, else one `RENAME`.
 *
 * The staged content, per identity (the table's sorting key): the row with
 * the higher version of the live and the rebuilt one (ReplacingMergeTree's
 * own rule, so a live row written after the replay read its input is not
 * replaced by an older result), and on equal versions the rebuilt row. Equal
 * versions mean nothing orders the two: a raw table may write version 0 for
 * every row, and there a replay exists precisely to replace what the live
 * stream wrote with what the fixed code computes. Window partials carry
 * their emission time, so a rebuilt partial beats the first pass's and a
 * live re-emission after the replay beats the rebuilt one. Live identities
 * the rebuild did not produce are kept as they are.
 *
 * Safety: every table is staged first, then swapped; right before each swap
 * the live table's newest insert is compared with what it was when its
 * staging began, and then the hold is confirmed (renewed: a lapsed hold is
 * never re-created, so a confirmed one was held throughout, and it stands
 * for its TTL after the confirmation). If either check fails,
 * that table and the ones after it are left as they are and the swap fails
 * with an error naming what was and was not swapped: nothing live changes
 * that the staging did not see.
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
  /** Live rows of those partitions carried over: their identity was not rebuilt, or the live row was newer. */
  rowsKept: number;
  /** Of rowsKept, identities the rebuild produced but whose live row had the higher version. */
  liveNewer: number;
  ms: number;
}

/** What `stageMerged` put in the staging table. */
export interface StagedContent {
  /** Live rows carried over (one per identity). */
  rowsKept: number;
  /** Of those, identities the rebuild also produced, kept because the live version was higher. */
  liveNewer: number;
}

/**
 * The table work of a swap, on one database. Table names are plain
 * identifiers; `partition` is a ClickHouse partition id.
 */
export interface ShadowTables {
  /** Ids of the partitions holding rows of `table` (active parts), sorted. */
  partitions(table: string): Promise<string[]>;
  /** Rows of `table`, unmerged duplicates included (`count()`). */
  count(table: string): Promise<number>;
  /** Creates an empty `table` with the columns, engine, partitioning and sorting key of `like`. */
  createLike(table: string, like: string): Promise<void>;
  /** Drops `table` if it exists. */
  drop(table: string): Promise<void>;
  /** Changes whenever an insert lands in `table` (in `partition` only, if given); merges leave it as it is. */
  insertMark(table: string, partition?: string): Promise<string>;
  /**
   * Fills `staging` (empty, created like `live`) with what `live` should
   * hold after the swap, in `partition` or in the whole table: per identity,
   * the row of the higher version of `live` and `rebuilt` (the rebuilt one
   * on equal versions), and every live identity `rebuilt` does not have.
   */
  stageMerged(staging: string, live: string, rebuilt: string, partition?: string): Promise<StagedContent>;
  /** Replaces `partition` of `table` with that of `from`, atomically. */
  replacePartition(table: string, partition: string, from: string): Promise<void>;
  /** Whether `exchange` is available (an Atomic database, ClickHouse 20.x+). */
  canExchange(): Promise<boolean>;
  /** Swaps the names of `a` and `b` atomically. */
  exchange(a: string, b: string): Promise<void>;
  /** Renames `live` to `old` and `staging` to `live` in one statement. */
  renameSwap(live: string, staging: string, old: string): Promise<void>;
}

export const suffixed = (table: string, kind: 'rebuild' | 'swap' | 'old', tag: string) =>
  assertIdentifier('table', `${table}__${kind}_${tag}`);

/** A short tag for this replay's tables: letters and digits only. */
export const shadowTag = (epoch: number) => epoch.toString(36);

/** Creates an empty rebuild table beside each live table. */
export async function createShadows(tables: ShadowTables, live: string[], tag: string): Promise<ShadowTable[]> {
  const out: ShadowTable[] = [];
  for (const table of live) {
    const rebuilt = suffixed(assertIdentifier('table', table), 'rebuild', tag);
    await tables.createLike(rebuilt, table);
    out.push({ live: table, rebuilt });
  }
  return out;
}

/** Drops this replay's rebuild, staging and replaced tables (after a swap, or after a failure). */
export async function dropShadows(tables: ShadowTables, shadows: ShadowTable[], tag: string): Promise<void> {
  for (const { live, rebuilt } of shadows) {
    for (const name of [rebuilt, suffixed(live, 'swap', tag), suffixed(live, 'old', tag)]) await tables.drop(name);
  }
}

export interface SwapOptions {
  /** The longest wait for running live writes to finish before the swap (then it gives up, changing nothing). */
  holdTimeoutMs: number;
  clock?: Clock;
}

export interface SwapResult {
  swaps: SwapReport[];
  /** How long the live stream's writes were held. */
  heldMs: number;
}

interface Prepared {
  shadow: ShadowTable;
  report: SwapReport;
  staging?: string;
  /** The name the replaced live table gets (RENAME only). */
  old?: string;
  mark?: string;
  started: number;
}

/** Holds the live writes, stages every table, swaps each in after checking the hold and the live table, releases. */
export async function swapShadows(
  tables: ShadowTables,
  hold: SinkHold,
  shadows: ShadowTable[],
  tag: string,
  options: SwapOptions,
): Promise<SwapResult> {
  const clock = options.clock ?? systemClock;
  const exchange = await tables.canExchange();
  const held = await hold.hold(options.holdTimeoutMs);
  const heldAt = clock.now();
  const swapped: string[] = [];
  try {
    const prepared: Prepared[] = [];
    for (const shadow of shadows) {
      if (held.signal.aborted) throw held.signal.reason;
      prepared.push(await prepare(tables, shadow, tag, clock));
    }
    const swaps: SwapReport[] = [];
    for (const p of prepared) {
      if (p.staging) await commit(tables, held, p, exchange);
      swaps.push({ ...p.report, ms: clock.now() - p.started });
      if (p.staging) swapped.push(p.shadow.live);
    }
    return { swaps, heldMs: clock.now() - heldAt };
  } catch (err) {
    const left = shadows.map((s) => s.live).filter((t) => !swapped.includes(t));
    throw new SluiceError(
      'SHADOW_SWAP_ABORTED',
      `swap stopped: ${describeError(err)}; ${swapped.length > 0 ? `swapped in: ${swapped.join(', ')}; ` : ''}left unchanged: ${left.join(', ')} (run the replay again for those)`,
      { cause: err },
    );
  } finally {
    await held.release();
  }
}

async function prepare(tables: ShadowTables, shadow: ShadowTable, tag: string, clock: Clock): Promise<Prepared> {
  const started = clock.now();
  const { live, rebuilt } = shadow;
  const partitions = await tables.partitions(rebuilt);
  const rowsRebuilt = await tables.count(rebuilt);
  const report: SwapReport = {
    table: live,
    strategy: 'nothing-rebuilt',
    partitions,
    rowsRebuilt,
    rowsKept: 0,
    liveNewer: 0,
    ms: 0,
  };
  if (partitions.length === 0) return { shadow, report, started };
  const staging = suffixed(live, 'swap', tag);
  await tables.drop(staging);
  await tables.createLike(staging, live);
  // Several partitions: the whole table is staged, since it is swapped as a whole.
  const partition = partitions.length === 1 ? partitions[0] : undefined;
  // Read before the copy: an insert landing after it, which the copy may have missed, changes it.
  const mark = await tables.insertMark(live, partition);
  const staged = await tables.stageMerged(staging, live, rebuilt, partition);
  return {
    shadow,
    report: { ...report, rowsKept: staged.rowsKept, liveNewer: staged.liveNewer },
    staging,
    old: suffixed(live, 'old', tag),
    mark,
    started,
  };
}

async function commit(tables: ShadowTables, held: HeldWrites, p: Prepared, exchange: boolean): Promise<void> {
  const { live } = p.shadow;
  const partition = p.report.partitions.length === 1 ? p.report.partitions[0] : undefined;
  if ((await tables.insertMark(live, partition)) !== p.mark) {
    throw new SluiceError(
      'SHADOW_LIVE_CHANGED',
      `rows were inserted into ${live} after its staging copy began, despite the hold; ${live} was not swapped`,
    );
  }
  // Last: a confirmed hold stands for its whole TTL from here, and the statement below is a
  // metadata operation, far shorter than the hold's margin.
  await held.confirm();
  if (partition !== undefined) {
    p.report.strategy = 'replace-partition';
    await tables.replacePartition(live, partition, p.staging!);
  } else if (exchange) {
    p.report.strategy = 'exchange-tables';
    await tables.exchange(live, p.staging!);
  } else {
    p.report.strategy = 'rename-tables';
    await tables.renameSwap(live, p.staging!, p.old!);
  }
}
