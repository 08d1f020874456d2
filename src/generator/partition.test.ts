import { defaultPartitionForKey } from '../kafka';
import { SeededRandom } from './random';
import { murmur2, partitionForKey } from './partition';

describe('partitionForKey', () => {
  it("matches the Java client's murmur2 test vectors", () => {
    // From Kafka's UtilsTest.testMurmur2.
    const vectors: [string, number][] = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ];
    for (const [key, hash] of vectors) expect(murmur2(Buffer.from(key))).toBe(hash);
  });

  it("picks the same partition as the Kafka client's default partitioner for any key", () => {
    const rng = new SeededRandom(17);
    for (const partitions of [1, 3, 6, 7, 64]) {
      const differing: string[] = [];
      for (let i = 0; i < 2000; i++) {
        const key = i % 2 === 0 ? Buffer.from(rng.uuid()) : rng.bytes(i % 41);
        if (partitionForKey(key, partitions) !== defaultPartitionForKey(key, partitions))
          differing.push(key.toString('hex'));
      }
      expect(differing).toEqual([]);
    }
  });
});
