import {
  CompressionTypes,
  Partitioners,
  type Kafka,
  type Message as KafkajsMessage,
  type RecordMetadata,
  type Transaction,
} from 'kafkajs';
import type {
  Compression,
  KafkaProducer,
  Message,
  ProducerOptions,
  ProducerTransaction,
  SendRequest,
  WrittenRecord,
} from '../api';

const COMPRESSION: Record<Compression, CompressionTypes> = {
  gzip: CompressionTypes.GZIP,
  none: CompressionTypes.None,
};

/**
 * The project's producer on kafkajs. kafkajs answers a send with each partition's base offset only;
 * its default partitioner (murmur2 of the key, or the message's own partition) is wrapped to remember
 * which partition each message got, so every record's offset is the base plus its place among that
 * partition's records in the request.
 */
export function kafkajsProducer(kafka: Kafka, options: ProducerOptions = {}): KafkaProducer {
  const chosen = new WeakMap<KafkajsMessage, number>();
  const { idempotent = false, transactionalId, transactionTimeoutMs } = options;
  const producer = kafka.producer({
    idempotent,
    // One request at a time: what kafkajs's idempotent producer needs to keep per-partition sequence numbers in order.
    ...(idempotent ? { maxInFlightRequests: 1 } : {}),
    allowAutoTopicCreation: false,
    createPartitioner: () => {
      const partition = Partitioners.DefaultPartitioner();
      return (args) => {
        const p = partition(args);
        chosen.set(args.message, p);
        return p;
      };
    },
    ...(transactionalId ? { transactionalId } : {}),
    ...(transactionTimeoutMs !== undefined ? { transactionTimeout: transactionTimeoutMs } : {}),
  });

  /** Sends through kafkajs (the producer or a transaction) and says where each record went, in order. */
  async function sendVia(
    sender: Pick<Transaction, 'sendBatch'>,
    requests: SendRequest[],
    compression: Compression | undefined,
  ): Promise<WrittenRecord[]> {
    const topicMessages = requests.map((r) => ({ topic: r.topic, messages: r.messages.map(toKafkajs) }));
    const metadata = await sender.sendBatch({
      acks: -1,
      ...(compression ? { compression: COMPRESSION[compression] } : {}),
      topicMessages,
    });
    return positions(metadata, topicMessages, chosen);
  }

  /** kafkajs compresses a whole request alike: requests of one batch share the first one's choice. */
  const compressionOf = (requests: SendRequest[]) => requests.find((r) => r.compression)?.compression;

  return {
    connect: () => producer.connect(),
    send: (request) => sendVia(producer, [request], request.compression),
    sendBatch: (requests) => sendVia(producer, requests, compressionOf(requests)),
    async transaction(): Promise<ProducerTransaction> {
      const transaction = await producer.transaction();
      return {
        send: (request) => sendVia(transaction, [request], request.compression),
        sendOffsets: (groupId, topic, offsets) =>
          transaction.sendOffsets({
            consumerGroupId: groupId,
            // kafkajs passes the metadata through to TxnOffsetCommit, though its typings omit it.
            topics: [
              {
                topic,
                partitions: offsets.map(
                  ({ partition, offset, metadata }) =>
                    ({ partition, offset, metadata: metadata ?? null }) as { partition: number; offset: string },
                ),
              },
            ],
          }),
        commit: () => transaction.commit(),
        abort: () => transaction.abort(),
      };
    },
    disconnect: () => producer.disconnect(),
  };
}

/** A fresh kafkajs message per send: the partitioner remembers partitions by message object. */
function toKafkajs(message: Message): KafkajsMessage {
  const out: KafkajsMessage = { key: message.key, value: message.value };
  if (message.headers) out.headers = message.headers;
  if (message.partition !== undefined) out.partition = message.partition;
  return out;
}

function positions(
  metadata: RecordMetadata[],
  topicMessages: { topic: string; messages: KafkajsMessage[] }[],
  chosen: WeakMap<KafkajsMessage, number>,
): WrittenRecord[] {
  const base = new Map(metadata.map((m) => [`${m.topicName}/${m.partition}`, BigInt(m.baseOffset ?? m.offset ?? '0')]));
  const seen = new Map<string, bigint>();
  const out: WrittenRecord[] = [];
  for (const { topic, messages } of topicMessages) {
    for (const message of messages) {
      const partition = chosen.get(message) ?? -1;
      const key = `${topic}/${partition}`;
      const index = seen.get(key) ?? 0n;
      seen.set(key, index + 1n);
      out.push({ topic, partition, offset: String((base.get(key) ?? 0n) + index) });
    }
  }
  return out;
}

/** The partition the client's default partitioner picks for `key` among `partitions` (all with a leader). */
export function defaultPartitionForKey(key: Buffer | string, partitions: number): number {
  const partitionMetadata = Array.from({ length: partitions }, (_, i) => ({
    partitionId: i,
    leader: 1,
    replicas: [1],
    isr: [1],
    partitionErrorCode: 0,
  }));
  return Partitioners.DefaultPartitioner()({ topic: 't', partitionMetadata, message: { key, value: null } });
}
