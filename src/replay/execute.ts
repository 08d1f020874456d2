import type { ClickHouseClient } from '@clickhouse/client';
import type { Redis } from 'ioredis';
import type { SluiceConfig } from '../config';
import { createKafka } from '../kafka';
import { createRedis } from '../redis';
import { createClickHouse } from '../sink/clickhouse';
import { RedisHoldBackend, SinkHold } from '../sink/hold';
import {
  formatShare,
  lateShareWarning,
  startStream,
  type Row,
  type RunSummary,
  type StreamDefinition,
} from '../process';
import type { Logger } from '../telemetry';
import { refuseLiveMembers } from './groups';
import type { PartitionRange, ReplayPlan } from './plan';
import { inRange, windowInRange, windowRowsRange, type EventTimeRange } from './range';
import { settleAfterInPlaceReplay, type SettledPartition } from './settle';
import {
  createShadowTables,
  dropShadowTables,
  shadowTag,
  SqlShadowTables,
  type ShadowTable,
  type SwapReport,
} from './shadow';
import { swapShadows, type SwapResult } from './swap';

export interface ReplayProgress {
  done: bigint;
  total: bigint;
}

export interface ReplayResult extends RunSummary {
  epoch: number;
  rowsWritten: Record<string, number>;
  rowsSkipped: number;
  /** Window rows written (of the stream's window table; 0 for a stream without windows). */
  windowRowsWritten: number;
  /** Said in the summary: a late share above LATE_SHARE_WARNING among the range's events. */
  warnings: string[];
  /** Shadow replays: what each table's swap did, and how long the live stream's writes were held. */
  swaps?: SwapReport[];
  heldMs?: number;
  /** In-place replays: the partitions merged afterwards, so the range reads right without FINAL (settle.ts). */
  settled?: SettledPartition[];
}

export interface ReplayOptions {
  /** Shadow mode: the longest wait for running live inserts to finish before the swap (then it gives up, changing nothing). */
  holdTimeoutMs?: number;
  onProgress?: (progress: ReplayProgress) => void;
}

/**
 * Wraps a definition so that every row it makes remembers what it covers
 * (an event's time, a window's bounds); the sink filter then keeps only the
 * rows entirely inside the range (for session windows, see windowRowsRange). Rows are the same objects all the way to
 * the sink, so a WeakMap is enough and the definition needs no changes.
 */
export function rangeFilter<E>(definition: StreamDefinition<E>, range: EventTimeRange) {
  const inside = new WeakMap<Row, boolean>();
  // Session rows only when they start a gap after `from` at least: before that they may be the tail of a session the range cuts.
  const windowRange = windowRowsRange(range, definition.windowed?.definition.assigner);
  const wrapped: StreamDefinition<E> = {
    ...definition,
    raw: definition.raw && {
      table: definition.raw.table,
      toRow: (event, meta) => {
        const row = definition.raw!.toRow(event, meta);
        const t = definition.eventTime(event);
        inside.set(row, inRange(range, t));
        return row;
      },
    },
    windowed: definition.windowed && {
      ...definition.windowed,
      toRow: (result, meta) => {
        const row = definition.windowed!.toRow(result, meta);
        inside.set(row, windowInRange(windowRange, result.windowStart, result.windowEnd));
        return row;
      },
    },
  };
  const written: Record<string, number> = {};
  let skipped = 0;
  const keep = (table: string, row: Row) => {
    const kept = inside.get(row) ?? true;
    if (kept) written[table] = (written[table] ?? 0) + 1;
    else skipped += 1;
    return kept;
  };
  return { definition: wrapped, keep, stats: () => ({ written: { ...written }, skipped }) };
}

/**
 * Runs a planned replay: a bounded run of the stream under its own consumer
 * group (set to the plan's start offsets), its own dedup and window-state
 * epoch (so nothing it reads is taken for a duplicate of the first pass, and
 * no window state of the live stream is touched), stopping at the plan's end
 * offsets, writing only rows inside the range and nothing to `.dlq`/`.late`
 * (the first pass did). Only events of the range's event time are part of
 * it: the others are read and skipped, so old events backfilled behind newer
 * ones in the same partitions are windowed as if those were not there. A
 * range with an end closes its windows at the end; an open one leaves the
 * windows its watermark did not pass to the live stream.
 * Afterwards its group and its Redis keys are removed.
 */
