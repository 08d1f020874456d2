import { validateAnalyticsEvent } from './validate';

const good = {
  event_id: '0b6b1c0e-3f7a-4c2e-9d51-2f1f4a0c9e11',
  event_type: 'add_to_cart',
  user_id: 'user-1',
  campaign_id: 'campaign-3',
  ad_id: null,
  event_time: Date.UTC(2026, 0, 1),
  amount: 12.5,
  properties: { channel: 'web' },
};

const errorsOf = (value: Record<string, unknown>): string[] => {
  const result = validateAnalyticsEvent(value);
  return result.ok ? [] : result.errors;
};

describe('validateAnalyticsEvent', () => {
  it('accepts a good event and returns exactly the v1 fields', () => {
    expect(validateAnalyticsEvent({ ...good, channel: 'ios' })).toEqual({ ok: true, event: good });
  });

  it('fills absent optional fields with their Avro defaults', () => {
    const required = {
      event_id: good.event_id,
      event_type: good.event_type,
      user_id: good.user_id,
      event_time: good.event_time,
    };
    expect(validateAnalyticsEvent(required)).toEqual({
      ok: true,
      event: { ...required, campaign_id: null, ad_id: null, amount: null, properties: {} },
    });
  });

  it.each([
    ['event_id', 'not-a-uuid'],
    ['event_id', '0B6B1C0E-3F7A-4C2E-9D51-2F1F4A0C9E11'], // uppercase: would be a second dedup key
    ['event_id', ''],
    ['event_type', ''],
    ['event_type', 'Purchase'],
    ['event_type', '1view'],
    ['event_type', 'x'.repeat(65)],
    ['user_id', ''],
    ['user_id', 'u'.repeat(257)],
    ['campaign_id', ''],
    ['ad_id', ''],
    ['event_time', -1],
    ['event_time', Date.UTC(1999, 11, 31, 23, 59, 59, 999)],
    ['event_time', Date.UTC(2100, 0, 1)],
    ['event_time', Date.UTC(9999, 0, 1)],
    ['event_time', 1.5e12 + 0.5],
    ['event_time', Number.NaN],
    ['event_time', '2026-01-01'],
    ['amount', Number.NaN],
    ['amount', Infinity],
    ['amount', -0.01],
    ['properties', { a: 1 }],
    ['properties', ['a']],
  ])('rejects %s = %p, naming the field', (field, value) => {
    const errors = errorsOf({ ...good, [field]: value });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(new RegExp(`^${field} `));
  });

  it('accepts the boundaries and other spellings of a time', () => {
    expect(errorsOf({ ...good, event_time: Date.UTC(2000, 0, 1) })).toEqual([]);
    expect(errorsOf({ ...good, event_time: Date.UTC(2100, 0, 1) - 1 })).toEqual([]);
    expect(errorsOf({ ...good, event_time: new Date(good.event_time) })).toEqual([]);
    expect(errorsOf({ ...good, event_time: BigInt(good.event_time) })).toEqual([]);
    expect(errorsOf({ ...good, amount: 0 })).toEqual([]);
    expect(errorsOf({ ...good, amount: null, campaign_id: null })).toEqual([]);
  });

  it('reports every broken rule, with short renderings of long values', () => {
    const errors = errorsOf({ ...good, event_id: 'x'.repeat(1000), event_type: '', amount: Number.NaN });
    expect(errors).toHaveLength(3);
    expect(errors.every((e) => e.length < 200)).toBe(true);
  });
});
