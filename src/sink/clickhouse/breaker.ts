export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** Consecutive failures that open the breaker. */
  failureThreshold: number;
  /** How long it stays open before one trial request may pass (half-open). */
  resetTimeoutMs: number;
  now?: () => number;
}

/**
 * Stops hammering a sink that is down. Closed: requests pass, consecutive
 * failures are counted. Open: requests are refused at once, so callers fail
 * fast and the runtime pauses consumption. After the reset timeout one trial
 * passes (half-open): success closes the breaker, failure opens it again.
 */
export class CircuitBreaker {
  private failures = 0;
  private openedAt: number | undefined;
  private trialInFlight = false;
  private readonly listeners: ((state: BreakerState) => void)[] = [];

  constructor(private readonly options: BreakerOptions) {}

  get state(): BreakerState {
    if (this.openedAt === undefined) return 'closed';
    return this.now() - this.openedAt >= this.options.resetTimeoutMs ? 'half-open' : 'open';
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  /** Milliseconds until a trial may pass; 0 when requests pass now. */
  retryInMs(): number {
    if (this.openedAt === undefined) return 0;
    return Math.max(0, this.openedAt + this.options.resetTimeoutMs - this.now());
  }

  /** Whether a request may go out now; in half-open, only one trial at a time. */
  tryAcquire(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.trialInFlight) return false;
    this.trialInFlight = true;
    return true;
  }

  success(): void {
    const before = this.state;
    this.failures = 0;
    this.openedAt = undefined;
    this.trialInFlight = false;
    if (before !== 'closed') this.emit();
  }

  failure(): void {
    const before = this.state;
    this.failures += 1;
    this.trialInFlight = false;
    if (before === 'half-open' || this.failures >= this.options.failureThreshold) {
      this.openedAt = this.now();
      if (before !== 'open') this.emit();
    }
  }

  /** The request that was let through ended with no word on the service (the caller cut it): another may try. */
  abandon(): void {
    this.trialInFlight = false;
  }

  onStateChange(listener: (state: BreakerState) => void): void {
    this.listeners.push(listener);
  }

  private emit(): void {
    const state = this.state;
    for (const l of this.listeners) l(state);
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }
}
