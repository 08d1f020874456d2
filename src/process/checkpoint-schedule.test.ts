import { ManualClock } from '../sink/manual-clock';
import { CheckpointSchedule, type CheckpointCause } from './checkpoint-schedule';

const OPTIONS = {
  flushIntervalMs: 1000,
  commitIntervalMs: 5000,
  maxPendingRows: 100,
  stateCheckIntervalMs: 3000,
  checkpointRetryBackoffMs: 500,
};

function setup() {
  const clock = new ManualClock(1_000_000);
  const schedule = new CheckpointSchedule(clock, OPTIONS);
  return { clock, schedule };
}

/** After a batch, with a few rows waiting and something to write. */
const afterBatch: CheckpointCause = { pendingCheckpoint: false, pendingRows: 1, timerTick: false, idle: () => false };

describe('CheckpointSchedule', () => {
  it('ticks twice per flush interval until stopped, never more often than every 50 ms', async () => {
    const { clock, schedule } = setup();
    const ticks: number[] = [];
    schedule.startTimer(() => ticks.push(clock.now() - 1_000_000));
    await clock.advance(1600);
    expect(ticks).toEqual([500, 1000, 1500]);
    schedule.stopTimer();
    await clock.advance(5000);
    expect(ticks).toHaveLength(3);

    const fast = new CheckpointSchedule(clock, { ...OPTIONS, flushIntervalMs: 30 });
    let fastTicks = 0;
    fast.startTimer(() => fastTicks++);
    await clock.advance(200);
    fast.stopTimer();
    expect(fastTicks).toBe(4);
  });

  it('ticks at least 8 times per idle timeout, so a stall of two ticks is well inside it', async () => {
    const clock = new ManualClock(0);
    const slowFlush = new CheckpointSchedule(clock, { ...OPTIONS, flushIntervalMs: 30_000, idleTimeoutMs: 10_000 });
    let ticks = 0;
    slowFlush.startTimer(() => ticks++);
    await clock.advance(10_000);
    slowFlush.stopTimer();
    expect({ tickMs: slowFlush.tickMs, ticks }).toEqual({ tickMs: 1250, ticks: 8 });
    // Without windows, or with a long idle timeout, the flush interval decides.
    expect(new CheckpointSchedule(clock, OPTIONS).tickMs).toBe(500);
    expect(new CheckpointSchedule(clock, { ...OPTIONS, idleTimeoutMs: 60_000 }).tickMs).toBe(500);
  });

  it('is due once the flush interval passed: after a batch only with something to write, on the timer always', async () => {
    const { clock, schedule } = setup();
    const idle = { ...afterBatch, idle: () => true };
    await clock.advance(999);
    expect(schedule.checkpointDue(afterBatch)).toBe(false);
    expect(schedule.checkpointDue({ ...idle, timerTick: true })).toBe(false);
    await clock.advance(1);
    expect(schedule.checkpointDue(afterBatch)).toBe(true);
    expect(schedule.checkpointDue(idle)).toBe(false);
    expect(schedule.checkpointDue({ ...idle, timerTick: true })).toBe(true);
  });

  it('is due at once when rows piled up or a checkpoint waits to be retried, without asking whether anything is idle', () => {
    const { schedule } = setup();
    const idle = jest.fn(() => true);
    expect(schedule.checkpointDue({ ...afterBatch, idle, pendingRows: 99 })).toBe(false);
    expect(idle).not.toHaveBeenCalled(); // the interval has not passed: idleness does not matter
    expect(schedule.checkpointDue({ ...afterBatch, idle, pendingRows: 100 })).toBe(true);
    expect(schedule.checkpointDue({ ...afterBatch, idle, pendingCheckpoint: true })).toBe(true);
    expect(idle).not.toHaveBeenCalled();
  });

  it('starts the flush interval again after a checkpoint, done or skipped for want of work', async () => {
    const { clock, schedule } = setup();
    await clock.advance(1000);
    schedule.checkpointDone(false);
    expect(schedule.lastCheckpointTime).toBe(1_001_000);
    await clock.advance(999);
    expect(schedule.checkpointDue(afterBatch)).toBe(false);
    await clock.advance(1);
    expect(schedule.checkpointDue(afterBatch)).toBe(true);
    schedule.checkpointSkipped(false);
    expect(schedule.checkpointDue(afterBatch)).toBe(false);
    expect(schedule.lastCheckpointTime).toBe(1_002_000);
    expect(schedule.checkpoints).toBe(1); // a skipped checkpoint is not counted
  });

  it('makes a checkpoint commit once the commit interval passed since the last commit', async () => {
    const { clock, schedule } = setup();
    await clock.advance(4999);
    expect(schedule.commitDue()).toBe(false);
    await clock.advance(1);
    expect(schedule.commitDue()).toBe(true);
    schedule.checkpointDone(false); // a flush only: the commit is still due
    expect(schedule.commitDue()).toBe(true);
    schedule.checkpointDone(true);
    expect(schedule.commitDue()).toBe(false);
    await clock.advance(5000);
    schedule.checkpointSkipped(false);
    expect(schedule.commitDue()).toBe(true);
    schedule.checkpointSkipped(true); // nothing changed since the last commit: the interval starts again
    expect(schedule.commitDue()).toBe(false);
  });

  it('checks the state once per interval, and not for an interval after a commit proved it there', async () => {
    const { clock, schedule } = setup();
    await clock.advance(2999);
    expect(schedule.takeStateCheck()).toBe(false);
    await clock.advance(1);
    expect(schedule.takeStateCheck()).toBe(true);
    expect(schedule.takeStateCheck()).toBe(false);
    await clock.advance(2000);
    schedule.checkpointDone(true);
    await clock.advance(2999);
    expect(schedule.takeStateCheck()).toBe(false);
    await clock.advance(1);
    expect(schedule.takeStateCheck()).toBe(true);
  });

  it('retries a failed checkpoint after the retry backoff, until one lands or it is dropped', async () => {
    const { clock, schedule } = setup();
    expect(schedule.retrying).toBe(false);
    schedule.checkpointFailed();
    expect(schedule.retrying).toBe(true);
    let waited = false;
    void schedule.retryDelay().then(() => (waited = true));
    await clock.advance(499);
    expect(waited).toBe(false);
    await clock.advance(1);
    expect(waited).toBe(true);
    schedule.checkpointDone(true);
    expect(schedule.retrying).toBe(false);
    expect(schedule.checkpoints).toBe(1);
    schedule.checkpointFailed();
    schedule.checkpointDropped();
    expect(schedule.retrying).toBe(false);
    expect(schedule.checkpoints).toBe(1);
  });
});
