import { readTopic as readRecords } from '../../src/dlq';
import { createEventEncoder } from '../../src/generator';
import {
  createKafka,
  type KafkaClient,
  type KafkaProducer,
  type RecordHeaders,
  type ConsumedRecord,
} from '../../src/kafka';
import { SchemaCodec, loadAvroSchema } from '../../src/schema';
import { ANALYTICS_EVENT_SCHEMA, type AnalyticsEvent } from '../../streams/event-counts';
import type { TestContext } from './context';

/** A record as specs compare it: headers as strings. */
export interface ReadRecord {
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

function headerStrings(headers: RecordHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    const first = Array.isArray(v) ? v[0] : v;
    if (first !== undefined) out[k] = first.toString();
  }
  return out;
}

export const toReadRecord = (r: ConsumedRecord): ReadRecord => ({
  partition: r.partition,
  offset: r.offset,
  key: r.key,
  value: r.value,
  headers: headerStrings(r.headers),
});

/** Reads a topic from the beginning up to its current end offsets, as a read_committed reader sees it. */
export async function readTopic(kafka: KafkaClient, topic: string, timeoutMs = 60_000): Promise<ReadRecord[]> {
  const records: ReadRecord[] = [];
  await readRecords(
    kafka,
    topic,
    (r) =>
      records.push({
        partition: r.partition,
        offset: r.offset,
        key: r.key,
        value: r.value,
        headers: headerStrings(r.headers),
      }),
    { timeoutMs },
  );
  return records;
}

/** A source topic of the reference stream with its side topics, an encoder registered for it, and a connected producer. */
export async function referenceSource(
  ctx: TestContext,
  partitions: number,
): Promise<{ topic: string; encode: (event: AnalyticsEvent) => Buffer; producer: KafkaProducer }> {
  const topic = await ctx.createTopic('events', partitions);
  await ctx.createTopic('events.dlq', 1);
  await ctx.createTopic('events.late', 1);
  const schema = loadAvroSchema(ANALYTICS_EVENT_SCHEMA);
  const encode = createEventEncoder(
    await SchemaCodec.fromConfig(ctx.config).register(`${topic}-value`, schema),
    schema,
  );
  const producer = createKafka(ctx.config).producer();
  await producer.connect();
  return { topic, encode, producer };
}
