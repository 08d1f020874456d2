import type { Cancel, Clock } from '../../src/clock';

/**
 * Simulated time for the runtime. Every timer the runtime and the models
 * set goes into one queue; the run loop pops the earliest, moves the clock to
 * it, runs it, and lets every promise it settled run to completion before the
 * next one. Nothing waits for real time, and the order of events depends only
 * on the seed: a failing run replays exactly.
 *
 * Timers belong to an owner (a simulated process). Killing the owner cancels
 * them, as a SIGKILL would.
 */

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  owner: Owner;
  cancelled: boolean;
}

/** Something that can die: a simulated process, or a service of the world. */
export class Owner {
  alive = true;
  /** Until this time none of its timers run (a long GC pause, a stopped VM): they run late, in order. */
  frozenUntil = 0;
  constructor(readonly name: string) {}
}

/** A binary heap of timers ordered by (time, insertion order). */
class TimerQueue {
  private readonly heap: Timer[] = [];

  get size(): number {
    return this.heap.length;
  }

  push(t: Timer): void {
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  peek(): Timer | undefined {
    return this.heap[0];
  }

  pop(): Timer | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

const before = (a: Timer, b: Timer) => a.at < b.at || (a.at === b.at && a.seq < b.seq);

/** Lets every settled promise run its continuations: all microtasks drain before a macrotask. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

export class Scheduler {
  private readonly queue = new TimerQueue();
  private seq = 0;
  private clockMs: number;
  /** Timers run so far, to bound a run that never ends. */
  steps = 0;

  constructor(startMs: number) {
    this.clockMs = startMs;
  }

  now(): number {
    return this.clockMs;
  }

  /** Runs `fn` at `now + delayMs` unless cancelled or its owner died first. */
  at(owner: Owner, delayMs: number, fn: () => void): Cancel {
    const timer: Timer = { at: this.clockMs + Math.max(0, delayMs), seq: this.seq++, fn, owner, cancelled: false };
    this.queue.push(timer);
    return () => {
      timer.cancelled = true;
    };
  }

  /** Resolves after `delayMs` of simulated time; never, if the owner dies first. */
  sleep(owner: Owner, delayMs: number): Promise<void> {
    return new Promise((resolve) => this.at(owner, delayMs, resolve));
  }

  /** The Clock a process's code sees: its timers die with it. */
  clockFor(owner: Owner): Clock {
    return {
      now: () => this.clockMs,
      sleep: (ms) => this.sleep(owner, ms),
      setTimeout: (fn, ms) => this.at(owner, ms, fn),
      setInterval: (fn, ms) => {
        let cancel: Cancel = () => undefined;
        let stopped = false;
        const arm = () => {
          cancel = this.at(owner, ms, () => {
            if (stopped) return;
            arm();
            fn();
          });
        };
        arm();
        return () => {
          stopped = true;
          cancel();
        };
      },
    };
  }

  /** Runs timers in order until simulated time `untilMs` (or `maxSteps` timers: a guard against livelock). */
  async runUntil(untilMs: number, maxSteps = 5_000_000): Promise<void> {
    await settle();
    for (;;) {
      const next = this.queue.peek();
      if (!next || next.at > untilMs) break;
      this.queue.pop();
      if (next.cancelled || !next.owner.alive) continue;
      if (next.owner.frozenUntil > next.at) {
        this.queue.push({ ...next, at: next.owner.frozenUntil, seq: this.seq++ });
        continue;
      }
      if (++this.steps > maxSteps)
        throw new Error(`simulation did not settle within ${maxSteps} timer steps (livelock?) at t=${this.clockMs}`);
      this.clockMs = next.at;
      next.fn();
      await settle();
    }
    if (untilMs > this.clockMs && Number.isFinite(untilMs)) this.clockMs = untilMs;
  }

  /** Runs until `done()` holds, checking after each timer, or until `untilMs`. */
  async runWhile(pending: () => boolean, untilMs: number): Promise<void> {
    await settle();
    while (pending()) {
      const next = this.queue.peek();
      if (!next || next.at > untilMs) return;
      await this.runUntil(next.at);
    }
  }
}
