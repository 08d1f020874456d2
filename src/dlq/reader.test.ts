import type { GroupConsumer, GroupHandlers, KafkaAdmin, KafkaClient } from '../kafka';
import { readTopic } from './reader';

/** A client whose one partition holds records at 0 and 1 and a commit marker at 2 (its end is 3). */
function client(deliver: (handlers: GroupHandlers) => void): KafkaClient {
  const admin = {
    connect: async () => undefined,
    disconnect: async () => undefined,
    deleteGroups: async () => undefined,
    fetchTopicOffsets: async () => [{ partition: 0, low: '0', high: '3' }],
  } as unknown as KafkaAdmin;
  const consumer = {
    start: async (handlers: GroupHandlers) => {
      handlers.onAssignment({ partitions: [0], memberId: 'm' });
      setImmediate(() => deliver(handlers));
    },
    seek: () => undefined,
    disconnect: async () => undefined,
  } as unknown as GroupConsumer;
  return { admin: () => admin, consumer: () => consumer } as unknown as KafkaClient;
}

const record = (offset: string) => ({
  topic: 't',
  partition: 0,
  offset,
  timestamp: '0',
  key: null,
  value: Buffer.from(offset),
  headers: {},
});
const control = (lastOffset: string) => ({
  fetchedOffset: '0',
  lastOffset,
  resolve: () => undefined,
  heartbeat: async () => undefined,
  pause: () => undefined,
  isCurrent: () => true,
});

describe('readTopic', () => {
  it('finishes a partition whose rest is only a commit marker, told of by onSkip', async () => {
    const seen: string[] = [];
    const kafka = client((h) => {
      // The records come in one batch that ends before the marker; the marker comes as a skip.
      void h.onBatch(0, [record('0'), record('1')], control('1'));
      setImmediate(() => h.onSkip?.(0, '2', '3'));
    });
    const end = await readTopic(kafka, 't', (r) => seen.push(r.offset), { timeoutMs: 2000 });
    expect(seen).toEqual(['0', '1']);
    expect(end).toEqual(new Map([[0, 3n]]));
  });
});
