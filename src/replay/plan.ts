import type { KafkaAdmin } from '../kafka';
import type { ClickHouseClient } from '@clickhouse/client';
import { ConfigError } from '../errors';
import { stateSavedAt } from '../state';
import { groupIdOf, type StreamDefinition } from '../process';
import { clamp, offsetsForTime, partitionOffsets, type PartitionOffsets } from './groups';
import { snapToWindows, windowRowsRange, type EventTimeRange, type ReplayBound } from './range';

export interface ReplayRequest {
  from: ReplayBound;
  to?: ReplayBound;
  /** Moves every start offset by this many records (negative: earlier), like kafka-consumer-groups --shift-by. */
  shiftBy?: number;
  /** The live group whose position ends the replay (default `sluice.<stream>`). */
  group?: string;
  /** Read this topic instead of the definition's. */
  topic?: string;
  /** How far before its event time a record's Kafka timestamp may be (producer/broker clock skew). */
  clockSkewMs?: number;
  /** Rebuild into shadow tables and swap them in while the live stream runs, instead of rewriting in place. */
  shadow?: boolean;
}

export interface PartitionRange {
  partition: number;
  start: string;
  end: string;
  records: string;
  /**
   * When the live stream had processed exactly the records before `end` (the time of the snapshot
   * its commit of `end` names), when the commit says. A commit taken while a partition re-read records
   * after an older snapshot names a snapshot below its offset (it keeps the offset Kafka had): its time
   * is then later than that moment, yet every record before `end` had been processed by it, and the
   * windows the re-read writes after it are closed again from those same records. A shadow replay's
   * window rows carry no newer version than this, so a row the live stream wrote since wins the swap
   * (see versionedAsOfPlan).
   */
  committedAt?: number;
}

/** What tables a replay rewrites, and how much of them, before it runs. */
export interface TableChange {
  table: string;
  kind: 'raw' | 'windows';
  /** Rows currently in the range (FINAL), all of which the replay replaces; null if the table has no known time column. */
  rowsInRange: number | null;
  /** ClickHouse partitions (partition key values) holding those rows. */
  partitions: string[];
}

export interface ReplayPlan {
  stream: string;
  mode: 'in-place' | 'shadow';
  topic: string;
  liveGroup: string;
  replayGroup: string;
  /** When the plan read the live group's position (a shadow replay's versions where a partition has no committedAt). */
  plannedAt: number;
  /** Event-time range whose rows are rewritten, widened to whole windows; null = open. */
  range: EventTimeRange;
  windows: { first: number; last: number; count: number } | null;
  partitions: PartitionRange[];
  totalRecords: string;
  tables: TableChange[];
  warnings: string[];
}

const DEFAULT_CLOCK_SKEW_MS = 5 * 60_000;

/**
 * Decides what a replay reads and what it rewrites (docs/design.md §3.9).
 *
 * Start: for a time, the first offset whose Kafka timestamp is at or after
 * (range start − clock skew). Kafka timestamps are producer or broker clock
 * times, not event times; records are stamped when they are written, which is
 * after the event happened, so every event of the range lies at or after that
 * offset unless a clock put its timestamp more than the skew before its event
 * time. A backfill (old events produced today) is stamped today, so it lies
 * after the start too, among newer events. Reading more than needed is
 * harmless: events outside the range are skipped before dedup and windows.
 *
 * End: the live group's committed offsets (where the live stream got to), or
 * the end of the topic when it has none. Windows of the range the live
 * stream closed were closed by records before that point, and the replay sees
 * the same records with the same per-partition watermarks, so it closes them
 * with the same contents; windows still open there are left to the live stream.
 */
