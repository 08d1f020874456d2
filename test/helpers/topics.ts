import { readTopic as readRecords } from '../../src/dlq';
import type { KafkaClient, RecordHeaders, ConsumedRecord } from '../../src/kafka';

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
