import { RETRY_HEADERS } from './headers';
import { retryDelayMs, RetryGate, retryWaitMs, routeRetry } from './retry';

const source = (headers = {}) => ({
  topic: 'events',
  partition: 4,
  offset: '77',
  timestamp: '1700000000000',
  key: Buffer.from('k'),
  value: Buffer.from([0, 1, 2]),
  headers,
});
const policy = { maxAttempts: 2, baseDelayMs: 1000, maxDelayMs: 5000 };

describe('retry backoff', () => {
  it('doubles per attempt, is capped, and keeps at least half the nominal delay whatever the jitter', () => {
    expect([1, 2, 3, 4, 5].map((a) => retryDelayMs(a, policy, () => 0))).toEqual([500, 1000, 2000, 2500, 2500]);
    expect([1, 2, 3, 4, 5].map((a) => retryDelayMs(a, policy, () => 0.999999))).toEqual([999, 1999, 3999, 4999, 4999]);
  });
});

describe('routeRetry', () => {
  const now = new Date('2026-01-01T00:00:00.000Z');
  it('sends attempt n to <topic>.retry.<n> with not-before and origin headers, original bytes untouched', () => {
    const route = routeRetry(
      { source: source({ trace: 't1' }), errorClass: 'SERVICE_UNAVAILABLE', message: 'sink\nslow', attempt: 1 },
      policy,
      'counts',
      now,
      () => 0.5,
    );
    expect(route.kind).toBe('retry');
    expect(route.topic).toBe('events.retry.1');
    expect(route.message.value).toEqual(Buffer.from([0, 1, 2]));
    expect(route.message.headers).toEqual({
      trace: 't1',
      [RETRY_HEADERS.notBefore]: String(now.getTime() + 750),
      [RETRY_HEADERS.attempt]: '1',
      [RETRY_HEADERS.originTopic]: 'events',
      [RETRY_HEADERS.originPartition]: '4',
      [RETRY_HEADERS.originOffset]: '77',
      [RETRY_HEADERS.originTimestamp]: '1700000000000',
      [RETRY_HEADERS.errorClass]: 'SERVICE_UNAVAILABLE',
      [RETRY_HEADERS.errorMessage]: 'sink | slow',
    });
  });

  it('after the last attempt, goes to the DLQ of the ORIGINAL topic naming the original record', () => {
    const fromRetry = {
      ...source({
        [RETRY_HEADERS.originTopic]: 'events',
        [RETRY_HEADERS.originPartition]: '1',
        [RETRY_HEADERS.originOffset]: '5',
        [RETRY_HEADERS.originTimestamp]: '1',
      }),
      topic: 'events.retry.2',
      offset: '3',
    };
    const route = routeRetry(
      { source: fromRetry, errorClass: 'SERVICE_UNAVAILABLE', message: 'again', attempt: 3 },
      policy,
      'counts',
      now,
    );
    expect(route.kind).toBe('dlq');
    expect(route.topic).toBe('events.dlq');
    expect(route.message.headers).toMatchObject({
      'sluice.dlq.source.topic': 'events',
      'sluice.dlq.source.partition': '1',
      'sluice.dlq.source.offset': '5',
      'sluice.dlq.attempt': '3',
    });
  });
});

describe('RetryGate', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('pauses only the partition whose record is not due, once, and resumes it when due', () => {
    let now = 10_000;
    const gate = new RetryGate(() => now);
    const events: string[] = [];
    const pauser = (p: number) => () => {
      events.push(`pause ${p}`);
      return () => events.push(`resume ${p}`);
    };
    const due = { [RETRY_HEADERS.notBefore]: '10000' };
    const later = { [RETRY_HEADERS.notBefore]: '12500' };
    expect(gate.admit('events.retry.1', 0, due, pauser(0))).toBe(true);
    expect(gate.admit('events.retry.1', 1, later, pauser(1))).toBe(false);
    expect(gate.admit('events.retry.1', 1, later, pauser(1))).toBe(false); // already held: no second pause
    expect(gate.admit('events.retry.1', 2, {}, pauser(2))).toBe(true); // no header: process now
    expect(gate.heldPartitions()).toEqual(['events.retry.1/1']);
    jest.advanceTimersByTime(2499);
    expect(events).toEqual(['pause 1']);
    jest.advanceTimersByTime(1);
    now = 12_500;
    expect(events).toEqual(['pause 1', 'resume 1']);
    expect(retryWaitMs(later, now)).toBe(0);
    expect(gate.admit('events.retry.1', 1, later, pauser(1))).toBe(true);
  });
});
