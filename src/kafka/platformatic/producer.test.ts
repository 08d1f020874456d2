import { defaultPartitionForKey } from '../kafkajs/producer';
import { nodeRunsPlatformatic } from '../client';

// The library is an ES module Node.js before 22.22 cannot load: there only the kafkajs client runs.
const onPlatformatic = nodeRunsPlatformatic() ? describe : describe.skip;
const load = () => require('./producer') as typeof import('./producer');

onPlatformatic('the platformatic producer', () => {
  it("places keyed records as Kafka's default partitioner (and kafkajs's) does", () => {
    const { toPlatformatic } = load();
    for (let i = 0; i < 2000; i++) {
      const key = i % 3 === 0 ? Buffer.from(`key-${i}`) : `event-${i * 7919}`;
      const partitions = 1 + (i % 12);
      expect(toPlatformatic('t', { key, value: 'v' }, partitions, new Map()).partition).toBe(
        defaultPartitionForKey(key, partitions),
      );
    }
    // An empty key is a key (murmur2 of no bytes), not a missing one.
    expect(toPlatformatic('t', { key: '', value: 'v' }, 6, new Map()).partition).toBe(defaultPartitionForKey('', 6));
  });

  it("keeps a record's own partition, and spreads records without a key over the partitions in turn, per topic", () => {
    const { toPlatformatic } = load();
    const turn = new Map<string, number>();
    expect(toPlatformatic('t', { key: 'k', value: 'v', partition: 5 }, 6, turn).partition).toBe(5);
    const placed = [0, 1, 2, 3].map(() => toPlatformatic('a', { value: 'v' }, 3, turn).partition);
    expect(placed).toEqual([0, 1, 2, 0]);
    expect(toPlatformatic('b', { key: null, value: 'v' }, 3, turn).partition).toBe(0);
  });

  it('writes keys and values as bytes, a null value as none, and every value of a repeated header name in order', () => {
    const { toPlatformatic } = load();
    const record = toPlatformatic(
      't',
      { key: 'k', value: null, headers: { 'sluice.tag': ['a', Buffer.from('b')], one: 'x', gone: undefined } },
      1,
      new Map(),
    );
    expect(record.key).toEqual(Buffer.from('k'));
    expect(record.value).toBeNull();
    const headers = [...(record.headers as Map<Buffer, Buffer>)].map(([k, v]) => [k.toString(), v.toString()]);
    expect(headers).toEqual([
      ['sluice.tag', 'a'],
      ['sluice.tag', 'b'],
      ['one', 'x'],
    ]);
    expect(toPlatformatic('t', { value: 'v' }, 1, new Map())).not.toHaveProperty('key');
  });

  it("says where each record went, in the order given: its partition's base offset plus its place in the request", () => {
    const { positions } = load();
    const result = {
      offsets: [
        { topic: 'a', partition: 1, offset: 9007199254740993n },
        { topic: 'a', partition: 0, offset: 40n },
        { topic: 'b', partition: 0, offset: 0n },
      ],
    };
    const sent = [
      { topic: 'a', partition: 1 },
      { topic: 'a', partition: 0 },
      { topic: 'a', partition: 1 },
      { topic: 'b', partition: 0 },
      { topic: 'a', partition: 0 },
    ];
    expect(positions(result, sent)).toEqual([
      { topic: 'a', partition: 1, offset: '9007199254740993' },
      { topic: 'a', partition: 0, offset: '40' },
      { topic: 'a', partition: 1, offset: '9007199254740994' },
      { topic: 'b', partition: 0, offset: '0' },
      { topic: 'a', partition: 0, offset: '41' },
    ]);
    expect(() => positions({ offsets: [] }, [{ topic: 'a', partition: 0 }])).toThrow(/invariant/);
  });
});
