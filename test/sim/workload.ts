import { createHash } from 'node:crypto';
import type { SeededRandom } from '../../src/generator';
import type { AnalyticsEventV2 } from '../../streams/event-counts';
import { loadAvroSchema, parseAvroType } from '../../src/schema';

/**
 * The simulation's input: records produced over simulated time, each with
 * what it is meant to be, so the expected outcome is known without running
 * any of the runtime's code.
 *
 * Kinds and what each must become:
 * - `valid`: its event counts once in events_raw and in its window;
 * - `duplicate`: a later copy of an earlier event (same key, same
 *   partition): changes nothing;
 * - `late`: its event time is ten minutes behind its partition: events_raw
 *   and `.late`, no window;
 * - `ahead`: stamped four minutes after its record was written (inside the
 *   stream's bound): counted in its own future window, and must not make
 *   any other event late;
 * - `far-ahead`: stamped an hour ahead: `.dlq` (EVENT_TIME_AHEAD);
 * - `poison`: random bytes or an invalid event: `.dlq`;
 * - `refused`: its rows are refused by ClickHouse (a value the columns
 *   cannot hold, injected by the model): its raw record and its window's
 *   partials go to `.dlq`, and nothing else stops;
 * - `late-schema`: written with a schema id the registry learns only later.
 *   Until then it is undecodable (`.dlq`); the scenario redrives such dead
 *   letters, in several copies, once the schema exists. It must end counted
 *   exactly once, in its window or (if the redrive came after the window
 *   closed) in `.late`.
 * - `straggler`: written just after its partition was quiet for longer than
 *   the idle timeout (see `quietSpell`), stamped one to two minutes back: its
 *   window may have been released at the stream watermark meanwhile, so it
 *   must end counted exactly once, in its window or in `.late`.
 *
 * Every eighth record that would be `valid` is written as a producer still on
 * v1 of the schema writes it: no channel, so the stream reads 'unknown'
 * (its event says so). The others are v2 with their channel.
 */

export type Kind =
  'valid' | 'duplicate' | 'late' | 'ahead' | 'far-ahead' | 'poison' | 'refused' | 'late-schema' | 'straggler';

/** The reference stream's event, as the workload writes it. */
export type SimEvent = AnalyticsEventV2;

export interface Produced {
  seq: number;
  kind: Kind;
  partition: number;
  /** When it is produced (simulated ms): its record timestamp. */
  at: number;
  key: Buffer | null;
  value: Buffer;
  event?: SimEvent;
  /** Set once produced. */
  offset?: number;
}

export const SCHEMA_ID = 1;
/** The same schema registered under a second id, which the registry learns late. */
export const LATE_SCHEMA_ID = 2;
/** v1 of the schema (no channel), known from the start: what producers not yet on v2 write with. */
export const V1_SCHEMA_ID = 3;
export const REFUSED_TYPE = 'refused';

const schema = loadAvroSchema('analytics_event.v2');
const type = parseAvroType(schema);
export const readerSchema = schema;
export const v1Schema = loadAvroSchema('analytics_event');
const v1Type = parseAvroType(v1Schema);

export function encode(event: SimEvent, schemaId: number): Buffer {
  const body = (schemaId === V1_SCHEMA_ID ? v1Type : type).toBuffer(event);
  const out = Buffer.alloc(5 + body.length);
  out.writeInt32BE(schemaId, 1);
  body.copy(out, 5);
  return out;
}

/** The partition a key goes to: any stable function does, the model has no partitioner of its own. */
export function partitionOf(key: string, partitions: number): number {
  return createHash('md5').update(key).digest().readUInt32BE(0) % partitions;
}

export interface WorkloadOptions {
  partitions: number;
  startMs: number;
  /** Records to produce (before duplicates are added). */
  records: number;
  /** Simulated ms over which they are produced. */
  durationMs: number;
  /** When the registry learns LATE_SCHEMA_ID. */
  lateSchemaAt: number;
  mix: Partial<Record<Kind, number>>;
}

const TYPES = ['view', 'click', 'purchase'];

