import { loadAvroSchema, parseAvroType } from '../schema';
import { createEventEncoder } from './encode';
import type { AnalyticsEvent, AnalyticsEventV2 } from '../../streams/event-counts/event';

describe('createEventEncoder', () => {
  const type = parseAvroType(loadAvroSchema('analytics_event.v2'));
  const event: AnalyticsEventV2 = {
    event_id: '0b6b1c0e-3f7a-4c2e-9d51-2f1f4a0c9e11',
    event_type: 'purchase',
    user_id: 'user-1',
    campaign_id: null,
    ad_id: null,
    event_time: Date.UTC(2026, 0, 1),
    amount: 9.99,
    properties: { page: '/product/1' },
    channel: 'web',
  };

  it('writes Confluent wire format: magic byte, schema id, the Avro body', () => {
    const value = createEventEncoder(258)(event);
    expect([...value.subarray(0, 5)]).toEqual([0, 0, 0, 1, 2]);
    expect(value.subarray(5).equals(type.toBuffer(event))).toBe(true);
  });

  it("writes with v2 by default; v2's default channel for an event without one, none with v1", () => {
    const v1Event: AnalyticsEvent & { channel?: string } = { ...event };
    delete v1Event.channel;
    expect(type.fromBuffer(createEventEncoder(1)(v1Event).subarray(5))).toEqual({ ...v1Event, channel: 'unknown' });
    const v1 = parseAvroType(loadAvroSchema('analytics_event'));
    expect(v1.fromBuffer(createEventEncoder(1, loadAvroSchema('analytics_event'))(event).subarray(5))).toEqual(v1Event);
  });

  it('returns independent buffers and grows for events larger than its scratch space', () => {
    const encode = createEventEncoder(3);
    const first = encode(event);
    const big = { ...event, properties: { blob: 'x'.repeat(100_000) } };
    const second = encode(big);
    expect(type.fromBuffer(second.subarray(5))).toEqual(big);
    expect(second.readInt32BE(1)).toBe(3);
    expect(type.fromBuffer(first.subarray(5))).toEqual(event);
    expect(encode(event).equals(first)).toBe(true);
  });
});
