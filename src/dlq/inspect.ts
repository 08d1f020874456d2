import { DLQ_HEADERS, errorClassOf, headerString, LATE_HEADERS } from './headers';
import { ConfigError } from '../errors';
import { topicOffsets, withAdmin, type KafkaClient, type ConsumedRecord } from '../kafka';
import { readTopic } from './reader';

/** What a side-topic record is counted and filtered by: a dead letter's error class, a late event's reason. */
export type SideTopicKind = 'dlq' | 'late';
export const sideTopicKind = (topic: string): SideTopicKind => (topic.endsWith('.late') ? 'late' : 'dlq');
export function classOf(kind: SideTopicKind, r: Pick<ConsumedRecord, 'headers'>): string {
  return kind === 'late' ? (headerString(r.headers, LATE_HEADERS.reason) ?? 'unknown') : errorClassOf(r.headers);
}

export interface DeadLetterSummary {
  topic: string;
  total: number;
  /** error class → count, largest first. */
  byClass: [string, number][];
}

/** Counts per error class (`.dlq`) or per reason (`.late`, by the topic's name). */
export async function summarizeDeadLetters(kafka: KafkaClient, topic: string): Promise<DeadLetterSummary> {
  const counts = new Map<string, number>();
  const kind = sideTopicKind(topic);
  let total = 0;
  await readTopic(kafka, topic, (r) => {
    total += 1;
    const cls = classOf(kind, r);
    counts.set(cls, (counts.get(cls) ?? 0) + 1);
  });
  return { topic, total, byClass: [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])) };
}

export async function firstDeadLetters(kafka: KafkaClient, topic: string, limit: number): Promise<ConsumedRecord[]> {
  const records: ConsumedRecord[] = [];
  await readTopic(kafka, topic, (r) => records.push(r), { limit });
  // Several partitions arrive interleaved; show them in a stable order.
  return records.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
}

export interface SideRecordFilter {
  limit: number;
  /** Error class (`.dlq`, a former name counts as its current one) or reason (`.late`). */
  errorClass?: string;
  partition?: number;
  /** From this offset on (in the chosen partition, or in every partition). */
  fromOffset?: bigint;
}

/** The first `limit` records that match, in partition then offset order. */
export async function findSideRecords(
  kafka: KafkaClient,
  topic: string,
  filter: SideRecordFilter,
): Promise<ConsumedRecord[]> {
  const kind = sideTopicKind(topic);
  const offsets = await withAdmin(kafka, (admin) => topicOffsets(admin, topic));
  if (filter.partition !== undefined && !offsets.has(filter.partition))
    throw new ConfigError(
      `--partition ${filter.partition}: ${topic} has partitions ${[...offsets.keys()].sort((a, b) => a - b).join(', ')}`,
    );
  // Partitions left out start past their end: the reader skips them.
  const from = new Map(
    [...offsets].map(([p, o]) => [
      p,
      filter.partition !== undefined && p !== filter.partition ? o.high : (filter.fromOffset ?? 0n),
    ]),
  );
  const wanted =
    filter.errorClass === undefined ? undefined : classOf(kind, { headers: dlqClassHeader(kind, filter.errorClass) });
  // Each partition arrives in offset order, so its first `limit` matches are all the answer can need from it.
  const perPartition = new Map<number, ConsumedRecord[]>();
  await readTopic(
    kafka,
    topic,
    (r) => {
      if (wanted !== undefined && classOf(kind, r) !== wanted) return;
      const list = perPartition.get(r.partition) ?? [];
      if (list.length < filter.limit) list.push(r);
      perPartition.set(r.partition, list);
    },
    { from },
  );
  return [...perPartition.values()]
    .flat()
    .sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)))
    .slice(0, filter.limit);
}

/** A filter's class as the header it would be read from, so it is compared under the same (current) name. */
function dlqClassHeader(kind: SideTopicKind, name: string): Record<string, string> {
  return kind === 'late' ? { [LATE_HEADERS.reason]: name } : { [DLQ_HEADERS.errorClass]: name };
}

