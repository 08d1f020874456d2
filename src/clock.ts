/**
 * Time as the runtime sees it: reading the clock, waiting, and repeating
 * work. Code that takes a Clock instead of calling Date.now and setTimeout
 * runs unchanged on simulated time (test/sim), where a run of hours of
 * faults takes milliseconds and every interleaving replays from its seed.
 */
export interface Clock {
  now(): number;
  /** Resolves after `ms` milliseconds. */
  sleep(ms: number): Promise<void>;
  /** Calls `fn` after `ms` milliseconds, unless cancelled first. */
  setTimeout(fn: () => void, ms: number): Cancel;
  /** Calls `fn` every `ms` milliseconds until cancelled. */
  setInterval(fn: () => void, ms: number): Cancel;
}

/** Stops a timer; calling it again does nothing. */
export type Cancel = () => void;

/** The process's own clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  setTimeout(fn, ms) {
    const timer = setTimeout(fn, ms);
    return () => clearTimeout(timer);
  },
  setInterval(fn, ms) {
    const timer = setInterval(fn, ms);
    return () => clearInterval(timer);
  },
};

/** Waits `ms` on the process's clock. */
export const sleep = (ms: number): Promise<void> => systemClock.sleep(ms);