export async function executeReplay(
  config: SluiceConfig,
  definition: StreamDefinition<unknown>,
  plan: ReplayPlan,
  log: Logger,
  { holdTimeoutMs = 30_000, onProgress }: ReplayOptions = {},
): Promise<ReplayResult> {
  const kafka = createKafka(config);
  const admin = kafka.admin();
  await admin.connect();
  const epoch = Date.now();
  const tag = shadowTag(epoch);
  const clickhouse =
    plan.mode === 'shadow' ? createClickHouse(config.clickhouse, config.clickhouse.database) : undefined;
  let shadows: ShadowTable[] = [];
  try {
    // Checked again right before acting: the plan may be minutes old. A shadow replay runs beside the live stream.
    if (plan.mode === 'in-place') await refuseLiveMembers(admin, plan.liveGroup);
    await refuseLiveMembers(admin, plan.replayGroup);
    await admin.deleteGroups([plan.replayGroup]).catch(() => undefined);
    await admin.setOffsets(
      plan.replayGroup,
      plan.topic,
      plan.partitions.map((p) => ({ partition: p.partition, offset: p.start })),
    );

    let target = definition;
    if (clickhouse) {
      const live = [definition.raw?.table, definition.windowed?.table].filter((t): t is string => t !== undefined);
      shadows = await createShadowTables(clickhouse, config.clickhouse.database, live, tag);
      target = versionedAsOfPlan(intoShadows(definition, shadows), plan);
    }
    const filter = rangeFilter(target, plan.range);
    const ends = new Map(plan.partitions.map((p) => [p.partition, BigInt(p.end)]));
    const starts = new Map(plan.partitions.map((p) => [p.partition, BigInt(p.start)]));
    const total = plan.partitions.reduce((s, p) => s + BigInt(p.records), 0n);
    const running = await startStream(
      filter.definition,
      config,
      {
        bounded: true,
        groupId: plan.replayGroup,
        topic: plan.topic,
        epoch,
        endOffsets: ends,
        // Only the range's events reach the windows (eventTimeRange), so nothing after the range
        // moves the watermark past its last windows: with an end, every event of the range up to
        // the live group's position has been read, and the range's windows close with them.
        // Without one, the windows at the end are still the live stream's to close.
        eventTimeRange: plan.range,
        closeWindowsAtEnd: plan.range.to !== null,
        rowFilter: filter.keep,
        sideOutputs: false,
        sinkHold: false,
        sessionTimeoutMs: 10_000,
      },
      log,
    );
    const report = () => {
      const positions = running.runner.status().positions;
      let done = 0n;
      for (const [p, start] of starts) {
        const at = positions[p] === undefined ? start : BigInt(positions[p]!);
        const end = ends.get(p)!;
        done += (at > end ? end : at) - start;
      }
      onProgress?.({ done, total });
    };
    const timer = onProgress ? setInterval(report, 250) : undefined;
    let summary: RunSummary;
    try {
      summary = await running.done;
    } finally {
      if (timer) clearInterval(timer);
    }
    onProgress?.({ done: total, total });
    const stats = filter.stats();
    const rowsWritten = Object.fromEntries(
      Object.entries(stats.written).map(([t, n]) => [shadows.find((s) => s.rebuilt === t)?.live ?? t, n]),
    );
    const warning = lateShareWarning(summary, definition.name);
    const result: ReplayResult = {
      ...summary,
      epoch,
      rowsWritten,
      rowsSkipped: stats.skipped,
      windowRowsWritten: definition.windowed ? (rowsWritten[definition.windowed.table] ?? 0) : 0,
      warnings: warning ? [warning] : [],
    };
    if (clickhouse)
      Object.assign(result, await swapAll(config, clickhouse, definition.name, shadows, tag, holdTimeoutMs, log));
    else result.settled = await settleAfterInPlaceReplay(config, plan.tables, log);
    return result;
  } finally {
    if (clickhouse) {
      await dropShadowTables(clickhouse, config.clickhouse.database, shadows, tag).catch((err: unknown) =>
        log.warn({ err: String(err) }, `could not drop the replay's __rebuild_${tag} tables; drop them by hand`),
      );
      await clickhouse.close().catch(() => undefined);
    }
    await admin.deleteGroups([plan.replayGroup]).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
    await dropEpochKeys(config, definition.name, epoch).catch((err: unknown) =>
      log.warn({ err: String(err) }, 'could not remove the replay keys from Redis; they expire with their TTL'),
    );
  }
}

/**
 * What a replay's summary says besides the rows per table: the window rows it
 * wrote, the events of the range it found late (and their share), the
 * records it read that were not part of the range, and any warning.
 */
