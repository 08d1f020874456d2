import { createReadStream, createWriteStream, openSync, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { AnalyticsEventV2 } from '../../streams/event-counts/event';
import type { PoisonReason, RecordKind, WorkloadRecord } from './workload';

/**
 * The generator's log: one entry per record sent, in production order. It is
 * everything the expected answer is computed from, so it says what each
 * record is without needing the generator's code to interpret it.
 */
export interface WorkloadLogEntry {
  seq: number;
  kind: RecordKind;
  /** The Kafka key as sent (null: no key). */
  key: string | null;
  eventId?: string;
  /** The event, when the record carries a decodable one (invalid poison included), as written with v2 of the schema. */
  event?: AnalyticsEventV2;
  poisonReason?: PoisonReason;
  duplicateOf?: number;
  /** The partition it was produced to (set by `produceWorkload`; absent from a log generated without Kafka). */
  partition?: number;
  /** Poison only: the exact value bytes, base64, to match what lands in the dead-letter topic. */
  value?: string;
}

export function toLogEntry(record: WorkloadRecord): WorkloadLogEntry {
  const entry: WorkloadLogEntry = { seq: record.seq, kind: record.kind, key: record.key };
  if (record.eventId !== undefined) entry.eventId = record.eventId;
  if (record.event !== undefined) entry.event = record.event;
  if (record.poisonReason !== undefined) entry.poisonReason = record.poisonReason;
  if (record.duplicateOf !== undefined) entry.duplicateOf = record.duplicateOf;
  if (record.kind === 'poison') entry.value = record.value.toString('base64');
  return entry;
}

// JSON has no NaN or infinities (poison uses NaN amounts): write them as strings, read them back.
const NON_FINITE: Record<string, number> = { NaN: Number.NaN, Infinity: Infinity, '-Infinity': -Infinity };

/** One NDJSON line (without the newline). */
export function formatLogLine(entry: WorkloadLogEntry): string {
  return JSON.stringify(entry, (_key, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
}

export function parseLogLine(line: string): WorkloadLogEntry {
  const entry = JSON.parse(line) as WorkloadLogEntry;
  const amount = entry.event?.amount as unknown;
  if (entry.event && typeof amount === 'string' && amount in NON_FINITE) entry.event.amount = NON_FINITE[amount]!;
  // A log of a generator that wrote v1 has no top-level channel: the stream read those events as 'unknown'.
  if (entry.event && typeof entry.event.channel !== 'string') entry.event.channel = 'unknown';
  return entry;
}

/** Reads an NDJSON log written by `LogWriter`, one entry at a time. */
export async function* readLogFile(path: string): AsyncGenerator<WorkloadLogEntry, void, undefined> {
  const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() !== '') yield parseLogLine(line);
  }
}

/** Appends log entries to an NDJSON file, respecting the stream's backpressure. */
export class LogWriter {
  private readonly out: WriteStream;
  private failure: Error | undefined;

  /** Opens (truncates) the file at once, so a bad path fails before any record is sent. */
  constructor(path: string) {
    this.out = createWriteStream(path, { fd: openSync(path, 'w'), encoding: 'utf8' });
    this.out.on('error', (err) => (this.failure = err));
  }

  async write(entries: readonly WorkloadLogEntry[]): Promise<void> {
    if (this.failure) throw this.failure;
    if (entries.length === 0) return;
    const chunk = entries.map((e) => `${formatLogLine(e)}\n`).join('');
    if (!this.out.write(chunk)) await once(this.out, 'drain');
  }

  async close(): Promise<void> {
    if (this.failure) throw this.failure;
    const finished = once(this.out, 'finish');
    this.out.end();
    await finished;
  }
}
