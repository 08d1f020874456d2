import {
  WindowOperator,
  type AggregateResults,
  type AggregationSpec,
  type GroupFields,
  type Lateness,
  type PartitionEmission,
  type WindowOperatorSnapshot,
} from '../window';
import { WindowParts } from '../state';
import type { Row, WindowOutput } from './definition';
import { WindowRowOrigin, type RowOrigin } from './ports';

/** The rows one partition's closed windows became, each with the window it came from. */
export interface WindowRows {
  partition: number;
  rows: { row: Row; origin: RowOrigin }[];
  /** The partition was idle and released at this stream watermark (see PartitionEmission.releasedTo). */
  releasedTo?: number;
}

/**
 * The stream task's view of event-time windows: the window operator (one
 * watermark tracker, windows per partition) plus the stream's mapping of a
 * closed window to a ClickHouse row.
 */
export class StreamWindows<E, K extends GroupFields = GroupFields, A extends AggregationSpec<E> = AggregationSpec<E>> {
  private readonly operator: WindowOperator<E, K, A>;
  readonly table: string;
  /** A longer gap than this between two calls is a stall of the process (see `watchStalls`); unset: none is. */
  private stallAfterMs?: number;
  /** The latest processing time a call brought. */
  private lastCallAt = -Infinity;

  constructor(
    private readonly output: WindowOutput<E, K, A>,
    /** The source topic, named in the origin of every window row. */
    private readonly topic: string,
  ) {
    this.operator = new WindowOperator(output.definition, {
      outOfOrdernessMs: output.outOfOrdernessMs,
      idleTimeoutMs: output.idleTimeoutMs,
    });
    this.table = output.table;
  }

  /**
   * Time the process itself did not run (a long garbage collection, SIGSTOP, a paused VM, a blocked
   * event loop) is not idleness of its partitions: none could be read meanwhile. The runtime calls in at
   * least every `stallAfterMs / 2` (its timer), so a longer gap between two calls is such a stall, and
   * is discounted from every partition's idle time before anything judges idleness. Without this,
   * waking up found every partition idle and released a lagging one at another's watermark, turning
   * its on-time events late (and a member expelled during the stall wrote that window, short, over its
   * new owner's). Off unless asked for: a test driver's jumps of processing time are meant as idleness.
   */
  watchStalls(stallAfterMs: number): void {
    this.stallAfterMs = stallAfterMs;
  }

  /** Every call that brings a processing time passes here first (see `watchStalls`). */
  private awake(now: number): void {
    const gap = now - this.lastCallAt;
    if (this.stallAfterMs !== undefined && gap > this.stallAfterMs && Number.isFinite(gap))
      this.operator.discount(gap, now);
    if (now > this.lastCallAt) this.lastCallAt = now;
  }

  assign(partition: number, snapshot: { watermark?: unknown; windows?: unknown } | undefined, now: number): void {
    this.awake(now);
    this.operator.assign(partition, snapshot as Partial<WindowOperatorSnapshot> | undefined, now);
  }

  revoke(partition: number): void {
    this.operator.revoke(partition);
  }

  resumeClock(now: number): void {
    this.awake(now);
    this.operator.resumeClock(now);
  }

  /** The partition delivered a record that is no part of this run's event time (see WindowOperator.touch). */
  touch(partition: number, now: number): void {
    this.awake(now);
    this.operator.touch(partition, now);
  }

  add(partition: number, event: E, eventTime: number, now: number, recordTime?: number): Lateness | undefined {
    this.awake(now);
    return this.operator.add(partition, event, eventTime, now, recordTime);
  }

  /** Rows of the windows the stream watermark has passed, then early partials if the stream asks for them. */
  close(now: number, mayRelease?: (partition: number) => boolean): WindowRows[] {
    this.awake(now);
    return [...this.rows(this.operator.close(now, mayRelease), now), ...this.rows(this.operator.emitEarly(now), now)];
  }

  /** Rows of a recorded idle release, applied again after a restore from an older snapshot. */
  release(partition: number, watermark: number, now: number): WindowRows {
    this.awake(now);
    return this.rows([this.operator.release(partition, watermark)], now)[0]!;
  }

  closeAll(now: number): WindowRows[] {
    this.awake(now);
    return this.rows(this.operator.closeAll(), now);
  }

  /**
   * The partition's state for a checkpoint: the watermark, and the windows as one link of an
   * incremental chain (a base when `base`, or when the windows decide one is due), whose parts are
   * encoded off the hot path. `base` in the result says which it is.
   */
  snapshot(
    partition: number,
    base: boolean,
  ): { watermark: WindowOperatorSnapshot['watermark']; windows: WindowParts; base: boolean } {
    const { watermark, windows } = this.operator.checkpoint(partition, base);
    return { watermark, windows: new WindowParts(windows.head, windows.parts), base: windows.base };
  }

  openWindows(): number {
    return this.operator.openWindowCount();
  }

  watermark(now: number): number {
    this.awake(now);
    return this.operator.watermark(now);
  }

  private rows(emissions: PartitionEmission<K, AggregateResults<A>>[], now: number): WindowRows[] {
    // The version orders emissions of the same window: a later one (final after early, a re-emission after a replay) wins.
    return emissions.map(({ partition, windows, releasedTo }) => ({
      partition,
      ...(releasedTo === undefined ? {} : { releasedTo }),
      rows: windows.map((w) => ({
        row: this.output.toRow(w, { partition, version: now, emittedAt: now }),
        origin: new WindowRowOrigin(this.topic, partition, w.windowStart, w.windowEnd, w.fields),
      })),
    }));
  }
}
