/**
 * A generator producing in real time: the reference workload with event time
 * ≈ wall time (`startTime` = now − out-of-orderness, so the generator's head
 * is the wall clock), sent at a steady rate in small paced batches. Every
 * log entry goes to the caller (an ExpectedAnswerBuilder), so the windows
 * it should produce are known.
 */
import type { SluiceConfig } from '../../src/config';
import { createEventEncoder, generateWorkload, toLogEntry, type WorkloadLogEntry } from '../../src/generator';
import { ANALYTICS_EVENT_V2_SCHEMA } from '../../streams/event-counts/event';
import { partitionForKey } from '../../src/generator/partition';
import { createKafka } from '../../src/kafka';
import { SchemaCodec, loadAvroSchema } from '../../src/schema';
import { sleep } from '../../src/clock';

export interface SteadyOptions {
  config: SluiceConfig;
  topic: string;
  partitions: number;
  ratePerSecond: number;
  seconds: number;
  seed: number;
  outOfOrderMs: number;
  /** Campaigns in the workload: 5 event types x (campaigns + none) group keys per window. */
  campaigns: number;
  onLogEntry: (entry: WorkloadLogEntry) => void;
}

export interface SteadyResult {
  records: number;
  /** Wall time (= event-time head) of record 0, epoch ms. */
  startedAt: number;
  /** Event-time head of the last record, epoch ms. */
  lastHead: number;
  /** Largest delay of a batch behind its schedule, ms (the producer keeping up). */
  maxLagMs: number;
  /**
   * The wall time each sent batch was acknowledged, with the event-time head of its last record, in
   * order: when data reaching a given event time was in Kafka (see `inKafkaAt`).
   */
  sends: { head: number; ackedAt: number }[];
}

/**
 * When the first record with an event-time head at or past `head` was acknowledged by Kafka: the
 * earliest a processor can have seen that event time (later than `head` itself when the producer fell
 * behind its schedule). Undefined if no record got that far.
 */
export function inKafkaAt(sends: SteadyResult['sends'], head: number): number | undefined {
  let lo = 0;
  let hi = sends.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sends[mid]!.head >= head) hi = mid;
    else lo = mid + 1;
  }
  return sends[lo]?.ackedAt;
}

const TICK_MS = 50;
/**
 * Records per produce request at most: after a stall the producer catches up
 * in several requests, each partition's batch well under the broker's
 * max.message.bytes (1 MiB).
 */
const MAX_BATCH = 3000;

export async function produceSteady(o: SteadyOptions): Promise<SteadyResult> {
  const schema = loadAvroSchema(ANALYTICS_EVENT_V2_SCHEMA);
  const schemaId = await SchemaCodec.fromConfig(o.config).register(`${o.topic}-value`, schema);
  const encode = createEventEncoder(schemaId, schema);
  const count = Math.max(1, Math.round(o.ratePerSecond * o.seconds));
  const startedAt = Date.now();
  const records = generateWorkload(
    {
      count,
      seed: o.seed,
      ratePerSecond: o.ratePerSecond,
      startTime: startedAt - o.outOfOrderMs,
      duplicateRatio: 0.02,
      outOfOrderMs: o.outOfOrderMs,
      campaigns: o.campaigns,
      lateRatio: 0.005,
      poisonRatio: 0.001,
    },
    encode,
  );
  // Every message names its partition, chosen as the generator does.
  const producer = createKafka(o.config).producer({ idempotent: true });
  await producer.connect();
  let sent = 0;
  let maxLagMs = 0;
  const sends: SteadyResult['sends'] = [];
  const msPerRecord = 1000 / o.ratePerSecond;
  try {
    while (sent < count) {
      const due = Math.min(count, Math.floor((Date.now() - startedAt) / msPerRecord) + 1, sent + MAX_BATCH);
      const batchSize = due - sent;
      if (batchSize > 0) {
        maxLagMs = Math.max(maxLagMs, Date.now() - (startedAt + sent * msPerRecord));
        const messages = [];
        const entries: WorkloadLogEntry[] = [];
        for (; sent < due; sent++) {
          const next = records.next();
          if (next.done) break;
          const r = next.value;
          const key = r.key === null ? null : Buffer.from(r.key);
          const partition = key === null ? r.seq % o.partitions : partitionForKey(key, o.partitions);
          messages.push({ key, value: r.value, partition });
          const entry = toLogEntry(r);
          entry.partition = partition;
          entries.push(entry);
        }
        await producer.send({ topic: o.topic, messages });
        sends.push({ head: startedAt + Math.floor((sent - 1) * msPerRecord), ackedAt: Date.now() });
        for (const e of entries) o.onLogEntry(e);
      }
      // Behind schedule (a full batch went out): send the next at once; on schedule: wait for the next tick.
      if (batchSize < MAX_BATCH) await sleep(TICK_MS);
    }
  } finally {
    await producer.disconnect();
  }
  return {
    records: count,
    startedAt,
    lastHead: startedAt + Math.floor((count - 1) * msPerRecord),
    maxLagMs: Math.round(maxLagMs),
    sends,
  };
}
