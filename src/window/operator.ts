import type { AggregateResults, AggregationSpec } from './aggregations';
import type { GroupFields, WindowDefinition } from './definition';
import { WindowStateError } from './errors';
import { PartitionWindows, type WindowResult } from './partition-windows';
import type { PartitionWindowsSnapshot } from './snapshot-encoding';
import type { WindowsCheckpoint } from './partition-windows';
import { WatermarkTracker, type PartitionWatermarkSnapshot, type WatermarkSettings } from './watermark';

/** How an event was late: it arrived after all its windows closed, changed nothing and belongs in `<topic>.late`. */
export interface Lateness {
  windowStart: number;
  windowEnd: number;
  watermark: number;
  eventTime: number;
}

/** What one partition emitted (its own partial rows). */
export interface PartitionEmission<K extends GroupFields, R> {
  partition: number;
  windows: WindowResult<K, R>[];
  /**
   * Set when the partition, idle, closed at the stream watermark above its own and above what it had
   * applied: its windows up to this watermark are released, and its next events judged against it.
   */
  releasedTo?: number;
}

/** Everything a partition needs to resume elsewhere; JSON-safe. */
export interface WindowOperatorSnapshot {
  watermark: PartitionWatermarkSnapshot;
  windows: PartitionWindowsSnapshot;
}

/**
 * The event-time work of one stream in one process: a WatermarkTracker over
 * the partitions it owns and one PartitionWindows per partition, driven by the
 * stream watermark. The consumer runtime and the window test driver both use
 * it, so tests exercise the code that runs.
 *
 * Typical loop: `add` each record, then `close(now)` after the batch (and on a
 * timer, so idle partitions release windows); at a checkpoint `snapshot` each
 * partition; on assignment `assign(partition, savedSnapshot, now)`.
 */
export class WindowOperator<E, K extends GroupFields, A extends AggregationSpec<E>> {
  private readonly tracker: WatermarkTracker;
  private readonly partitions = new Map<number, PartitionWindows<E, K, A>>();
  /** Hopping windows that accepted events could not join because those windows had closed (the events were not late: other windows took them). */
  missedWindowCount = 0;

  constructor(
    readonly definition: WindowDefinition<E, K, A>,
    settings: WatermarkSettings,
  ) {
    this.tracker = new WatermarkTracker(settings);
  }

  /** Takes a partition over, restoring it from `snapshot` (as `snapshot(partition)` returned, after JSON) when given. */
  assign(partition: number, snapshot: Partial<WindowOperatorSnapshot> | undefined, nowMs: number): void {
    const windows =
      snapshot?.windows === undefined
        ? new PartitionWindows(this.definition)
        : PartitionWindows.restore(this.definition, snapshot.windows);
    this.tracker.assign(partition, nowMs, snapshot?.watermark);
    this.partitions.get(partition)?.dispose();
    this.partitions.set(partition, windows);
  }

  /** Drops a partition's state (its new owner restores it from the last snapshot). */
  revoke(partition: number): void {
    this.tracker.revoke(partition);
    this.partitions.get(partition)?.dispose();
    this.partitions.delete(partition);
  }

  assigned(): number[] {
    return this.tracker.assigned();
  }

  /** After a pause imposed by the runtime: paused time is not idleness (see WatermarkTracker.touch). */
  resumeClock(nowMs: number): void {
    this.tracker.touch(nowMs);
  }

  /** The process did not run for `gapMs` before `nowMs`: that time is not idleness (see WatermarkTracker.discount). */
  discount(gapMs: number, nowMs: number): void {
    this.tracker.discount(gapMs, nowMs);
  }

  /**
   * The partition delivered a record that moves no watermark (a replay skips records outside its
   * event-time range): it is being read, so it is not idle.
   */
  touch(partition: number, nowMs: number): void {
    this.tracker.touchPartition(partition, nowMs);
  }

  private windowsOf(partition: number): PartitionWindows<E, K, A> {
    const windows = this.partitions.get(partition);
    if (windows === undefined)
      throw new WindowStateError(`partition ${partition} is not assigned to the window operator; assign it first`);
    return windows;
  }