export async function planReplay(
  admin: KafkaAdmin,
  clickhouse: ClickHouseClient | undefined,
  definition: StreamDefinition<unknown>,
  request: ReplayRequest,
): Promise<ReplayPlan> {
  const topic = request.topic ?? definition.source.topic;
  const liveGroup = request.group ?? groupIdOf(definition);
  const warnings: string[] = [];
  const assigner = definition.windowed?.definition.assigner;
  const requested: EventTimeRange = {
    from: request.from.kind === 'time' ? request.from.ms : null,
    to: request.to?.kind === 'time' ? request.to.ms : null,
  };
  if (requested.from !== null && requested.to !== null && requested.to <= requested.from) {
    throw new ConfigError(
      `--to must be after --from (got ${new Date(requested.from).toISOString()} .. ${new Date(requested.to).toISOString()})`,
    );
  }
  const range = snapToWindows(requested, assigner);
  if (assigner?.kind === 'session' && range.from !== null) {
    warnings.push(
      `session windows cannot be aligned to the range: a session starting less than the gap (${assigner.gapMs} ms) after --from may have begun before it, so only sessions starting at or after ${new Date(range.from + assigner.gapMs).toISOString()} are rewritten; earlier ones are kept as the live stream wrote them (raw rows of the whole range are rewritten)`,
    );
  }

  // Before reading the position: whatever the live group had committed then, it committed before this.
  const plannedAt = Date.now();
  const offsets = await partitionOffsets(admin, liveGroup, topic);
  const starts = await startOffsets(admin, topic, offsets, request, range);
  const partitions: PartitionRange[] = [];
  let total = 0n;
  let unread = 0n;
  for (const p of offsets) {
    let start = starts.get(p.partition) ?? p.low;
    if (request.shiftBy) start += BigInt(request.shiftBy);
    start = clamp(start, p.low, p.high);
    let end =
      request.to?.kind === 'offsets' && request.to.offsets.has(p.partition)
        ? request.to.offsets.get(p.partition)!
        : (p.committed ?? p.high);
    end = clamp(end, start, p.high);
    const committedAt = end === p.committed ? stateSavedAt(p.metadata) : undefined;
    partitions.push({
      partition: p.partition,
      start: start.toString(),
      end: end.toString(),
      records: (end - start).toString(),
      ...(committedAt === undefined ? {} : { committedAt }),
    });
    total += end - start;
    if (request.to?.kind !== 'offsets' && p.committed !== null) unread += p.high - end;
    if (request.from.kind === 'earliest' && p.low > 0n)
      warnings.push(
        `partition ${p.partition}: records before offset ${p.low} were deleted by retention; their results cannot be replayed`,
      );
  }
  // Old events produced into the topic are stamped with their produce time (LogAppendTime), so they
  // lie after the start above whatever their event time; but the replay ends where the live group got
  // to, and records written after that are not read. A shadow replay always trails the live stream a
  // little, so only an in-place one (the live group stopped) says so.
  if (unread > 0n && !request.shadow) {
    warnings.push(
      `${unread} record(s) were written after the live group's position and are not read: if they hold events of the range (a backfill produced while the stream was stopped), run the stream first (sluice run ${definition.name} --bounded) and then replay`,
    );
  }
  if (request.from.kind === 'offsets' && range.from === null) {
    warnings.push(
      '--from is an offset: windows already open at those offsets are recomputed from the replayed records only (give --from as a time to rewrite whole windows)',
    );
  }

  const windows =
    range.from !== null && range.to !== null && assigner && assigner.kind !== 'session'
      ? {
          first: range.from,
          last: range.to - assigner.sizeMs,
          count: Math.max(0, Math.floor((range.to - assigner.sizeMs - range.from) / assigner.advanceMs) + 1),
        }
      : null;
  const tables = clickhouse ? await tableChanges(clickhouse, definition, range, windowRowsRange(range, assigner)) : [];
  const mode = request.shadow ? 'shadow' : 'in-place';
  if (mode === 'shadow' && tables.some((t) => t.partitions.length > 1)) {
    warnings.push(
      'the range spans several ClickHouse partitions of a table: that table is staged whole and swapped with EXCHANGE TABLES or RENAME, which copies all its rows',
    );
  }
  return {
    stream: definition.name,
    mode,
    topic,
    liveGroup,
    replayGroup: `${liveGroup}.${mode === 'shadow' ? 'shadow' : 'replay'}`,
    plannedAt,
    range,
    windows,
    partitions,
    totalRecords: total.toString(),
    tables,
    warnings,
  };
}

async function startOffsets(
  admin: KafkaAdmin,
  topic: string,
  offsets: PartitionOffsets[],
  request: ReplayRequest,
  range: EventTimeRange,
): Promise<Map<number, bigint>> {
  const from = request.from;
  if (from.kind === 'earliest') return new Map(offsets.map((p) => [p.partition, p.low]));
  if (from.kind === 'offsets')
    return new Map(offsets.map((p) => [p.partition, from.offsets.get(p.partition) ?? p.low]));
  const skew = request.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS;
  return offsetsForTime(admin, topic, (range.from ?? from.ms) - skew);
}

