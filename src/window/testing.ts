import type { AggregateResults, AggregationSpec } from './aggregations';
import type { GroupFields, WindowDefinition } from './definition';
import { WindowOperator, type Lateness, type WindowOperatorSnapshot } from './operator';
import type { WindowResult } from './partition-windows';
import type { WatermarkSettings } from './watermark';

/** A window row as the driver saw it emitted, with the partition that emitted it. */
export interface EmittedWindow<K extends GroupFields, R> extends WindowResult<K, R> {
  partition: number;
}

export interface WindowTestDriverOptions extends WatermarkSettings {
  /** Partitions assigned at start (more can be assigned later). */
  partitions: number[];
  /** Processing-time clock at start; default 0. */
  startTimeMs?: number;
}

/**
 * Runs a window definition the way the consumer runtime does (WindowOperator,
 * watermark tracking, idle partitions, early emissions, snapshots), without
 * Kafka: pipe events into partitions, move a processing-time clock, read the
 * emitted windows and the late events.
 *
 * After every `pipe` and every clock move the driver closes what the stream
 * watermark allows and takes early emissions, as the runtime does after a
 * batch and on its timer. Snapshots pass through JSON, as they do via Redis.
 */
export class WindowTestDriver<E, K extends GroupFields, A extends AggregationSpec<E>> {
  private operator: WindowOperator<E, K, A>;
  private now: number;
  private output: EmittedWindow<K, AggregateResults<A>>[] = [];
  private late: (Lateness & { partition: number; event: E })[] = [];

  constructor(
    readonly definition: WindowDefinition<E, K, A>,
    private readonly options: WindowTestDriverOptions,
  ) {
    this.now = options.startTimeMs ?? 0;
    this.operator = new WindowOperator(definition, options);
    for (const p of options.partitions) this.operator.assign(p, undefined, this.now);
  }

  get nowMs(): number {
    return this.now;
  }

  /** The stream watermark now. */
  get watermark(): number {
    return this.operator.watermark(this.now);
  }

  /** One event read from `partition` at the current processing time. Returns its late record if it was late. */
  pipe(partition: number, event: E, eventTimeMs: number): (Lateness & { partition: number; event: E }) | undefined {
    const late = this.operator.add(partition, event, eventTimeMs, this.now);
    let record: (Lateness & { partition: number; event: E }) | undefined;
    if (late) {
      record = { ...late, partition, event };
      this.late.push(record);
    }
    this.flush();
    return record;
  }

  /** Pipes several events, in order, at the current processing time. */
  pipeAll(events: { partition: number; event: E; eventTimeMs: number }[]): void {
    for (const { partition, event, eventTimeMs } of events) this.pipe(partition, event, eventTimeMs);
  }

  /** Moves processing time forward (idle timeouts, early-emission interval), then closes what is due. */
  advanceTime(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`advanceTime needs a non-negative duration, got ${ms}`);
    this.now += ms;
    this.flush();
  }

  /** End of input of a bounded run: every open window closes. */
  endOfInput(): void {
    this.record(this.operator.closeAll());
  }

  private flush(): void {
    this.record(this.operator.close(this.now));
    this.record(this.operator.emitEarly(this.now));
  }

  private record(emissions: { partition: number; windows: WindowResult<K, AggregateResults<A>>[] }[]): void {
    for (const { partition, windows } of emissions) for (const w of windows) this.output.push({ ...w, partition });
  }

  /** Emitted windows since the last read, in emission order. */
  readOutput(): EmittedWindow<K, AggregateResults<A>>[] {
    const out = this.output;
    this.output = [];
    return out;
  }

  /** Late events since the last read. */
  readLate(): (Lateness & { partition: number; event: E })[] {
    const out = this.late;
    this.late = [];
    return out;
  }

  /** The partition's state, through JSON (what the runtime saves at a checkpoint). */
  snapshot(partition: number): WindowOperatorSnapshot {
    return JSON.parse(JSON.stringify(this.operator.snapshot(partition))) as WindowOperatorSnapshot;
  }

  /** Gives a partition up (a rebalance), returning the snapshot its next owner restores. */
  revoke(partition: number): WindowOperatorSnapshot {
    const snapshot = this.snapshot(partition);
    this.operator.revoke(partition);
    return snapshot;
  }

  /** Takes a partition (back) over, from a snapshot or empty. */
  assign(partition: number, snapshot?: WindowOperatorSnapshot): void {
    this.operator.assign(partition, snapshot, this.now);
    this.flush();
  }

  /** A crash and restart right after a checkpoint: every partition is snapshotted and restored into a new operator. */
  restart(): void {
    const partitions = this.operator.assigned();
    const snapshots = partitions.map((p) => this.snapshot(p));
    this.operator = new WindowOperator(this.definition, this.options);
    partitions.forEach((p, i) => this.operator.assign(p, snapshots[i], this.now));
    this.flush();
  }

  openWindowCount(partition?: number): number {
    return this.operator.openWindowCount(partition);
  }
}

/**
 * Merges partition partials of the same fixed window and key into one row, as
 * the downstream store does (count and sum add, min/max compare, distinct sets
 * union, sketches merge registers). For tests that check totals across
 * partitions. Sessions are per partition and are not merged here.
 */
export function mergePartials<E, K extends GroupFields, A extends AggregationSpec<E>>(
  definition: WindowDefinition<E, K, A>,
  rows: WindowResult<K, AggregateResults<A>>[],
): WindowResult<K, AggregateResults<A>>[] {
  const merged = new Map<string, WindowResult<K, AggregateResults<A>>>();
  for (const row of rows) {
    const id = `${row.windowStart}|${row.windowEnd}|${row.key}`;
    const previous = merged.get(id);
    if (previous === undefined) {
      merged.set(id, { ...row, aggregates: { ...row.aggregates } });
      continue;
    }
    const aggregates = previous.aggregates as Record<string, unknown>;
    const incoming = row.aggregates as Record<string, unknown>;
    definition.names.forEach((name, i) => {
      aggregates[name] = definition.aggregations[i]!.mergeResults(aggregates[name], incoming[name]);
    });
    previous.final = previous.final && row.final;
  }
  return [...merged.values()].sort(
    (a, b) =>
      a.windowEnd - b.windowEnd || a.windowStart - b.windowStart || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
  );
}