  /**
   * Adds an event read from `partition`; returns the late-event details when
   * every window of it had closed.
   *
   * Lateness is judged against the partition's own watermark (or a higher one
   * its windows were already closed at), not the stream's minimum: a
   * partition's windows hold only its own events, and its own watermark
   * depends only on its own record order. So the verdicts are the same however
   * the consumer interleaves partitions, and the same after a crash, restart or
   * rebalance as in a run without one (docs/design.md §3.3). The stream watermark
   * still releases idle partitions (see `close`).
   *
   * `recordTimeMs`, the record's Kafka timestamp when it has one, bounds how
   * far the event moves the partition's watermark: an event stamped ahead of
   * its record (a producer's clock, or anyone who can write to the topic)
   * goes into its window, but advances the watermark only to the record's
   * time. One event stamped an hour ahead would otherwise make every on-time
   * event of its partition late for an hour.
   */
  add(partition: number, event: E, eventTimeMs: number, nowMs: number, recordTimeMs?: number): Lateness | undefined {
    const windows = this.windowsOf(partition);
    this.tracker.observe(
      partition,
      recordTimeMs !== undefined && recordTimeMs < eventTimeMs ? recordTimeMs : eventTimeMs,
      nowMs,
    );
    const outcome = windows.add(event, eventTimeMs, this.tracker.partitionWatermark(partition));
    if (outcome.kind === 'added') {
      this.missedWindowCount += outcome.missedWindows;
      return undefined;
    }
    return {
      windowStart: outcome.windowStart,
      windowEnd: outcome.windowEnd,
      watermark: outcome.watermark,
      eventTime: eventTimeMs,
    };
  }

  /** The stream watermark at `nowMs`, as status and tests read it: reading it moves nothing (see WatermarkTracker.peekWatermark). */
  watermark(nowMs: number): number {
    return this.tracker.peekWatermark(nowMs);
  }

  /**
   * Closes, in every partition, the windows its watermark has passed: its own,
   * or, once it is idle, the stream watermark when that is higher (the others
   * moved on without it), unless `mayRelease` holds the partition back. An
   * active partition never closes at the stream watermark: that one never
   * goes back, so after a rebalance it can be ahead of a partition just taken
   * over at its committed offset, and closing there would turn that
   * partition's on-time events late.
   */
  close(
    nowMs: number,
    mayRelease: (partition: number) => boolean = () => true,
  ): PartitionEmission<K, AggregateResults<A>>[] {
    const stream = this.tracker.watermark(nowMs);
    const out: PartitionEmission<K, AggregateResults<A>>[] = [];
    for (const partition of this.assigned()) {
      const own = this.tracker.partitionWatermark(partition);
      const windows = this.partitions.get(partition)!;
      const released =
        stream > own && stream > windows.watermark && this.tracker.isIdle(partition, nowMs) && mayRelease(partition);
      const closed = windows.closeUpTo(released ? stream : own);
      if (released) out.push({ partition, windows: closed, releasedTo: stream });
      else if (closed.length > 0) out.push({ partition, windows: closed });
    }
    return out;
  }

  /**
   * Applies a release recorded earlier (see PartitionEmission.releasedTo) to a partition restored from
   * a snapshot taken before it: closes its windows up to `watermarkMs`, as the release did.
   */
  release(partition: number, watermarkMs: number): PartitionEmission<K, AggregateResults<A>> {
    return { partition, windows: this.windowsOf(partition).closeUpTo(watermarkMs) };
  }

  /** End of a bounded run: closes every window of every partition. */
  closeAll(): PartitionEmission<K, AggregateResults<A>>[] {
    return this.collect((windows) => windows.closeAll());
  }

  /** Early partials of changed open windows, when the definition has `earlyEmitIntervalMs` and it has elapsed. */
  emitEarly(nowMs: number): PartitionEmission<K, AggregateResults<A>>[] {
    return this.collect((windows) => windows.emitEarly(nowMs));
  }

  private collect(
    step: (windows: PartitionWindows<E, K, A>) => WindowResult<K, AggregateResults<A>>[],
  ): PartitionEmission<K, AggregateResults<A>>[] {
    const out: PartitionEmission<K, AggregateResults<A>>[] = [];
    for (const partition of this.assigned()) {
      const windows = step(this.partitions.get(partition)!);
      if (windows.length > 0) out.push({ partition, windows });
    }
    return out;
  }

  snapshot(partition: number): WindowOperatorSnapshot {
    return { watermark: this.tracker.snapshot(partition), windows: this.windowsOf(partition).snapshot() };
  }

  /** `snapshot(partition)` with the windows as their JSON text (see PartitionWindows.snapshotJson): what checkpoints save. */
  snapshotJson(partition: number): { watermark: WindowOperatorSnapshot['watermark']; windowsJson: string } {
    return { watermark: this.tracker.snapshot(partition), windowsJson: this.windowsOf(partition).snapshotJson() };
  }

  /** An incremental checkpoint of the partition (see PartitionWindows.checkpoint): what the runtime saves. */
  checkpoint(partition: number, base = false): { watermark: PartitionWatermarkSnapshot; windows: WindowsCheckpoint } {
    return { watermark: this.tracker.snapshot(partition), windows: this.windowsOf(partition).checkpoint(base) };
  }

  openWindowCount(partition?: number): number {
    if (partition !== undefined) return this.windowsOf(partition).openWindowCount();
    let n = 0;
    for (const windows of this.partitions.values()) n += windows.openWindowCount();
    return n;
  }
}