function randomEvent(random: SeededRandom, at: number, eventTime: number, eventType = random.pick(TYPES)): SimEvent {
  return {
    event_id: random.uuid(),
    event_type: eventType,
    user_id: `u${random.int(40)}`,
    campaign_id: random.chance(0.3) ? null : `c${random.int(3)}`,
    ad_id: null,
    event_time: eventTime,
    amount: eventType === 'purchase' ? (1 + random.int(10_000)) / 100 : null,
    properties: { at: String(at) },
    channel: random.pick(['web', 'ios']),
  };
}

/**
 * A partition quiet from `from` to `to` (longer than the stream's idle timeout: its windows are released
 * at the other partitions' watermark), and the stragglers written to it right after.
 */
export interface QuietSpell {
  partition: number;
  from: number;
  to: number;
  stragglers: Produced[];
}

/**
 * A quiet spell of 15 s to about a minute and a half in one partition, ending up to 15 s after a minute
 * boundary M: about when the window that ended at M − 1 min is released (at the stream watermark, M − 30 s,
 * its end plus 30 s of lateness). One to three stragglers follow (`seq` from `firstSeq`), stamped in that
 * window: late if the release came before them, counted if not.
 */
export function quietSpell(
  random: SeededRandom,
  options: Pick<WorkloadOptions, 'partitions' | 'startMs' | 'durationMs'>,
  firstSeq: number,
): QuietSpell {
  const { partitions, startMs, durationMs } = options;
  const MINUTE = 60_000;
  const partition = random.int(partitions);
  const from = startMs + 30_000 + random.int(durationMs - 150_000);
  const boundary = Math.ceil((from + 15_000) / MINUTE) * MINUTE;
  const to = boundary + 500 + random.int(14_500);
  const stragglers: Produced[] = [];
  for (let n = 1 + random.int(3); n > 0; n--) {
    const at = to + random.int(3000);
    let e = randomEvent(random, at, boundary - MINUTE - 1 - random.int(MINUTE - 1));
    while (partitionOf(e.event_id, partitions) !== partition) e = { ...e, event_id: random.uuid() };
    const key = Buffer.from(e.event_id);
    stragglers.push(record(firstSeq + stragglers.length, 'straggler', partition, at, key, encode(e, SCHEMA_ID), e));
  }
  return { partition, from, to, stragglers };
}

/** Records in production order (times ascending). */
export function generate(random: SeededRandom, options: WorkloadOptions): Produced[] {
  const { partitions, startMs, records, durationMs } = options;
  const out: Produced[] = [];
  const kinds = Object.entries(options.mix) as [Kind, number][];
  const pickKind = (): Kind => {
    let r = random.next();
    for (const [k, p] of kinds) {
      if (r < p) return k;
      r -= p;
    }
    return 'valid';
  };
  const event = (at: number, eventTime: number, eventType?: string) => randomEvent(random, at, eventTime, eventType);
  for (let i = 0; i < records; i++) {
    const at = startMs + Math.floor((i / records) * durationMs);
    let kind = pickKind();
    // Late and duplicate records need history in their partition; early on they are plain events.
    if ((kind === 'late' && at - startMs < 3 * 60_000) || kind === 'duplicate')
      kind = kind === 'duplicate' ? 'duplicate' : 'valid';
    let value: Buffer;
    let key: Buffer | null;
    let partition: number;
    if (kind === 'duplicate') {
      const originals = out.filter((p) => p.event && (p.kind === 'valid' || p.kind === 'ahead') && at - p.at < 60_000);
      if (originals.length === 0) kind = 'valid';
      else {
        const original = random.pick(originals);
        out.push(record(out.length, 'duplicate', original.partition, at, original.key, original.value, original.event));
        continue;
      }
    }
    if (kind === 'poison') {
      key = random.chance(0.5) ? null : Buffer.from(random.uuid());
      partition = random.int(partitions);
      value = random.chance(0.5)
        ? random.bytes(1 + random.int(40))
        : encode({ ...event(at, at - 1000), event_id: random.uuid().toUpperCase() }, SCHEMA_ID);
      out.push(record(out.length, kind, partition, at, key, value));
      continue;
    }
    const disorder = random.int(20_000);
    const eventTime =
      kind === 'late'
        ? at - 10 * 60_000 - random.int(60_000)
        : kind === 'ahead'
          ? at + 4 * 60_000
          : kind === 'far-ahead'
            ? at + 60 * 60_000
            : at - disorder;
    const e = event(at, eventTime, kind === 'refused' ? REFUSED_TYPE : undefined);
    key = Buffer.from(e.event_id);
    partition = partitionOf(e.event_id, partitions);
    // Chosen by position, not drawn: a seed's draws, and so its run, stay what they were before v1 writers.
    const v1 = kind === 'valid' && i % 8 === 0;
    if (v1) e.channel = 'unknown';
    value = encode(e, kind === 'late-schema' ? LATE_SCHEMA_ID : v1 ? V1_SCHEMA_ID : SCHEMA_ID);
    out.push(record(out.length, kind, partition, at, key, value, e));
    if (kind === 'late-schema' && random.chance(0.5)) {
      // A copy written with the known schema a little later: whichever copy decodes first counts.
      const copy = record(out.length, 'duplicate', partition, at + 1 + random.int(3000), key, encode(e, SCHEMA_ID), e);
      out.push(copy);
    }
  }
  return out.sort((a, b) => a.at - b.at || a.seq - b.seq);
}

