import type { Cancel, Clock } from '../clock';

export interface CheckpointScheduleOptions {
  /** Checkpoint at least this often. */
  flushIntervalMs: number;
  /** Commit (save window state and offsets) at least this often; the checkpoints in between only write outputs. */
  commitIntervalMs: number;
  /** Checkpoint as soon as this many rows wait for the sink. */
  maxPendingRows: number;
  /** How often a member with nothing to commit asks Redis whether it lost state. */
  stateCheckIntervalMs: number;
  /** Wait before retrying a checkpoint that failed. */
  checkpointRetryBackoffMs: number;
  /**
   * The stream's idle timeout, if it has windows: the timer ticks at least 8 times per timeout, so that
   * a stall of the process (two ticks missed) is told apart from idleness well before a partition turns
   * idle (StreamWindows.watchStalls).
   */
  idleTimeoutMs?: number;
}

/** What the runner knows when it asks whether to checkpoint. */
export interface CheckpointCause {
  /** A checkpoint was taken and has not committed yet (it failed, and is retried as soon as possible). */
  pendingCheckpoint: boolean;
  /** Rows waiting for the sink. */
  pendingRows: number;
  /** Asked by the timer rather than after a batch: a due checkpoint is taken even with nothing new. */
  timerTick: boolean;
  /** Whether a checkpoint would have nothing to write; asked only when it matters. */
  idle: () => boolean;
}

/**
 * When the runner checkpoints, commits, checks its state and retries, and the
 * timer that asks: the runner decides what a checkpoint does, this unit only
 * when. Every time is read from the Clock, so the schedule runs unchanged on
 * simulated time and in specs on a manual clock.
 */
export class CheckpointSchedule {
  private lastCheckpointAt: number;
  private lastCommitAt: number;
  private lastStateCheckAt: number;
  private completed = 0;
  /** The pending checkpoint failed at least once and has not committed since: consumption stays paused. */
  private failing = false;
  private cancelTimer?: Cancel;

  constructor(
    private readonly clock: Clock,
    private readonly options: CheckpointScheduleOptions,
  ) {
    this.lastCheckpointAt = this.lastCommitAt = this.lastStateCheckAt = clock.now();
  }

  /**
   * Calls `tick` twice per flush interval, and 8 times per idle timeout (at most every 50 ms), so a due
   * checkpoint waits at most half an interval.
   */
  startTimer(tick: () => void): void {
    this.cancelTimer = this.clock.setInterval(tick, this.tickMs);
  }

  /** How often the timer ticks. */
  get tickMs(): number {
    const { flushIntervalMs, idleTimeoutMs = Infinity } = this.options;
    return Math.max(50, Math.floor(Math.min(flushIntervalMs / 2, idleTimeoutMs / 8)));
  }

  stopTimer(): void {
    this.cancelTimer?.();
  }

  /**
   * A checkpoint is due when one is pending (retry it), when rows piled up,
   * or when the flush interval has passed: on the timer always, after a batch
   * only if there is something to write.
   */
  checkpointDue({ pendingCheckpoint, pendingRows, timerTick, idle }: CheckpointCause): boolean {
    const due = this.clock.now() - this.lastCheckpointAt >= this.options.flushIntervalMs;
    const full = pendingRows >= this.options.maxPendingRows;
    return pendingCheckpoint || full || (due && (timerTick || !idle()));
  }

  /** Whether a checkpoint that may choose should also commit: the commit interval has passed. */
  commitDue(): boolean {
    return this.clock.now() - this.lastCommitAt >= this.options.commitIntervalMs;
  }

  /** A checkpoint was due but had nothing to do: its interval starts again. */
  checkpointSkipped(committing: boolean): void {
    const now = this.clock.now();
    this.lastCheckpointAt = now;
    if (committing) this.lastCommitAt = now;
  }

  /** A checkpoint landed; one that committed also proves the state is still there (no state check needed for a while). */
  checkpointDone(committed: boolean): void {
    this.failing = false;
    this.completed += 1;
    this.lastCheckpointAt = this.clock.now();
    if (committed) this.lastCommitAt = this.lastStateCheckAt = this.clock.now();
  }

  /** A checkpoint failed and is kept for the next attempt. */
  checkpointFailed(): void {
    this.failing = true;
  }

  /** The failing checkpoint was dropped (its partitions are restored instead): nothing is retried. */
  checkpointDropped(): void {
    this.failing = false;
  }

  /** Waits before a failed checkpoint is tried again. */
  retryDelay(): Promise<void> {
    return this.clock.sleep(this.options.checkpointRetryBackoffMs);
  }

  /** True (and the interval starts again) when the state-check interval has passed. */
  takeStateCheck(): boolean {
    if (this.clock.now() - this.lastStateCheckAt < this.options.stateCheckIntervalMs) return false;
    this.lastStateCheckAt = this.clock.now();
    return true;
  }

  /** A checkpoint failed and has not landed since. */
  get retrying(): boolean {
    return this.failing;
  }

  get lastCheckpointTime(): number {
    return this.lastCheckpointAt;
  }

  /** Checkpoints that landed. */
  get checkpoints(): number {
    return this.completed;
  }
}
