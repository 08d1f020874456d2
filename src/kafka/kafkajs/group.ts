import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { sleep } from '../../clock';
import { describeError } from '../../errors';
import { CommitFencedError, type GroupConsumer, type GroupConsumerOptions, type GroupHandlers } from '../group';
import type { ConsumedRecord } from '../record';
import { groupProtocolMismatch } from '../explain';
import { GENERATION_OVER, GROUP_PROTOCOL_REFUSED, hasProtocolError } from './errors';

/** How long to wait before building a new consumer after kafkajs gave one up, at most. */
const REBUILD_MAX_DELAY_MS = 10_000;

/**
 * A consumer-group member on kafkajs (eager rebalancing: every join re-assigns every partition).
 *
 * It outlives Kafka outages: calls into the consumer while kafkajs restarts it (it throws "Consumer
 * group was not initialized") are dropped, since every restore seeks and resumes again; and when
 * kafkajs gives a consumer up for good (a crash it will not restart from, e.g. "Failed to find group
 * coordinator" after the brokers return) a new one joins the group in its place, as a new member, so
 * the runner restores every partition.
 */
export class KafkajsGroupConsumer implements GroupConsumer {
  private consumer?: Consumer;
  private stopped = false;
  private rebuilds = 0;

  constructor(
    private readonly kafka: Kafka,
    private readonly options: GroupConsumerOptions,
  ) {}

  async start(handlers: GroupHandlers): Promise<void> {
    const { groupId, topic, sessionTimeoutMs, maxWaitMs = 200, retries = 8 } = this.options;
    const consumer = this.kafka.consumer({
      groupId,
      sessionTimeout: sessionTimeoutMs,
      heartbeatInterval: Math.min(3000, Math.floor(sessionTimeoutMs / 3)),
      maxWaitTimeInMs: maxWaitMs,
      // Every assigned partition must fit in one fetch: a partition left out of the first fetches
      // holds the stream watermark at -Infinity while the others run ahead (docs/design.md §3.5).
      maxBytesPerPartition: 1024 * 1024,
      maxBytes: 64 * 1024 * 1024,
      retry: { retries },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      if (this.consumer === consumer)
        handlers.onAssignment({ partitions: payload.memberAssignment[topic] ?? [], memberId: payload.memberId });
    });
    // kafkajs never hands a batch of only commit markers or aborted records to eachBatch: it moves past
    // it on its own. The runner must hear of it, or a partition ending in a marker never looks finished.
    consumer.on(consumer.events.START_BATCH_PROCESS, ({ payload }) => {
      if (payload.batchSize === 0 && payload.firstOffset != null)
        handlers.onSkip?.(payload.partition, String(payload.firstOffset), String(BigInt(payload.lastOffset) + 1n));
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (this.consumer !== consumer) return;
      if (hasProtocolError(payload.error, GROUP_PROTOCOL_REFUSED)) {
        // A new member would be refused the same way, for ever and without a word: the run stops, saying why.
        this.stopped = true;
        this.consumer = undefined;
        void consumer.disconnect().catch(() => undefined);
        handlers.onCrash(groupProtocolMismatch(groupId, { client: 'kafkajs', protocol: 'classic' }, payload.error));
      } else if (!payload.restart) void this.rebuild(consumer, handlers);
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      // Partitions are processed side by side in small chunks, so event time advances evenly across
      // them and the stream watermark (their minimum) is known early.
      partitionsConsumedConcurrently: 8,
      eachBatch: ({ batch, resolveOffset, heartbeat, pause, isRunning, isStale }: EachBatchPayload) => {
        const records: ConsumedRecord[] = batch.messages.map((m) => ({
          topic,
          partition: batch.partition,
          offset: m.offset,
          timestamp: m.timestamp,
          key: m.key ?? null,
          value: m.value ?? null,
          headers: m.headers ?? {},
        }));
        return handlers.onBatch(batch.partition, records, {
          // Set by kafkajs on every batch (the offset it asked the broker for), though its typings omit it.
          fetchedOffset: String((batch as unknown as { fetchedOffset: string }).fetchedOffset),
          lastOffset: batch.lastOffset(),
          resolve: resolveOffset,
          heartbeat,
          pause: () => void pause(),
          isCurrent: () => this.consumer === consumer && isRunning() && !isStale(),
        });
      },
    });
  }

  /** Replaces a consumer kafkajs gave up, retrying (with a growing delay) until a new one runs. */
  private async rebuild(dead: Consumer, handlers: GroupHandlers): Promise<void> {
    this.consumer = undefined;
    await dead.disconnect().catch(() => undefined);
    while (!this.stopped) {
      await sleep(Math.min(REBUILD_MAX_DELAY_MS, 500 * 2 ** Math.min(this.rebuilds++, 5)));
      if (this.stopped) return;
      try {
        await this.start(handlers);
        return;
      } catch {
        const failed = this.consumer as Consumer | undefined;
        this.consumer = undefined;
        await failed?.disconnect().catch(() => undefined);
      }
    }
  }

  /** Calls into kafkajs, which throws while it restarts its consumer: the runner's next restore seeks and resumes again. */
  private guarded(call: (consumer: Consumer) => void): void {
    if (!this.consumer) return;
    try {
      call(this.consumer);
    } catch {
      /* the consumer is between runs: nothing to pause, resume or seek now */
    }
  }

  pause(partitions: number[]): void {
    if (partitions.length > 0) this.guarded((c) => c.pause([{ topic: this.options.topic, partitions }]));
  }

  resume(partitions: number[]): void {
    if (partitions.length > 0) this.guarded((c) => c.resume([{ topic: this.options.topic, partitions }]));
  }

  seek(partition: number, offset: string): void {
    this.guarded((c) => c.seek({ topic: this.options.topic, partition, offset }));
  }

  async commit(offsets: { partition: number; offset: string; metadata?: string }[]): Promise<void> {
    if (!this.consumer) throw new CommitFencedError('the consumer is not running');
    try {
      await this.consumer.commitOffsets(
        offsets.map((o) => ({
          topic: this.options.topic,
          partition: o.partition,
          offset: o.offset,
          metadata: o.metadata ?? null,
        })),
      );
    } catch (err) {
      if (hasProtocolError(err, GENERATION_OVER)) throw new CommitFencedError(describeError(err), err);
      throw err;
    }
  }

  async disconnect(): Promise<void> {
    this.stopped = true;
    await this.consumer?.disconnect();
  }
}
