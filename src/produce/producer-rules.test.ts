import { loadConfig } from '../config';
import eventCounts from '../../streams/event-counts';
import { createEventProducer } from './producer';
import { EventValidationError } from './validate';

const valid = {
  event_id: '0b7e2a4c-52c3-4d1e-9b7a-4f0e8f1c2d3e',
  event_type: 'view',
  user_id: 'u-1',
  campaign_id: null,
  ad_id: null,
  event_time: Date.now() - 60_000,
  amount: null,
  properties: {},
};

/** The producer given the stream that reads its topic refuses, before connecting, what that stream would dead-letter. */
describe('createEventProducer with the streams reading the topic', () => {
  const producer = createEventProducer<Record<string, unknown>>({
    config: loadConfig({}),
    topic: 'unused',
    schema: 'analytics_event',
    streams: [eventCounts],
  });
  afterAll(() => producer.close());

  it("names the stream's reasons, on the event as a whole", () => {
    expect(producer.validate(valid)).toEqual([]);
    expect(producer.validate({ ...valid, event_time: Math.floor(valid.event_time / 1000), amount: -1 })).toEqual([
      {
        path: '(event)',
        reason: `event_time must be integer epoch ms in [2000-01-01, 2100-01-01), got ${Math.floor(valid.event_time / 1000)}`,
      },
      { path: '(event)', reason: 'amount must be null or a finite number >= 0, got -1' },
    ]);
  });

  it('checks the schema first: an event that does not fit it gets the schema reasons alone', () => {
    expect(producer.validate({ ...valid, amount: 'lots', event_type: 'View' })).toEqual([
      { path: 'amount', reason: 'expected null or double, got string "lots"' },
    ]);
  });

  it('refuses a batch whole, each event by its index, without connecting', async () => {
    const upper = valid.event_id.toUpperCase();
    const refused = producer.sendBatch([valid, { ...valid, event_id: upper }]);
    await expect(refused).rejects.toBeInstanceOf(EventValidationError);
    await expect(refused).rejects.toMatchObject({
      issues: [{ path: '[1]', reason: `event_id must be a lowercase canonical UUID, got "${upper}"` }],
      message: expect.stringMatching(/or the rules of stream\(s\) event-counts: \[1\]: event_id must be/),
    });
    expect(producer.stats().sentEvents).toBe(0);
  });

  it('refuses a stream that cannot read the schema when built, not at the first send', () => {
    const other = { ...eventCounts, name: 'other', source: { topic: 'x', schema: 'analytics_event.v2' } };
    expect(() =>
      createEventProducer({
        config: loadConfig({}),
        topic: 'unused',
        schema: { type: 'record', name: 'Unrelated', fields: [{ name: 'x', type: 'int' }] },
        keyField: 'x',
        streams: [other],
      }),
    ).toThrow(
      /stream other reads with schema analytics_event.v2, which cannot read events written with schema Unrelated/,
    );
  });
});
