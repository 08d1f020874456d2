import { CircuitBreaker } from './breaker';

describe('CircuitBreaker', () => {
  it('opens after N consecutive failures, half-opens after the timeout for one trial, closes on success', () => {
    let now = 0;
    const changes: string[] = [];
    const breaker = new CircuitBreaker({ failureThreshold: 3, resetTimeoutMs: 1000, now: () => now });
    breaker.onStateChange((s) => changes.push(s));
    breaker.failure();
    breaker.failure();
    breaker.success(); // resets the count: failures must be consecutive
    breaker.failure();
    breaker.failure();
    expect(breaker.state).toBe('closed');
    breaker.failure();
    expect(breaker.state).toBe('open');
    expect(breaker.tryAcquire()).toBe(false);
    now = 999;
    expect(breaker.tryAcquire()).toBe(false);
    now = 1000;
    expect(breaker.state).toBe('half-open');
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.tryAcquire()).toBe(false); // one trial at a time
    breaker.failure(); // trial failed: open again, for another timeout
    expect(breaker.state).toBe('open');
    now = 2000;
    expect(breaker.tryAcquire()).toBe(true);
    breaker.success();
    expect(breaker.state).toBe('closed');
    expect(changes).toEqual(['open', 'open', 'closed']);
  });

  it('lets another trial through when the one in flight was abandoned, and stays half-open until one succeeds', () => {
    let now = 0;
    const breaker = new CircuitBreaker({ failureThreshold: 1, resetTimeoutMs: 1000, now: () => now });
    breaker.failure();
    now = 1000;
    expect(breaker.tryAcquire()).toBe(true);
    breaker.abandon(); // the caller cut its own request: nothing learnt about the service
    expect(breaker.state).toBe('half-open');
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.tryAcquire()).toBe(false);
    breaker.success();
    expect(breaker.state).toBe('closed');
  });
});