function record(
  seq: number,
  kind: Kind,
  partition: number,
  at: number,
  key: Buffer | null,
  value: Buffer,
  event?: SimEvent,
): Produced {
  return { seq, kind, partition, at, key, value, event };
}

/** What the outputs must hold, computed from the workload alone. */
export interface Expected {
  /** Event ids in events_raw. */
  raw: Set<string>;
  /** Window key -> { events, users, cents } over the events counted in windows. */
  windows: Map<string, { events: number; users: Set<string>; cents: number }>;
  /** Event ids in `.late`. */
  late: Set<string>;
  /** `partition/offset` of every record that must be in `.dlq`, with its error class. */
  deadLetters: Map<string, string>;
  /** Late-schema events and stragglers: counted once, in their window or in `.late`, decided by timing. */
  flexible: Map<string, SimEvent>;
  /** Refused events: their raw record is dead-lettered; their windows are partials in `.dlq`. */
  refused: Set<string>;
}

export const windowKey = (windowStartMs: number, eventType: string, campaign: string) =>
  `${windowStartMs}|${eventType}|${campaign}`;

export function addToWindow(windows: Expected['windows'], e: SimEvent): void {
  const start = Math.floor(e.event_time / 60_000) * 60_000;
  const key = windowKey(start, e.event_type, e.campaign_id ?? '');
  const w = windows.get(key) ?? { events: 0, users: new Set<string>(), cents: 0 };
  w.events += 1;
  w.users.add(e.user_id);
  w.cents += Math.round((e.amount ?? 0) * 100);
  windows.set(key, w);
}

/**
 * The oracle. Independent of the runtime: it knows the stream's rules (dedup
 * by event id, first record in its partition wins; one-minute windows by
 * event type and campaign) and trusts the kinds the workload chose.
 */
export function expectedOf(produced: Produced[]): Expected {
  const exp: Expected = {
    raw: new Set(),
    windows: new Map(),
    late: new Set(),
    deadLetters: new Map(),
    flexible: new Map(),
    refused: new Set(),
  };
  const seen = new Set<string>();
  for (const p of [...produced].sort((a, b) => a.partition - b.partition || a.offset! - b.offset!)) {
    const where = `${p.partition}/${p.offset}`;
    if (p.kind === 'poison') {
      exp.deadLetters.set(where, 'poison');
      continue;
    }
    if (p.kind === 'far-ahead') {
      exp.deadLetters.set(where, 'EVENT_TIME_AHEAD');
      continue;
    }
    const e = p.event!;
    if (p.kind === 'late-schema') {
      exp.flexible.set(e.event_id, e);
      seen.add(e.event_id);
      continue;
    }
    if (seen.has(e.event_id)) continue;
    seen.add(e.event_id);
    // The first record of its event (a later copy is a duplicate): counted once, in its window or in `.late`.
    if (p.kind === 'straggler') {
      exp.flexible.set(e.event_id, e);
      continue;
    }
    if (p.kind === 'refused') {
      exp.refused.add(e.event_id);
      exp.deadLetters.set(where, 'SINK_ROW_REFUSED');
      continue;
    }
    exp.raw.add(e.event_id);
    if (p.kind === 'late') exp.late.add(e.event_id);
    else addToWindow(exp.windows, e);
  }
  return exp;
}
