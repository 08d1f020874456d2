import type { StreamDefinition } from '../../src/process';
import { stream, type World } from './world';
import { event, finish, lateCount, laggingPartitionWorkload, produceAt, START, windowDiffs, world } from './edge-world';

const withIdleTimeout = (idleTimeoutMs: number): StreamDefinition<unknown> => ({
  ...stream,
  windowed: { ...stream.windowed!, idleTimeoutMs },
});

async function tinyIdleRun(idleTimeoutMs: number, freezeMs: number): Promise<{ late: number; diffs: object }> {
  const w = world(3);
  const expected = laggingPartitionWorkload(w, { everyMs: 20, seconds: 230 });
  const p = await w.drive(w.start({ definition: withIdleTimeout(idleTimeoutMs), sessionTimeoutMs: 60_000 }));
  await w.scheduler.runUntil(START + 200_000);
  if (freezeMs > 0) p.owner.frozenUntil = START + 200_000 + freezeMs;
  await w.scheduler.runUntil(START + 235_000);
  await finish(w);
  return { late: lateCount(w), diffs: windowDiffs(w, expected) };
}

describe('short idle timeouts', () => {
  /**
   * Was a wrong verdict: with idleTimeoutMs 200 (then accepted: any positive value) and no stall at all, an
   * event every 20 ms on every partition, partition 2 was found idle in normal operation (the read and
   * checkpoint cadence exceeds 200 ms) and released at partition 0's watermark: 350 of its on-time
   * stragglers went to .late (the same with 100 and 60 ms). A running stream now refuses an idle timeout
   * under MIN_IDLE_TIMEOUT_MS, naming the setting.
   */
  it('an idle timeout under 1 s is refused at start, naming the setting', async () => {
    const w = world(3);
    await expect(w.start({ definition: withIdleTimeout(200), sessionTimeoutMs: 60_000 })).rejects.toThrow(
      /windowed\.idleTimeoutMs is 200 ms; it must be at least 1000 ms/,
    );
  });

  /**
   * Pins the shortest accepted timeout: idleTimeoutMs 1000 (ticks every 125 ms, a stall is a gap over 250
   * ms), dense input, partition 2 lagging; without a stall and with a 249 ms freeze at t+200 s (just under
   * the threshold, when a release at partition 0's watermark would close partition 2's [12:01, 12:02)
   * before its stragglers), nothing is late and every window is exact.
   */
  it.each([0, 249])('idleTimeoutMs 1000, a %d ms freeze: no late event', async (freezeMs) => {
    expect(await tinyIdleRun(1000, freezeMs)).toEqual({ late: 0, diffs: {} });
  });
});

/**
 * Partition 0 on time, partition 1 45 s behind, partition 2 45 s behind with every tenth event 50 s further
 * back, and partition 2 quiet (no record produced) for 12 s from t+193 s. ClickHouse is down from t+180 s for
 * 11 s: every partition is paused until the checkpoint retry lands. Without the outage partition 2's idle
 * release at ~t+203 s is at partition 1's watermark, which closes nothing its stragglers need.
 */
function pauseWorkload(w: World): Map<string, number> {
  const expected = new Map<string, number>();
  const count = (p: number, t: number) => {
    const k = `p${p}@m${Math.floor((t - START) / 60_000)}`;
    expected.set(k, (expected.get(k) ?? 0) + 1);
  };
  let n = 0;
  for (let s = 1; s <= 2600; s++) {
    const at = s * 100;
    produceAt(w, 0, at, event(++n, START + at));
    count(0, START + at);
    const t1 = START + at - 45_000;
    if (t1 >= START) {
      produceAt(w, 1, at, event(++n, t1));
      count(1, t1);
    }
    const t2 = START + at - 45_000 - (s % 10 === 0 ? 50_000 : 0);
    if (t2 >= START && (at < 193_000 || at >= 205_000)) {
      produceAt(w, 2, at, event(++n, t2));
      count(2, t2);
    }
  }
  return expected;
}

async function pausedWithStatus(pollStatus: boolean): Promise<{ late: number; diffs: object }> {
  const w = world(3);
  const expected = pauseWorkload(w);
  const p = await w.drive(w.start({ sessionTimeoutMs: 60_000 }));
  if (pollStatus) {
    // What the stream monitor does (stream-monitor.ts polls runner.status()), and every GET of the status.
    const poll = () => {
      if (!p.owner.alive) return;
      p.runner.status();
      if (w.scheduler.now() < START + 260_000) w.scheduler.at(p.owner, 1_000, poll);
    };
    w.scheduler.at(p.owner, 1_000, poll);
  }
  w.scheduler.at(w.root, 180_000, () => (w.faults.sinkDownUntil = START + 191_000));
  await w.scheduler.runUntil(START + 265_000);
  await finish(w);
  return { late: lateCount(w), diffs: windowDiffs(w, expected) };
}

describe('reading the stream watermark while reading is paused', () => {
  /** Passes: the reference, the same outage without anyone reading the status. */
  it('an 11 s ClickHouse outage, status not read: no late event', async () => {
    expect(await pausedWithStatus(false)).toEqual({ late: 0, diffs: {} });
  });

  /**
   * Was a wrong verdict (before WatermarkTracker.peekWatermark). The tick skips closeWindows while
   * anything is paused ("partitions look idle only because we stopped reading them"), but runner.status() →
   * task.eventTime(now) → StreamWindows.watermark(now) → WatermarkTracker.watermark still runs: after 10 s
   * of outage every paused partition looks idle and the monotone stream watermark jumps to partition 0's,
   * 45 s ahead of partitions 1 and 2. resumeClock cannot lower it: partition 2's later, genuine idle release
   * happens there instead of at partition 1's watermark, and its stragglers go to .late. Reading the
   * watermark for status now moves nothing.
   */
  it('the same outage with the status polled every second: no late event', async () => {
    expect(await pausedWithStatus(true)).toEqual({ late: 0, diffs: {} });
  });
});