/** Conventional time columns of the tables a stream writes: raw event time, window bounds. */
async function tableChanges(
  clickhouse: ClickHouseClient,
  definition: StreamDefinition<unknown>,
  range: EventTimeRange,
  windowRange: EventTimeRange,
): Promise<TableChange[]> {
  const seconds = (ms: number) => Math.floor(ms / 1000);
  const out: TableChange[] = [];
  const targets: { table: string; kind: 'raw' | 'windows' }[] = [];
  if (definition.raw) targets.push({ table: definition.raw.table, kind: 'raw' });
  if (definition.windowed) targets.push({ table: definition.windowed.table, kind: 'windows' });
  for (const { table, kind } of targets) {
    const meta = await (
      await clickhouse.query({
        query: `SELECT partition_key AS key, (SELECT groupArray(name) FROM system.columns WHERE database = currentDatabase() AND table = '${table}') AS columns
                FROM system.tables WHERE database = currentDatabase() AND name = '${table}'`,
        format: 'JSONEachRow',
      })
    ).json<{ key: string; columns: string[] }>();
    const info = meta[0];
    const columns = new Set(info?.columns ?? []);
    let where: string | undefined;
    const cond: string[] = [];
    if (kind === 'raw' && columns.has('event_time')) {
      if (range.from !== null) cond.push(`event_time >= ${seconds(range.from)}`);
      if (range.to !== null) cond.push(`event_time < ${seconds(range.to)}`);
      where = cond.join(' AND ') || '1';
    } else if (kind === 'windows' && columns.has('window_start') && columns.has('window_end')) {
      if (windowRange.from !== null) cond.push(`window_start >= ${seconds(windowRange.from)}`);
      if (windowRange.to !== null) cond.push(`window_end <= ${seconds(windowRange.to)}`);
      where = cond.join(' AND ') || '1';
    }
    if (!info || where === undefined) {
      out.push({ table, kind, rowsInRange: null, partitions: [] });
      continue;
    }
    const key = info.key || 'tuple()';
    const rows = await (
      await clickhouse.query({
        query: `SELECT toString(${key}) AS partition, count() AS n FROM ${table} FINAL WHERE ${where} GROUP BY partition ORDER BY partition`,
        format: 'JSONEachRow',
      })
    ).json<{ partition: string; n: string }>();
    out.push({
      table,
      kind,
      rowsInRange: rows.reduce((s, r) => s + Number(r.n), 0),
      partitions: rows.map((r) => r.partition),
    });
  }
  return out;
}

export function formatPlan(plan: ReplayPlan): string[] {
  const time = (ms: number | null) => (ms === null ? 'open' : new Date(ms).toISOString());
  const lines = [
    `replay ${plan.stream}: topic ${plan.topic}, replay group ${plan.replayGroup} (live group ${plan.liveGroup} is not changed)`,
    plan.mode === 'shadow'
      ? `  mode              shadow: rebuilt into <table>__rebuild_* while the live stream runs, then the changed partitions are swapped in`
      : `  mode              in place: rows are rewritten in the live tables (the live group must have no members)`,
    `  event-time range  [${time(plan.range.from)}, ${time(plan.range.to)})  (widened to whole windows)`,
  ];
  if (plan.windows)
    lines.push(
      `  windows           ${plan.windows.count}, starting ${time(plan.windows.first)} .. ${time(plan.windows.last)}`,
    );
  lines.push(
    `  records to read   ${plan.totalRecords}` +
      (plan.range.from !== null || plan.range.to !== null
        ? ' (only events inside the range are replayed: the others are read and skipped)'
        : ''),
  );
  for (const p of plan.partitions)
    lines.push(
      `    partition ${String(p.partition).padStart(3)}  offsets ${p.start} .. ${p.end}  (${p.records} records)`,
    );
  for (const t of plan.tables) {
    lines.push(
      `  table ${t.table}: ${t.rowsInRange === null ? 'rows in range unknown (no event_time/window_start column)' : `${t.rowsInRange} row(s) in range will be replaced`}` +
        (t.partitions.length > 0 ? `; ClickHouse partitions ${t.partitions.join(', ')}` : '') +
        (plan.mode === 'shadow'
          ? t.partitions.length > 1
            ? '; swapped as a whole table'
            : '; swapped by REPLACE PARTITION'
          : ''),
    );
  }
  for (const w of plan.warnings) lines.push(`  warning: ${w}`);
  return lines;
}
