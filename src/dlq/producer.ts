import type { Kafka, Message, Producer } from 'kafkajs';
import { ServiceError } from '../errors';

/**
 * The producer behind every side topic: idempotent with acks=all, so a
 * dead letter acknowledged here survives a broker failover and a retry of the
 * same send does not write it twice. One concern: turn failures into
 * ServiceErrors the runtime can act on.
 */
export class SideTopicProducer {
  private readonly producer: Producer;
  private connected?: Promise<void>;

  constructor(kafka: Kafka) {
    this.producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  }

  async send(messages: Map<string, Message[]>): Promise<void> {
    if (messages.size === 0) return;
    try {
      this.connected ??= this.producer.connect();
      await this.connected;
      await this.producer.sendBatch({ acks: -1, topicMessages: [...messages].map(([topic, msgs]) => ({ topic, messages: msgs })) });
    } catch (err) {
      this.connected = undefined;
      const text = (err as Error).message;
      const tooLarge = /too large|MESSAGE_TOO_LARGE|RECORD_LIST_TOO_LARGE/i.test(text);
      const missing = /does not host this topic-partition|UNKNOWN_TOPIC_OR_PARTITION|not present in metadata/i.test(text);
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
