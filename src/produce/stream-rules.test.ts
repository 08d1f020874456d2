import { defineStream } from '../process';
import eventCounts from '../../streams/event-counts';
import eventsRaw from '../../streams/events-raw';
import { streamRules, streamsReading } from './stream-rules';

const event = {
  event_id: '0b7e2a4c-52c3-4d1e-9b7a-4f0e8f1c2d3e',
  event_type: 'view',
  user_id: 'u-1',
  campaign_id: null,
  ad_id: null,
  event_time: Date.UTC(2026, 0, 1),
  amount: null,
  properties: {},
};

describe('streamsReading', () => {
  it('finds the stream definitions in streams/ whose source is the topic', () => {
    expect(
      streamsReading('events')
        .map((s) => s.name)
        .sort(),
    ).toEqual(['event-counts', 'events-raw']);
  });

  it('finds none for a topic no stream reads', () => {
    expect(streamsReading('clicks-from-elsewhere')).toEqual([]);
  });
});

describe('streamRules', () => {
  const reference = streamRules('analytics_event', [eventCounts, eventsRaw]);

  it('accepts what the reference stream accepts', () => {
    expect(reference.check(event, event.event_time)).toEqual([]);
  });

  it("gives each of the stream validator's reasons once, though two streams share the validator", () => {
    const bad = { ...event, event_id: event.event_id.toUpperCase(), event_type: 'View', amount: 2e12 };
    expect(reference.check(bad, event.event_time)).toEqual([
      `event_id must be a lowercase canonical UUID, got "${bad.event_id}"`,
      'event_type must be 1-64 of [a-z0-9_] starting with a letter, got "View"',
      'amount must be at most 1000000000000, got 2000000000000',
    ]);
  });

  it('refuses an event time further ahead of the time of receipt than the windowed stream allows, and no sooner', () => {
    const limit = eventCounts.windowed!.maxEventTimeAheadMs!;
    const now = event.event_time - limit;
    expect(reference.check(event, now)).toEqual([]);
    expect(reference.check(event, now - 1)).toEqual([
      `event time 2026-01-01T00:00:00.000Z is more than ${limit} ms ahead of the time it was received, ${new Date(now - 1).toISOString()}`,
    ]);
    // A stream without windows has no such rule.
    expect(streamRules('analytics_event', [eventsRaw]).check(event, now - 1)).toEqual([]);
  });

  it('validates the event as the stream decodes it: read with its reader schema, defaults filled in', () => {
    const seen: Record<string, unknown>[] = [];
    const recording = defineStream<Record<string, unknown>>({
      name: 'recording',
      source: { topic: 'events', schema: 'analytics_event.v2' },
      validate(value) {
        seen.push(value);
        return { ok: true, event: value };
      },
      eventTime: (e) => e.event_time as number,
      tables: [],
    });
    expect(streamRules('analytics_event', [recording]).check({ ...event, campaign_id: 'c-1' })).toEqual([]);
    expect(seen).toEqual([{ ...event, campaign_id: 'c-1', channel: 'unknown' }]);
  });
});
