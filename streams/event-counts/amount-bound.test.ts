import { MAX_AMOUNT, validateAnalyticsEvent } from './validate';

const good = {
  event_id: '0b6b1c0e-3f7a-4c2e-9d51-2f1f4a0c9e11',
  event_type: 'purchase',
  user_id: 'user-1',
  campaign_id: null,
  ad_id: null,
  event_time: Date.UTC(2026, 0, 1),
  amount: 12.5,
  properties: {},
};

const errorsOf = (amount: unknown): string[] => {
  const result = validateAnalyticsEvent({ ...good, amount });
  return result.ok ? [] : result.errors;
};

describe('the upper bound of amount', () => {
  it('refuses amounts whose sums overflow a double, naming the bound', () => {
    // Two such events in one window: the sum is Infinity, which ClickHouse refuses.
    expect(1e308 + 1e308).toBe(Infinity);
    expect(errorsOf(1e308)).toEqual(['amount must be at most 1000000000000, got 1e+308']);
    expect(errorsOf(Number.MAX_VALUE)).toHaveLength(1);
    expect(errorsOf(1e12 + 0.01)).toHaveLength(1);
  });

  it('accepts the bound itself and amounts just below it', () => {
    expect(MAX_AMOUNT).toBe(1e12);
    expect(errorsOf(1e12)).toEqual([]);
    expect(errorsOf(999_999_999_999.99)).toEqual([]);
  });

  it('keeps cents exact at the bound and window sums finite and cent-exact for a realistic window', () => {
    // Any amount up to the bound still carries its cents: amount * 100 rounds back to the cents sent.
    for (const cents of [99_999_999_999_999, 99_999_999_999_901, 100_000_000_000_000, 12_345_678_901_234]) {
      expect(Math.round((cents / 100) * 100)).toBe(cents);
    }
    // A million events at the bound in one window: finite, and exactly 1e18.
    let sum = 0;
    for (let i = 0; i < 1_000_000; i++) sum += MAX_AMOUNT;
    expect(Number.isFinite(sum)).toBe(true);
    expect(sum).toBe(1e18);
  });
});