/** Bytes as an operator wants to see them: printable text as text, anything else as hex as well. */
export function bytesSnippet(bytes: Buffer | null, max = 64): string {
  if (bytes === null) return 'null';
  const head = bytes.subarray(0, max);
  const more = bytes.length > max ? ` …(+${bytes.length - max} bytes)` : '';
  const text = head.toString('utf8');
  const printable = !text.includes('\uFFFD') && /^[\x20-\x7E\t\r\n\u00A0-\uFFFF]*$/.test(text);
  return printable
    ? `${JSON.stringify(text)}${more}`
    : `hex ${head.toString('hex').replace(/(..)/g, '$1 ').trim()}${more} | utf8 ${JSON.stringify(text.replace(/[^\x20-\x7E]/g, '.'))}`;
}

export function formatDeadLetter(r: ConsumedRecord): string[] {
  const lines = [`${r.topic}[${r.partition}]@${r.offset}  timestamp ${new Date(Number(r.timestamp)).toISOString()}`];
  lines.push(`  key    ${bytesSnippet(r.key)}`);
  lines.push(
    `  value  ${r.value === null ? 'null' : `${r.value.length} bytes: `}${r.value === null ? '' : bytesSnippet(r.value)}`,
  );
  for (const name of Object.keys(r.headers).sort()) {
    lines.push(`  header ${name} = ${headerString(r.headers, name)}`);
  }
  return lines;
}

/** A value as decoded for display: the Avro value and its writer schema id, or why it could not be. */
export type ShownValue = { schemaId: number; value: unknown } | { error: string } | undefined;

/** Buffers (Avro bytes and fixed) print as hex: JSON has no bytes, and a {type:'Buffer'} object helps nobody. */
const jsonValue = (_key: string, v: unknown) =>
  v !== null &&
  typeof v === 'object' &&
  (v as { type?: unknown }).type === 'Buffer' &&
  Array.isArray((v as { data?: unknown }).data)
    ? Buffer.from((v as { data: number[] }).data).toString('hex')
    : v;

/**
 * One record as one JSON object, in the shape of `kcat -C -J -s value=avro`:
 * topic, partition, offset, ts, headers as a flat [name, value, ...] list,
 * key as text, payload as the decoded value. Beside kcat's fields,
 * `schema_id`, and for a value that did not decode `payload` null with
 * `payload_error` and `payload_hex` (kcat would stop there).
 */
export function sideRecordJson(r: ConsumedRecord, shown: ShownValue): string {
  const headers = Object.keys(r.headers)
    .sort()
    .flatMap((name) => [name, headerString(r.headers, name) ?? null]);
  const out: Record<string, unknown> = {
    topic: r.topic,
    partition: r.partition,
    offset: Number(r.offset),
    ts: Number(r.timestamp),
    headers,
    key: r.key === null ? null : r.key.toString('utf8'),
  };
  if (shown !== undefined && 'schemaId' in shown) {
    out.payload = shown.value;
    out.schema_id = shown.schemaId;
  } else {
    out.payload = null;
    if (r.value !== null) out.payload_hex = r.value.toString('hex');
    if (shown !== undefined) out.payload_error = shown.error;
  }
  return JSON.stringify(out, jsonValue);
}

/** formatDeadLetter, plus the decoded value (or why it did not decode) under the bytes. */
export function formatSideRecord(r: ConsumedRecord, shown: ShownValue): string[] {
  const [first, ...rest] = formatDeadLetter(r);
  const decoded =
    shown === undefined
      ? []
      : 'schemaId' in shown
        ? [`  avro   schema id ${shown.schemaId}: ${JSON.stringify(shown.value, jsonValue)}`]
        : [`  avro   not decoded: ${shown.error}`];
  return [first!, ...rest.slice(0, 2), ...decoded, ...rest.slice(2)];
}
