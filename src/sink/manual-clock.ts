import type { Cancel, Clock } from '../clock';

/**
 * A Clock that moves only when told, for specs of code that renews,
 * expires and times out (the hold, the swap): minutes of TTLs run in
 * microseconds and every deadline can be checked to the millisecond.
 */
export class ManualClock implements Clock {
  private timers: { at: number; seq: number; fn: () => void; every?: number }[] = [];
  private seq = 0;

  constructor(private t = 0) {}

  now(): number {
    return this.t;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.setTimeout(resolve, ms));
  }

  setTimeout(fn: () => void, ms: number): Cancel {
    return this.add(fn, ms);
  }

  setInterval(fn: () => void, ms: number): Cancel {
    return this.add(fn, ms, Math.max(1, ms));
  }

  /**
   * Moves time on by `ms`, running each timer due on the way at its own time,
   * in order, and letting the promise chains it starts settle before the next.
   */
  async advance(ms: number): Promise<void> {
    const until = this.t + ms;
    await settle();
    for (;;) {
      const next = this.timers.filter((x) => x.at <= until).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!next) break;
      this.t = next.at;
      if (next.every) next.at += next.every;
      else this.timers = this.timers.filter((x) => x !== next);
      next.fn();
      await settle();
    }
    this.t = until;
    await settle();
  }

  private add(fn: () => void, ms: number, every?: number): Cancel {
    const timer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, every };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((x) => x !== timer);
    };
  }
}

/** Lets every promise reaction queued so far (and those they queue) run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
