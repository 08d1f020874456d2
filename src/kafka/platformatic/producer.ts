import {
  compatibilityPartitioner,
  ProduceAcks,
  Producer,
  type BaseOptions,
  type MessageToProduce,
  type ProduceResult,
} from '@platformatic/kafka';
import type { KafkaProducer, Message, ProducerOptions, RecordHeaders, SendRequest, WrittenRecord } from '../api';

/** At least this many retries for an idempotent producer: the library turns fewer into retrying for ever. */
const IDEMPOTENT_MIN_RETRIES = 2;

/**
 * The project's non-transactional producer on @platformatic/kafka (transactional ones are kafkajs's:
 * see index.ts). acks=all, topics never auto-created. The library answers a send with each
 * partition's base offset only, so every record's partition is chosen here, before sending, and its
 * offset is the base plus its place among that partition's records in the request.
 */
export function platformaticProducer(
  base: BaseOptions,
  options: ProducerOptions,
  explain: (err: unknown) => unknown,
): KafkaProducer {
  const { idempotent = false } = options;
  const retries = typeof base.retries === 'number' ? base.retries : undefined;
  const producer = new Producer({
    ...base,
    // The library makes an idempotent producer keep one request in flight, as per-partition sequence numbers need.
    idempotent,
    acks: ProduceAcks.ALL,
    autocreateTopics: false,
    // A request to a missing topic would otherwise be retried without end on an idempotent producer.
    ...(idempotent ? { retries: Math.max(IDEMPOTENT_MIN_RETRIES, retries ?? 3) } : {}),
  });
  const roundRobin = new Map<string, number>();

  async function produce(requests: SendRequest[]): Promise<WrittenRecord[]> {
    const topics = [...new Set(requests.map((r) => r.topic))];
    // A missing topic fails here, as UNKNOWN_TOPIC_OR_PARTITION (topic-missing), before anything is sent.
    const metadata = await producer.metadata({ topics, autocreateTopics: false });
    const counts = new Map(topics.map((t) => [t, metadata.topics.get(t)!.partitionsCount]));
    const messages = requests.flatMap((r) =>
      r.messages.map((m) => toPlatformatic(r.topic, m, counts.get(r.topic)!, roundRobin)),
    );
    if (messages.length === 0) return [];
    const compression = requests.find((r) => r.compression)?.compression;
    const result = await producer.send({
      messages,
      acks: ProduceAcks.ALL,
      autocreateTopics: false,
      // One compression for the whole request, the first request's choice, as kafkajs does.
      ...(compression ? { compression } : {}),
    });
    return positions(result, messages);
  }

  // A failure carries the broker's reason in its message (explain), and stays whole inside it for sendFailure.
  const sendBatch = (requests: SendRequest[]) =>
    produce(requests).catch((err: unknown) => {
      throw explain(err);
    });

  return {
    async connect() {
      // The library connects on its first request: one metadata request proves the brokers answer and accept us.
      try {
        await producer.metadata({ topics: [] });
      } catch (err) {
        throw explain(err);
      }
    },
    send: (request) => sendBatch([request]),
    sendBatch,
    transaction() {
      return Promise.reject(new Error('invariant: transactions need a producer built with a transactionalId'));
    },
    disconnect: () => producer.close(),
  };
}

type Outgoing = MessageToProduce<Buffer, Buffer, Buffer, Buffer> & { partition: number };

/**
 * One record for the library, its partition chosen: the message's own, else Kafka's default
 * partitioner for a key (murmur2, positive, modulo the partition count: the Java client's formula,
 * the library's `compatibilityPartitioner`), else the next partition in turn.
 */
export function toPlatformatic(
  topic: string,
  message: Message,
  partitions: number,
  roundRobin: Map<string, number>,
): Outgoing {
  const key = toBuffer(message.key);
  let partition = message.partition;
  if (partition === undefined && key) partition = compatibilityPartitioner(undefined as never, key) % partitions;
  if (partition === undefined) {
    partition = (roundRobin.get(topic) ?? 0) % partitions;
    roundRobin.set(topic, partition + 1);
  }
  return {
    topic,
    partition,
    ...(key ? { key } : {}),
    // The library requires the field; null is a record without a value (a tombstone).
    value: toBuffer(message.value) as Buffer,
    headers: toHeaders(message.headers),
  };
}

const toBuffer = (value: Buffer | string | null | undefined): Buffer | null =>
  value === null || value === undefined ? null : Buffer.isBuffer(value) ? value : Buffer.from(value);

/**
 * Headers as the library writes them: a Map keyed by the name's bytes. A name that repeats gets a
 * key object per value (Buffers are Map keys by identity), so every value is written, in order.
 */
export function toHeaders(headers: RecordHeaders | undefined): Map<Buffer, Buffer> {
  const out = new Map<Buffer, Buffer>();
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) out.set(Buffer.from(name), toBuffer(one)!);
  }
  return out;
}

/** Where each record went, in the order given: its partition's base offset plus its place among that partition's records. */
export function positions(result: ProduceResult, messages: { topic: string; partition: number }[]): WrittenRecord[] {
  const base = new Map((result.offsets ?? []).map((o) => [`${o.topic}/${o.partition}`, o.offset]));
  const seen = new Map<string, bigint>();
  return messages.map(({ topic, partition }) => {
    const key = `${topic}/${partition}`;
    const index = seen.get(key) ?? 0n;
    seen.set(key, index + 1n);
    const first = base.get(key);
    if (first === undefined) throw new Error(`invariant: the broker reported no offset for ${key}`);
    return { topic, partition, offset: String(first + index) };
  });
}
