import { CompressionTypes, type Kafka, type Producer } from 'kafkajs';
import { describeError, ServiceError } from '../../errors';
import { CommitFencedError, type PartitionTransactions, type SideRecord } from '../group';
import { PRODUCER_FENCED, hasProtocolError, sendFailure } from './errors';

/** How long Kafka lets a partition's transaction stay open before aborting it. */
export const TRANSACTION_TIMEOUT_MS = 10_000;

/** The transactional id of one input partition of one group. */
export const partitionTransactionalId = (groupId: string, topic: string, partition: number) =>
  `${groupId}.${topic}.${partition}`;

/**
 * One transactional producer per input partition (the identity Kafka fences
 * by), on kafkajs. kafkajs sends TxnOffsetCommit without the consumer group's
 * generation (KIP-447), so a producer per partition, taken over by whoever
 * owns the partition, is what fences a former owner, as Kafka Streams did
 * before KIP-447.
 *
 * A commit that fails leaves the partition without a producer: the runtime
 * restores the partition, which takes the identity over again (completing or
 * aborting the failed transaction) and reads the committed offset afresh, so
 * a commit whose outcome was unknown is never written twice.
 */
class KafkajsPartitionTransactions implements PartitionTransactions {
  private readonly producers = new Map<number, Producer>();

  constructor(
    private readonly kafka: Kafka,
    private readonly groupId: string,
    private readonly topic: string,
  ) {}

  async fence(partition: number): Promise<void> {
    await this.release(partition);
    const producer = this.kafka.producer({
      transactionalId: partitionTransactionalId(this.groupId, this.topic, partition),
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // A transaction here lasts one commit (rows were written before it): one left open by a process that
      // died is aborted by Kafka after this, so read_committed readers of the side topics wait at most that long.
      transactionTimeout: TRANSACTION_TIMEOUT_MS,
    });
    try {
      await producer.connect();
      // InitProducerId: bumps the id's epoch, aborts the last holder's open transaction, and waits
      // (retrying CONCURRENT_TRANSACTIONS) until one being completed is complete. kafkajs does it on
      // the first transaction; an empty one ends without a request.
      await (await producer.transaction()).abort();
    } catch (err) {
      await producer.disconnect().catch(() => undefined);
      throw new ServiceError(
        'kafka',
        `cannot take over the transactions of ${this.topic}/${partition}: ${describeError(err)}`,
        { retriable: true, cause: err },
      );
    }
    this.producers.set(partition, producer);
  }

  async commit(partition: number, records: SideRecord[], offset: { offset: string; metadata?: string }): Promise<void> {
    const producer = this.producers.get(partition);
    if (!producer) throw new CommitFencedError(`this member holds no transactions of ${this.topic}/${partition}`);
    const transaction = await producer.transaction();
    try {
      const byTopic = new Map<string, SideRecord[]>();
      for (const r of records) byTopic.set(r.topic, [...(byTopic.get(r.topic) ?? []), r]);
      for (const [topic, list] of byTopic) {
        // Compressed: a record accepted by the source topic in a compressed batch may be too large uncompressed.
        await transaction.send({
          topic,
          acks: -1,
          compression: CompressionTypes.GZIP,
          messages: list.map((r) => ({ key: r.key, value: r.value, headers: r.headers })),
        });
      }
      await transaction.sendOffsets({
        consumerGroupId: this.groupId,
        // kafkajs passes the metadata through to TxnOffsetCommit, though its typings omit it.
        topics: [
          {
            topic: this.topic,
            partitions: [
              { partition, offset: offset.offset, metadata: offset.metadata ?? null } as {
                partition: number;
                offset: string;
              },
            ],
          },
        ],
      });
      await transaction.commit();
    } catch (err) {
      await transaction.abort().catch(() => undefined);
      // Whatever went wrong, this producer is done: fenced, or in a state (a commit whose outcome is
      // unknown) that only taking the identity over again resolves.
      await this.release(partition);
      if (hasProtocolError(err, PRODUCER_FENCED))
        throw new CommitFencedError(
          `the transactions of ${this.topic}/${partition} were taken over by another member`,
          err,
        );
      if (sendFailure(err) === 'topic-missing')
        throw new ServiceError(
          'kafka',
          `transaction of ${this.topic}/${partition} failed: a side topic it writes to (${[...new Set(records.map((r) => r.topic))].join(', ')}) does not exist; create it with 'sluice topics apply' (the partition's work since its last commit is redone until it exists)`,
          { retriable: true, cause: err },
        );
      throw new ServiceError(
        'kafka',
        `transaction of ${this.topic}/${partition} failed, outcome unknown: ${describeError(err)}`,
        { retriable: true, cause: err },
      );
    }
  }

  async release(partition: number): Promise<void> {
    const producer = this.producers.get(partition);
    this.producers.delete(partition);
    await producer?.disconnect().catch(() => undefined);
  }

  async close(): Promise<void> {
    await Promise.all([...this.producers.keys()].map((p) => this.release(p)));
  }
}

export function kafkajsPartitionTransactions(
  kafka: Kafka,
  options: { groupId: string; topic: string },
): PartitionTransactions {
  return new KafkajsPartitionTransactions(kafka, options.groupId, options.topic);
}
