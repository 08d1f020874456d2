import type { SluiceConfig } from '../config';
import { ServiceError, SluiceError, describeError } from '../errors';
import { dlqTopic, lateTopic } from '../dlq';
import { createKafka, type KafkaClient, type Message } from '../kafka';
import { SchemaCodec, loadAvroSchema } from '../schema';
import { createEventEncoder } from './encode';
import { partitionForKey } from './partition';
import { ANALYTICS_EVENT_V2_SCHEMA } from '../../streams/event-counts/event';
import { LogWriter, toLogEntry, type WorkloadLogEntry } from './log';
import { WorkloadTally, type WorkloadSummary } from './summary';
import {
  WorkloadOptionsError,
  generateWorkload,
  resolveWorkloadOptions,
  type WorkloadOptions,
  type WorkloadRecord,
} from './workload';

export interface ProduceWorkloadOptions extends WorkloadOptions {
  config: SluiceConfig;
  topic: string;
  /**
   * The schema id to write with: that of `avro/analytics_event.v2.avsc`. By
   * default that schema is registered under `<topic>-value` (idempotent) and
   * its id used.
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
 * or null key), placed by Kafka's default murmur2 partitioner (the Java
 * client's choice, so other clients agree on partitions; null keys
 * round-robin by seq), acks=all on an idempotent
 * producer, in large batches sent one at a time (which keeps the production
 * order within each partition equal to the log order). Record timestamps are
 * left to the broker's clock: setting them to event times could put records
 * behind the topic's retention and have them deleted at once.
 */
export async function produceWorkload(options: ProduceWorkloadOptions): Promise<ProduceResult> {
  const { config, topic, batchSize = 20_000 } = options;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1)
    throw new WorkloadOptionsError('batch size must be a positive integer');
  resolveWorkloadOptions(options); // bad knobs fail before anything is created or sent
  const kafka = createKafka(config);

  const partitions = await prepareTopic(kafka, config, topic, options.createPartitions);

  const schema = loadAvroSchema(ANALYTICS_EVENT_V2_SCHEMA);
  const schemaId =
    options.schemaId ?? (await (options.codec ?? SchemaCodec.fromConfig(config)).register(`${topic}-value`, schema));
  const encode = createEventEncoder(schemaId, schema);

