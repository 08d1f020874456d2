import { streamsReading } from './stream-rules';

describe('streamsReading', () => {
  it('finds the stream definitions in streams/ whose source is the topic', () => {
    expect(streamsReading('events').map((s) => s.name).sort()).toEqual(['event-counts', 'events-raw']);
  });

  it('finds none for a topic no stream reads', () => {
    expect(streamsReading('clicks-from-elsewhere')).toEqual([]);
  });
});
