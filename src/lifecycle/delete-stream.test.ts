import { isCompanionOf, streamKeyPatterns } from './delete-stream';

describe('what a stream owns', () => {
  it('owns its topic and the companions declared beside it, not topics that share the prefix', () => {
    for (const t of ['events', 'events.dlq', 'events.late', 'events.retry.1', 'events.retry.12'])
      expect(isCompanionOf('events', t)).toBe(true);
    for (const t of [
      'events2',
      'events-decoy',
      'events.decoy',
      'events.dlq.x',
      'events.retry.',
      'events.retry.x',
      'xevents',
    ])
      expect(isCompanionOf('events', t)).toBe(false);
  });

  it("owns its Redis keys under the configured prefix, never another stream's of a similar name", () => {
    const patterns = streamKeyPatterns('sluice:', 'event-counts');
    expect(patterns).toEqual([
      'sluice:dedup:event-counts:*',
      'sluice:state:event-counts:*',
      'sluice:epoch:event-counts',
      'sluice:hold:event-counts',
      'sluice:hold:event-counts:*',
    ]);
    // A glob '*' only follows a ':', so 'event-counts2' and 'event-counts-x' never match.
    expect(patterns.every((p) => !p.includes('event-counts*'))).toBe(true);
  });
});
