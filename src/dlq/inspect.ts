import type { Kafka } from 'kafkajs';
import { errorClassOf, headerString } from './headers';
import type { ConsumedRecord } from '../kafka';
import { readTopic } from './reader';

export interface DeadLetterSummary {
  topic: string;
  total: number;
  /** error class → count, largest first. */
  byClass: [string, number][];
}

export async function summarizeDeadLetters(kafka: Kafka, topic: string): Promise<DeadLetterSummary> {
  const counts = new Map<string, number>();
  let total = 0;
  await readTopic(kafka, topic, (r) => {
    total += 1;
    const cls = errorClassOf(r.headers);
    counts.set(cls, (counts.get(cls) ?? 0) + 1);
  });
  return { topic, total, byClass: [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])) };
}

export async function firstDeadLetters(kafka: Kafka, topic: string, limit: number): Promise<ConsumedRecord[]> {
  const records: ConsumedRecord[] = [];
  await readTopic(kafka, topic, (r) => records.push(r), { limit });
  // Several partitions arrive interleaved; show them in a stable order.
  return records.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
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
