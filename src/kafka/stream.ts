import type { KafkaClient } from './api';
import type { CommittedOffset, GroupAdmin, StreamKafka } from './group';

/** The runtime's Kafka (docs/design.md §1.3) on a project client: its group member, admin calls and transactions. */
export function streamKafka(client: KafkaClient): StreamKafka {
  return {
    consumer: (options) => client.consumer(options),
    transactions: (options) => client.transactions(options),
    async admin(): Promise<GroupAdmin> {
      const admin = client.admin();
      await admin.connect();
      return {
        async committedOffsets(groupId, topic) {
          const [result] = await admin.fetchOffsets(groupId, [topic]);
          const out = new Map<number, CommittedOffset>();
          // A negative offset is no position: '-1' is Kafka's "never committed", and kafkajs commits its
          // reset sentinel ('-2', earliest) itself when it finds its position out of range.
          for (const p of result?.partitions ?? [])
            if (BigInt(p.offset) >= 0n) out.set(p.partition, { offset: p.offset, metadata: p.metadata });
          return out;
        },
        async topicOffsets(topic) {
          return new Map(
            (await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, { low: o.low, high: o.high }]),
          );
        },
        disconnect: () => admin.disconnect(),
      };
    },
  };
}
