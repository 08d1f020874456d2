import { Partitioners, type Message } from 'kafkajs';
import type { SluiceConfig } from '../config';
import { ServiceError, SluiceError, describeError } from '../errors';
import { createKafka } from '../kafka';
import { SchemaCodec, loadAvroSchema } from '../schema';
import { createEventEncoder } from './encode';
import { ANALYTICS_EVENT_SCHEMA } from './event';
import { LogWriter, toLogEntry, type WorkloadLogEntry } from './log';
import { WorkloadTally, type WorkloadSummary } from './summary';
import { generateWorkload, type WorkloadOptions } from './workload';

export interface ProduceWorkloadOptions extends WorkloadOptions {
  config: SluiceConfig;
  topic: string;
  /**
   * The schema id to write with. By default the reference schema is
   * registered under `<topic>-value` (idempotent) and its id used.
   */
  schemaId?: number;
  /** The codec that registers the schema; one is built from `config.registry` otherwise. */
  codec?: SchemaCodec;
  /** Create the topic with this many partitions if it does not exist (otherwise a missing topic is an error). */
  createPartitions?: number;
  /** Records per produce call (one request per broker): large, for throughput. */
  batchSize?: number;
  /** Write the log as NDJSON here. */
  logPath?: string;
  /** Return the whole log in the result (fine for tests; millions of entries are better streamed). */
  keepLog?: boolean;
  /** Called with every log entry, in order (e.g. an `ExpectedAnswerBuilder`). */
  onLogEntry?: (entry: WorkloadLogEntry) => void;
  /** Called after each acknowledged batch. */
  onProgress?: (sent: number, total: number) => void;
}

export interface ProduceResult extends WorkloadSummary {
  topic: string;
  schemaId: number;
  /** Wall-clock seconds from the first send to the last acknowledgement. */
  seconds: number;
  recordsPerSecond: number;
  log?: WorkloadLogEntry[];
}

/**
 * Sends the reference workload to Kafka: keyed by event id (poison: a random
 * or null key), Kafka's default murmur2 partitioner (the Java client's
 * choice, so other clients agree on partitions), acks=all on an idempotent
 * producer, in large batches sent one at a time (which keeps the production
 * order within each partition equal to the log order). Record timestamps are
 * left to the broker's clock: setting them to event times could put records
 * behind the topic's retention and have them deleted at once.
 */
export async function produceWorkload(options: ProduceWorkloadOptions): Promise<ProduceResult> {
  const { config, topic, batchSize = 20_000 } = options;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new SluiceError('WORKLOAD_OPTIONS_INVALID', 'batch size must be a positive integer');
  const kafka = createKafka(config);

  const admin = kafka.admin();
  try {
    await admin.connect();
    const exists = (await admin.listTopics()).includes(topic);
    if (!exists && options.createPartitions === undefined) {
      throw new SluiceError('TOPIC_MISSING', `topic '${topic}' does not exist: create it first (sluice topics apply) or pass --partitions N`);
    }
    if (!exists) {
      await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: options.createPartitions }] });
    }
  } catch (err) {
    if (err instanceof SluiceError) throw err;
    throw new ServiceError('kafka', `cannot reach Kafka at ${config.kafka.brokers.join(',')}: ${describeError(err)} (is the stack up? sluice stack status)`, {
      retriable: true,
      cause: err,
    });
  } finally {
    await admin.disconnect().catch(() => undefined);
  }

  const schema = loadAvroSchema(ANALYTICS_EVENT_SCHEMA);
  const schemaId = options.schemaId ?? (await (options.codec ?? SchemaCodec.fromConfig(config)).register(`${topic}-value`, schema));
  const encode = createEventEncoder(schemaId, schema);

  const logWriter = options.logPath ? new LogWriter(options.logPath) : undefined;
  const kept: WorkloadLogEntry[] | undefined = options.keepLog ? [] : undefined;
  const tally = new WorkloadTally();
  const producer = kafka.producer({
    idempotent: true,
    // One request at a time per producer: what kafkajs's idempotent producer needs to keep order.
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  const started = process.hrtime.bigint();
  try {
    const records = generateWorkload(options, encode);
    const total = options.count;
    let sent = 0;
    for (;;) {
      const messages: Message[] = [];
      const entries: WorkloadLogEntry[] = [];
      for (let next = records.next(); ; next = records.next()) {
        if (next.done) break;
        const record = next.value;
        messages.push({ key: record.key, value: record.value });
        const entry = toLogEntry(record);
        entries.push(entry);
        tally.add(entry, record.value.length);
        if (messages.length >= batchSize) break;
      }
      if (messages.length === 0) break;
      await producer.sendBatch({ acks: -1, topicMessages: [{ topic, messages }] });
      sent += messages.length;
      if (logWriter) await logWriter.write(entries);
      if (kept) for (const e of entries) kept.push(e);
      if (options.onLogEntry) for (const e of entries) options.onLogEntry(e);
      options.onProgress?.(sent, total);
    }
  } catch (err) {
    if (err instanceof SluiceError) throw err;
    throw new ServiceError('kafka', `producing to '${topic}' failed: ${describeError(err)}`, { retriable: true, cause: err });
  } finally {
    await producer.disconnect().catch(() => undefined);
    await logWriter?.close();
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const summary = tally.summary();
  return {
    ...summary,
    topic,
    schemaId,
    seconds,
    recordsPerSecond: summary.records / seconds,
    ...(kept ? { log: kept } : {}),
  };
}