export function replaySummaryLines(windowTable: string | undefined, result: ReplayResult): string[] {
  const lines: string[] = [];
  const events = result.decoded - result.deduplicated;
  if (windowTable !== undefined) {
    lines.push(`  window rows written: ${result.windowRowsWritten} (${windowTable})`);
    lines.push(
      `  late events: ${result.late} of ${events} event(s) of the range` +
        (result.lateShare === null ? '' : ` (${formatShare(result.lateShare)})`),
    );
  }
  lines.push(
    `  records outside the range: ${result.outsideRange} (read and skipped: they are not part of the replay and move no watermark)`,
  );
  for (const w of result.warnings) lines.push(`  warning: ${w}`);
  return lines;
}

/** The same stream, writing its raw and window rows into the rebuild tables instead of the live ones. */
export function intoShadows<E>(definition: StreamDefinition<E>, shadows: ShadowTable[]): StreamDefinition<E> {
  const rebuilt = (table: string) => shadows.find((s) => s.live === table)!.rebuilt;
  return {
    ...definition,
    raw: definition.raw && { ...definition.raw, table: rebuilt(definition.raw.table) },
    windowed: definition.windowed && { ...definition.windowed, table: rebuilt(definition.windowed.table) },
  };
}

/**
 * A shadow replay's window rows carry the version of the moment its data is complete to: when the
 * live stream had processed exactly the records the replay reads (per partition, the snapshot its
 * committed offset names; else the plan's time). The live stream keeps running meanwhile, and a
 * window it writes after that is newer: most often one it completed with records the replay does not
 * read, which the replay can close only at its end with part of them (with the replay's emission time
 * that partial would win the swap); but also one made only of records the replay read that the live
 * stream closed after the snapshot, which then keeps the live values. The swap keeps the higher
 * version and counts these (liveNewer; a second replay, planned after them, rewrites them); every row
 * the live stream wrote before the snapshot is replaced.
 */
export function versionedAsOfPlan<E>(
  definition: StreamDefinition<E>,
  plan: Pick<ReplayPlan, 'plannedAt'> & { partitions: Pick<PartitionRange, 'partition' | 'committedAt'>[] },
): StreamDefinition<E> {
  const windowed = definition.windowed;
  if (!windowed) return definition;
  const asOf = new Map(plan.partitions.map((p) => [p.partition, p.committedAt ?? plan.plannedAt]));
  return {
    ...definition,
    windowed: {
      ...windowed,
      toRow: (result, meta) =>
        windowed.toRow(result, {
          ...meta,
          version: Math.min(meta.version, asOf.get(meta.partition) ?? plan.plannedAt),
        }),
    },
  };
}

/**
 * Holds the live stream's writes (through Redis, where the live processes
 * take their leases), swaps every rebuilt table in, releases (src/replay/swap.ts).
 * The hold covers only the copy and the swap statements and is renewed
 * while they run; the live stream keeps consuming and resumes its inserts
 * right after.
 */
async function swapAll(
  config: SluiceConfig,
  clickhouse: ClickHouseClient,
  stream: string,
  shadows: ShadowTable[],
  tag: string,
  holdTimeoutMs: number,
  log: Logger,
): Promise<SwapResult> {
  const redis: Redis = createRedis(config, { maxRetriesPerRequest: 2 });
  await redis.connect();
  try {
    const hold = new SinkHold(new RedisHoldBackend(redis, config.redis.keyPrefix, stream), stream);
    const result = await swapShadows(new SqlShadowTables(clickhouse, config.clickhouse.database), hold, shadows, tag, {
      holdTimeoutMs,
    });
    log.info({ swaps: result.swaps, heldMs: result.heldMs }, 'shadow tables swapped in');
    return result;
  } finally {
    redis.disconnect();
  }
}

/** Removes the replay's dedup marks and window snapshots (its own epoch only). */
async function dropEpochKeys(config: SluiceConfig, stream: string, epoch: number): Promise<void> {
  const redis: Redis = createRedis(config, { maxRetriesPerRequest: 2 });
  await redis.connect();
  try {
    for (const pattern of [
      `${config.redis.keyPrefix}dedup:${stream}:${epoch}:*`,
      `${config.redis.keyPrefix}state:${stream}:${epoch}:*`,
    ]) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await redis.unlink(...keys);
      } while (cursor !== '0');
    }
  } finally {
    redis.disconnect();
  }
}
