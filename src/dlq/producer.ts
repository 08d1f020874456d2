import type { KafkaClient, KafkaProducer, Message } from '../kafka';
import { ServiceError } from '../errors';

/**
 * The producer behind every side topic: idempotent with acks=all, so a
 * dead letter acknowledged here survives a broker failover and a retry of the
 * same send does not write it twice. One concern: turn failures into
 * ServiceErrors the runtime can act on.
 */
export class SideTopicProducer {
  private readonly producer: KafkaProducer;
  private connected?: Promise<void>;

  constructor(private readonly kafka: KafkaClient) {
    this.producer = kafka.producer({ idempotent: true });
  }

  async send(messages: Map<string, Message[]>): Promise<void> {
    for (const request of requestsOf(messages)) await this.sendRequest(request);
  }

  private async sendRequest(messages: Map<string, Message[]>): Promise<void> {
    if (messages.size === 0) return;
    try {
      this.connected ??= this.producer.connect();
      await this.connected;
      await this.producer.sendBatch([...messages].map(([topic, msgs]) => ({ topic, messages: msgs })));
    } catch (err) {
      this.connected = undefined;
      const text = (err as Error).message;
      const failure = this.kafka.sendFailure(err);
      const tooLarge = failure === 'too-large';
      const missing = failure === 'topic-missing';
      const topics = [...messages.keys()].join(', ');
      throw new ServiceError(
        'kafka',
        missing
          ? `side topic ${topics} does not exist: create it with 'sluice topics apply' (consumption pauses until it exists)`
          : `cannot write to ${topics} (${text.split('\n')[0]})${tooLarge ? ': the record is larger than the topic allows' : ': consumption pauses and retries'}`,
        { retriable: !tooLarge, cause: err },
      );
    }
  }

  async disconnect(): Promise<void> {
    if (this.connected) await this.producer.disconnect().catch(() => undefined);
    this.connected = undefined;
  }
}

/**
 * At most this many bytes of records in one produce request. The broker
 * checks each partition's record batch against the topic's
 * max.message.bytes (1 MiB by default): side-topic records are copies of
 * source records, each up to that size, so a checkpoint's dead letters
 * sent together could exceed it and be refused however often retried.
 */
export const SIDE_REQUEST_BYTES = 512 * 1024;

function headerBytes(value: Buffer | string | (Buffer | string)[] | undefined): number {
  if (value === undefined) return 0;
  if (Array.isArray(value)) return value.reduce((n, v) => n + Buffer.byteLength(v), 0);
  return Buffer.byteLength(value);
}

/** A record's size in a batch, near enough: key, value, header names and values, and per-record overhead. */
export function messageBytes(message: Message): number {
  let bytes =
    32 + (message.key ? Buffer.byteLength(message.key) : 0) + (message.value ? Buffer.byteLength(message.value) : 0);
  for (const [name, value] of Object.entries(message.headers ?? {}))
    bytes += Buffer.byteLength(name) + headerBytes(value);
  return bytes;
}

/** Splits messages (in order) into requests of at most SIDE_REQUEST_BYTES; a larger record goes alone. */
export function requestsOf(messages: Map<string, Message[]>, limit = SIDE_REQUEST_BYTES): Map<string, Message[]>[] {
  const requests: Map<string, Message[]>[] = [];
  let current = new Map<string, Message[]>();
  let bytes = 0;
  for (const [topic, list] of messages) {
    for (const message of list) {
      const size = messageBytes(message);
      if (bytes > 0 && bytes + size > limit) {
        requests.push(current);
        current = new Map();
        bytes = 0;
      }
      const forTopic = current.get(topic) ?? [];
      forTopic.push(message);
      current.set(topic, forTopic);
      bytes += size;
    }
  }
  if (bytes > 0) requests.push(current);
  return requests;
}

/** Groups messages by destination topic, keeping their order. */
export function byTopic<T>(items: T[], route: (item: T) => [string, Message]): Map<string, Message[]> {
  const out = new Map<string, Message[]>();
  for (const item of items) {
    const [topic, message] = route(item);
    const list = out.get(topic) ?? [];
    list.push(message);
    out.set(topic, list);
  }
  return out;
}
