import { randomBytes } from 'node:crypto';
import type { SluiceConfig } from '../../config';
import { ServiceError, describeError } from '../../errors';
import { createKafka, type KafkaAdmin, type KafkaProducer, type GroupConsumer } from '../../kafka';

export const DEFAULT_SCHEMAS_TOPIC = '_schemas';

export interface LogRecord {
  key: string;
  value: string | null;
}

type Apply = (key: Buffer | null, value: Buffer | null, offset: number) => void;

/**
 * The registry's storage: one compacted, single-partition Kafka topic read
 * from the beginning by every instance. Writes are produced with acks=all and
 * take effect only when the instance reads them back, so an instance's state
 * is always a prefix of the log, the same for every instance and after every
 * restart.
 */
export class SchemaLog {
  readonly topic: string;
  private readonly admin: KafkaAdmin;
  private readonly producer: KafkaProducer;
  private readonly consumer: GroupConsumer;
  private readonly groupId: string;
  /** The next offset to apply: everything before it is in the state. */
  private position = 0;
  private readonly waiters: { offset: number; resolve: () => void; reject: (err: Error) => void }[] = [];
  private crashed: Error | undefined;

  constructor(config: Pick<SluiceConfig, 'kafka'>, topic: string = DEFAULT_SCHEMAS_TOPIC) {
    this.topic = topic;
    const kafka = createKafka(config, { clientId: `${config.kafka.clientId}-registry` });
    this.admin = kafka.admin();
    this.producer = kafka.producer();
    // Sluice consumes through a group; each instance gets its own, never
    // commits, and always starts from the beginning: the group is just a reader.
    this.groupId = `sluice-registry-${randomBytes(6).toString('hex')}`;
    // A reader that gave up (Kafka away for longer than its retries, e.g. a broker restart) comes back by
    // itself (the group consumer joins again as a new member), or every later registration would fail until
    // the registry is restarted. It then re-reads from the beginning (the group commits nothing); records
    // already applied are skipped.
    this.consumer = kafka.consumer({
      groupId: this.groupId,
      topic: this.topic,
      sessionTimeoutMs: 30_000,
      maxWaitMs: 250,
    });
  }

  /** Creates the topic if missing, then applies every record already in it before resolving. */
  async start(apply: Apply): Promise<void> {
    try {
      await this.admin.connect();
      await this.ensureTopic();
      await this.producer.connect();
    } catch (err) {
      throw unreachable(`cannot open the registry topic ${this.topic}`, err);
    }
    try {
      await this.consumer.start({
        onAssignment: () => undefined,
        onBatch: async (_partition, records, control) => {
          for (const record of records) {
            const offset = Number(record.offset);
            if (offset < this.position) continue; // read again after a restart: already in the state
            apply(record.key, record.value, offset);
            this.advance(offset + 1);
          }
          control.resolve(control.lastOffset);
        },
        onCrash: (err) => {
          this.crashed = err instanceof Error ? err : new Error(String(err));
        },
      });
    } catch (err) {
      throw unreachable(`cannot open the registry topic ${this.topic}`, err);
    }
    await this.syncToEnd(60_000);
  }

  private async ensureTopic(): Promise<void> {
    const topics = await this.admin.listTopics();
    if (topics.includes(this.topic)) return;
    // Replication follows the broker's default.replication.factor (1 on the local stack).
    await this.admin.createTopics([
      { topic: this.topic, numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] },
    ]);
  }

  private advance(position: number): void {
    if (position <= this.position) return;
    this.position = position;
    for (let i = this.waiters.length - 1; i >= 0; i -= 1) {
      const waiter = this.waiters[i]!;
      if (waiter.offset < position) {
        this.waiters.splice(i, 1);
        waiter.resolve();
      }
    }
  }

  /** Resolves once the record at `offset` has been applied. */
  private waitApplied(offset: number, timeoutMs: number): Promise<void> {
    if (offset < this.position) return Promise.resolve();
    if (this.crashed) return Promise.reject(unreachable(`the registry stopped reading ${this.topic}`, this.crashed));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const index = this.waiters.findIndex((w) => w.resolve === done);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(
          new ServiceError(
            'registry',
            `timed out reading back offset ${offset} of ${this.topic} after ${timeoutMs} ms`,
            { retriable: true },
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push({ offset, resolve: done, reject: (err) => (clearTimeout(timer), reject(err)) });
    });
  }

  /** Waits until every record written to the topic so far has been applied. */
  async syncToEnd(timeoutMs = 10_000): Promise<void> {
    let high: number;
    try {
      const [partition] = await this.admin.fetchTopicOffsets(this.topic);
      high = Number(partition?.high ?? 0);
    } catch (err) {
      throw unreachable(`cannot read the end of ${this.topic}`, err);
    }
    if (high > 0) await this.waitApplied(high - 1, timeoutMs);
  }

  /** Produces the records (acks=all) and resolves once all of them have been applied here. */
  async append(records: LogRecord[], timeoutMs = 30_000): Promise<void> {
    let last: number;
    try {
      const written = await this.producer.send({ topic: this.topic, messages: records });
      last = Math.max(...written.map((w) => Number(w.offset)));
    } catch (err) {
      throw unreachable(`cannot write to ${this.topic}`, err);
    }
    await this.waitApplied(last, timeoutMs);
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect().catch(() => undefined);
    await this.producer.disconnect().catch(() => undefined);
    // The reader group never committed anything; remove it so groups do not pile up.
    await this.admin.deleteGroups([this.groupId]).catch(() => undefined);
    await this.admin.disconnect().catch(() => undefined);
    for (const waiter of this.waiters.splice(0))
      waiter.reject(new ServiceError('registry', 'the registry is shutting down', { retriable: true }));
  }
}

function unreachable(what: string, err: unknown): ServiceError {
  return new ServiceError(
    'registry',
    `${what}: Kafka is unreachable or refused (${describeError(err)}); check SLUICE_KAFKA_BROKERS`,
    {
      retriable: true,
      cause: err,
    },
  );
}