  const logWriter = options.logPath ? new LogWriter(options.logPath) : undefined;
  const kept: WorkloadLogEntry[] | undefined = options.keepLog ? [] : undefined;
  const tally = new WorkloadTally();
  // Idempotent: one request at a time, which keeps each partition's records in order.
  // Every message carries the partition batchRecords chose.
  const producer = kafka.producer({ idempotent: true });
  const batches = batchRecords(generateWorkload(options, encode), partitions, batchSize);
  await producer.connect();
  const started = process.hrtime.bigint();
  try {
    let sent = 0;
    let inFlight: Promise<void> | undefined;
    // Batch k+1 is generated while batch k is on the wire; batch k+1 is sent
    // only after batch k is acknowledged, so each partition receives records
    // in log order (a duplicate always after its original).
    for (let next = batches.next(); ; next = batches.next()) {
      if (inFlight) await inFlight;
      if (next.done) break;
      const batch = next.value;
      inFlight = (async () => {
        await producer.send({ topic, messages: batch.messages });
        sent += batch.messages.length;
        for (const entry of batch.entries) tally.add(entry.entry, entry.valueBytes);
        if (logWriter) await logWriter.write(batch.entries.map((e) => e.entry));
        if (kept) for (const e of batch.entries) kept.push(e.entry);
        if (options.onLogEntry) for (const e of batch.entries) options.onLogEntry(e.entry);
        options.onProgress?.(sent, options.count);
      })();
      // Its failure surfaces at the `await inFlight` above; until then it must not count as unhandled.
      inFlight.catch(() => undefined);
      // Let kafkajs encode and write the request before the next batch is generated.
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
    }
  } catch (err) {
    if (err instanceof SluiceError) throw err;
    throw new ServiceError('kafka', `producing to '${topic}' failed: ${describeError(err)}`, {
      retriable: true,
      cause: err,
    });
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

/** Checks the topic exists (or creates it, with its `.dlq` and `.late`, when asked) and returns its partition count. */
async function prepareTopic(
  kafka: KafkaClient,
  config: SluiceConfig,
  topic: string,
  createPartitions: number | undefined,
): Promise<number> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    const existing = new Set(await admin.listTopics());
    if (!existing.has(topic)) {
      if (createPartitions === undefined)
        throw new SluiceError(
          'TOPIC_MISSING',
          `topic '${topic}' does not exist: create it first (sluice topics apply) or pass --partitions N`,
        );
      // With its side topics, so that `sluice run --topic` can process it at once (it requires them).
      await admin.createTopics(
        [
          { topic, numPartitions: createPartitions },
          { topic: dlqTopic(topic), numPartitions: 1 },
          { topic: lateTopic(topic), numPartitions: 1 },
        ].filter((t) => !existing.has(t.topic)),
      );
    }
    const metadata = await admin.fetchTopicMetadata([topic]);
    const partitions = metadata[0]?.partitions.length ?? 0;
    if (partitions === 0)
      throw new SluiceError('TOPIC_MISSING', `topic '${topic}' has no partitions in the cluster metadata`);
    return partitions;
  } catch (err) {
    if (err instanceof SluiceError) throw err;
    throw new ServiceError(
      'kafka',
      `cannot reach Kafka at ${config.kafka.brokers.join(',')}: ${describeError(err)} (is the stack up? sluice stack status)`,
      {
        retriable: true,
        cause: err,
      },
    );
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * kafkajs groups a request's messages per partition in time quadratic in
 * their number, and the broker refuses a partition's batch above
 * max.message.bytes (1 MiB by default): a batch closes when any partition
 * reaches either bound, or at `batchSize` records in all.
 */
const MAX_RECORDS_PER_PARTITION = 800;
const MAX_BYTES_PER_PARTITION = 768 * 1024;
/** Per-record overhead in a Kafka record batch (lengths, deltas, attributes), roughly. */
const RECORD_OVERHEAD_BYTES = 24;

interface Batch {
  messages: Message[];
  entries: { entry: WorkloadLogEntry; valueBytes: number }[];
}

/**
 * Groups records into produce batches and picks each record's partition
 * here: keyed records by Kafka's default murmur2 partitioner (as the Java
 * client and kafkajs's DefaultPartitioner would), null-keyed poison
 * round-robin by seq, so that the whole placement is deterministic. The log
 * records the partition.
 */
function* batchRecords(
  records: Iterable<WorkloadRecord>,
  partitions: number,
  batchSize: number,
): Generator<Batch, void, undefined> {
  let batch: Batch = { messages: [], entries: [] };
  const perPartitionRecords = new Array<number>(partitions).fill(0);
  const bytes = new Array<number>(partitions).fill(0);
  for (const record of records) {
    const key = record.key === null ? null : Buffer.from(record.key);
    const partition = key === null ? record.seq % partitions : partitionForKey(key, partitions);
    batch.messages.push({ key, value: record.value, partition });
    const entry = toLogEntry(record);
    entry.partition = partition;
    batch.entries.push({ entry, valueBytes: record.value.length });
    perPartitionRecords[partition] = perPartitionRecords[partition]! + 1;
    bytes[partition] = bytes[partition]! + record.value.length + (key?.length ?? 0) + RECORD_OVERHEAD_BYTES;
    if (
      batch.messages.length >= batchSize ||
      perPartitionRecords[partition]! >= MAX_RECORDS_PER_PARTITION ||
      bytes[partition]! >= MAX_BYTES_PER_PARTITION
    ) {
      yield batch;
      batch = { messages: [], entries: [] };
      perPartitionRecords.fill(0);
      bytes.fill(0);
    }
  }
  if (batch.messages.length > 0) yield batch;
}
