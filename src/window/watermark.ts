import { EventTimeError, WindowDefinitionError, WindowStateError } from './errors';

export interface WatermarkSettings {
  /** Max event-time disorder expected within a partition: its watermark trails its max event time by this much. */
  outOfOrdernessMs: number;
  /** A partition with no records for this long (processing time) stops holding the stream watermark back. */
  idleTimeoutMs: number;
}

/** JSON-safe watermark state of one partition: the max event time seen (null: none yet). */
export interface PartitionWatermarkSnapshot {
  maxEventTimeMs: number | null;
}

interface PartitionClock {
  maxEventTimeMs: number;
  /** Processing time of the last record, or of the assignment when none came since. */
  lastActivityAt: number;
}

export function validateWatermarkSettings(settings: WatermarkSettings): WatermarkSettings {
  const { outOfOrdernessMs, idleTimeoutMs } = settings;
  if (!Number.isSafeInteger(outOfOrdernessMs) || outOfOrdernessMs < 0) {
    throw new WindowDefinitionError(
      `outOfOrdernessMs must be a whole number of milliseconds >= 0, got ${outOfOrdernessMs}`,
    );
  }
  if (!Number.isSafeInteger(idleTimeoutMs) || idleTimeoutMs <= 0) {
    throw new WindowDefinitionError(
      `idleTimeoutMs must be a positive whole number of milliseconds, got ${idleTimeoutMs}`,
    );
  }
  return { outOfOrdernessMs, idleTimeoutMs };
}

/**
 * Event-time progress of a stream over the partitions this process owns.
 *
 * - A partition's watermark is its max event time − outOfOrdernessMs
 *   (-Infinity until it has a record); it never decreases.
 * - The stream watermark is the minimum over the partitions that are not
 *   idle. A partition is idle once `idleTimeoutMs` of processing time passed
 *   without a record (counted from its assignment if it never had one), so a
 *   partition without records holds the stream at -Infinity until then.
 * - The stream watermark never goes backwards: when the minimum would drop
 *   (a lagging partition becomes active again, or a partition is assigned
 *   behind), it stays where it is; that partition's events behind it are
 *   judged against it.
 * - When every partition is idle, the stream watermark advances to the
 *   highest partition watermark (as Flink's watermark valve does): the input
 *   has gone quiet, so the windows of what was read can close instead of
 *   waiting for the next record.
 *
 * Processing time is passed in (`nowMs`), never read from a clock here.
 */
export class WatermarkTracker {
  private readonly settings: WatermarkSettings;
  private readonly partitions = new Map<number, PartitionClock>();
  private streamWatermark = -Infinity;

  constructor(settings: WatermarkSettings) {
    this.settings = validateWatermarkSettings(settings);
  }

  /** Starts tracking a partition, from its restored state when there is one. Re-assigning replaces its state. */
  assign(partition: number, nowMs: number, restored?: unknown): void {
    let maxEventTimeMs = -Infinity;
    if (restored !== undefined && restored !== null) {
      const m = (restored as Partial<PartitionWatermarkSnapshot>).maxEventTimeMs;
      if (typeof restored !== 'object' || !(m === null || (typeof m === 'number' && Number.isFinite(m)))) {
        throw new WindowStateError(
          `watermark state of partition ${partition} is malformed: ${JSON.stringify(restored).slice(0, 200)}`,
        );
      }
      maxEventTimeMs = m ?? -Infinity;
    }
    this.partitions.set(partition, { maxEventTimeMs, lastActivityAt: nowMs });
  }

  revoke(partition: number): void {
    this.partitions.delete(partition);
  }

  /**
   * Counts every partition as active at `nowMs`. The runtime calls this when
   * consumption resumes after a pause it imposed (sink or Redis down): time
   * spent paused is not idleness, and must not let the watermark run ahead of
   * partitions that simply could not be read.
   */
  touch(nowMs: number): void {
    for (const clock of this.partitions.values()) if (nowMs > clock.lastActivityAt) clock.lastActivityAt = nowMs;
  }

  /**
   * The `gapMs` before `nowMs` were not time in which any partition could be read (the process was
   * stopped): none of it counts toward idleness. Unlike `touch`, idleness accrued before the gap is kept,
   * so a process that stalls now and then still releases a partition that is really quiet.
   */
  discount(gapMs: number, nowMs: number): void {
    for (const clock of this.partitions.values()) clock.lastActivityAt = Math.min(nowMs, clock.lastActivityAt + gapMs);
  }

  /** One partition was read at `nowMs` without an event for the watermark: active, its watermark unchanged. */
  touchPartition(partition: number, nowMs: number): void {
    const clock = this.partitions.get(partition);
    if (clock !== undefined && nowMs > clock.lastActivityAt) clock.lastActivityAt = nowMs;
  }

  assigned(): number[] {
    return [...this.partitions.keys()].sort((a, b) => a - b);
  }

  /** Records that `partition` delivered an event with this event time at processing time `nowMs`. */
  observe(partition: number, eventTimeMs: number, nowMs: number): void {
    if (!Number.isFinite(eventTimeMs)) throw new EventTimeError(eventTimeMs);
    const clock = this.partitions.get(partition);
    if (clock === undefined)
      throw new WindowStateError(`partition ${partition} is not assigned to the watermark tracker; assign it first`);
    if (eventTimeMs > clock.maxEventTimeMs) clock.maxEventTimeMs = eventTimeMs;
    if (nowMs > clock.lastActivityAt) clock.lastActivityAt = nowMs;
  }

  /** The partition's own watermark (-Infinity before its first record). */
  partitionWatermark(partition: number): number {
    const clock = this.partitions.get(partition);
    return clock === undefined ? -Infinity : clock.maxEventTimeMs - this.settings.outOfOrdernessMs;
  }

  isIdle(partition: number, nowMs: number): boolean {
    const clock = this.partitions.get(partition);
    return clock !== undefined && nowMs - clock.lastActivityAt >= this.settings.idleTimeoutMs;
  }

  /** The stream watermark at processing time `nowMs` (monotone over calls). */
  watermark(nowMs: number): number {
    const candidate = this.candidate(nowMs);
    if (candidate > this.streamWatermark) this.streamWatermark = candidate;
    return this.streamWatermark;
  }

  /**
   * What `watermark(nowMs)` would return, without moving the stream watermark: for status and metrics.
   * Reading it must decide nothing: while reading is paused every partition looks idle, and a status
   * read then raised the watermark (which never goes back) to the highest partition's, so a partition
   * released later closed there and its on-time events went late.
   */
  peekWatermark(nowMs: number): number {
    return Math.max(this.streamWatermark, this.candidate(nowMs));
  }

  /** The minimum over active partitions, or the highest idle one when every partition is idle. */
  private candidate(nowMs: number): number {
    let minActive = Infinity;
    let maxIdle = -Infinity;
    const { idleTimeoutMs, outOfOrdernessMs } = this.settings;
    for (const clock of this.partitions.values()) {
      const wm = clock.maxEventTimeMs - outOfOrdernessMs;
      if (nowMs - clock.lastActivityAt >= idleTimeoutMs) {
        if (wm > maxIdle) maxIdle = wm;
      } else if (wm < minActive) minActive = wm;
    }
    return minActive !== Infinity ? minActive : maxIdle;
  }

  snapshot(partition: number): PartitionWatermarkSnapshot {
    const clock = this.partitions.get(partition);
    const max = clock?.maxEventTimeMs ?? -Infinity;
    return { maxEventTimeMs: max === -Infinity ? null : max };
  }
}
