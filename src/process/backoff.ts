import type { Clock } from '../clock';

/** `firstMs` doubled for each attempt after the first (attempt 0 waits `firstMs`), never more than `maxMs`. */
export function backoffMs(attempt: number, firstMs: number, maxMs: number): number {
  return Math.min(maxMs, firstMs * 2 ** attempt);
}

/**
 * Holds reading back while a dependency of processing (Redis, the schema
 * registry) keeps failing: each failure in a row doubles the wait (the
 * first waits twice `firstMs`, the sixth and later `maxMs` at most), and a
 * success ends it. Without it every tick would resume reading into the same
 * failure.
 */
export class DependencyBackoff {
  private failures = 0;
  private retryAt = 0;

  constructor(
    private readonly clock: Clock,
    private readonly firstMs: number,
    private readonly maxMs: number,
  ) {}

  /** Records a failure; true for the first of a run of them (the one worth logging). */
  failed(): boolean {
    this.failures += 1;
    this.retryAt = this.clock.now() + backoffMs(Math.min(this.failures, 5), this.firstMs, this.maxMs);
    return this.failures === 1;
  }

  succeeded(): void {
    this.failures = 0;
  }

  /** Reading must wait: the last failure's backoff has not passed yet. */
  holding(): boolean {
    return this.clock.now() < this.retryAt;
  }
}
