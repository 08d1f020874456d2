import { SluiceError } from '../errors';
import type { AnalyticsEventV2 } from '../../streams/event-counts/event';
import { SeededRandom } from './random';

/**
 * The reference workload: a deterministic stream of Kafka records (same seed
 * and options -> same keys and bytes) mixing valid events, duplicates, late
 * events and poison records in known proportions, with every choice recorded
 * so the expected results can be computed from the log alone.
 */

export type RecordKind = 'valid' | 'duplicate' | 'late' | 'poison';
export const RECORD_KINDS: readonly RecordKind[] = ['valid', 'duplicate', 'late', 'poison'];

/** Poison that the stream cannot decode (Confluent framing or Avro body broken). */
export const UNDECODABLE_REASONS = ['random-bytes', 'wrong-magic-byte', 'truncated-avro', 'unknown-schema-id'] as const;
/** Poison that decodes but breaks a rule of `validateAnalyticsEvent` (streams/event-counts). */
export const INVALID_REASONS = [
  'empty-event-type',
  'event-id-not-uuid',
  'negative-event-time',
  'absurd-event-time',
  'nan-amount',
] as const;
export type PoisonReason = (typeof UNDECODABLE_REASONS)[number] | (typeof INVALID_REASONS)[number];
const POISON_REASONS: readonly PoisonReason[] = [...UNDECODABLE_REASONS, ...INVALID_REASONS];

/**
 * A schema id no registry hands out in practice (registries count up from 1);
 * `unknown-schema-id` poison carries it so the lookup fails with "not found".
 */
export const UNKNOWN_SCHEMA_ID = 2_147_000_000;

export interface EventTypeSpec {
  name: string;
  /** Relative frequency. */
  weight: number;
  /** Whether events of this type carry an amount (purchases do). */
  hasAmount: boolean;
}

export const DEFAULT_EVENT_TYPES: readonly EventTypeSpec[] = [
  { name: 'view', weight: 55, hasAmount: false },
  { name: 'click', weight: 25, hasAmount: false },
  { name: 'add_to_cart', weight: 10, hasAmount: false },
  { name: 'purchase', weight: 5, hasAmount: true },
  { name: 'signup', weight: 5, hasAmount: false },
];

/** A fixed default start so that a seed alone pins the bytes; pass `startTime` for "now". */
export const DEFAULT_START_TIME = Date.UTC(2026, 0, 1);

export interface WorkloadOptions {
  /** Total records, of every kind. */
  count: number;
  seed: number;
  /** Events per second of event time: the generator's head advances 1000/rate ms per record. */
  ratePerSecond?: number;
  /** Epoch ms; no valid event is earlier (late events are, by 1-2 hours). */
  startTime?: number;
  users?: number;
  campaigns?: number;
  /** Share of events with no campaign (and so no ad). */
  noCampaignShare?: number;
  adsPerCampaign?: number;
  eventTypes?: readonly EventTypeSpec[];
  /** Share of records that re-send an earlier valid event (same id, same bytes). */
  duplicateRatio?: number;
  /** Valid events trail the generator's head by uniform(0, spread) ms. */
  outOfOrderMs?: number;
  /** Share of records that are late beyond any window's lateness. */
  lateRatio?: number;
  /** Share of records that are undecodable or invalid. */
  poisonRatio?: number;
}

export type ResolvedWorkloadOptions = Required<WorkloadOptions>;

/** One record to send, with what the generator knows about it. */
export interface WorkloadRecord {
  /** 0-based position in the workload (and in the production order). */
  seq: number;
  kind: RecordKind;
  /** Kafka key: the event id, except for poison (random or null). */
  key: string | null;
  /** Kafka value: Confluent-framed Avro, or the poison bytes. */
  value: Buffer;
  /** The event's id when the record carries a decodable event. */
  eventId?: string;
  /** The event, when decodable (valid, duplicate, late, and invalid poison). */
  event?: AnalyticsEventV2;
  poisonReason?: PoisonReason;
  /** For duplicates: the seq of the record whose event it re-sends. */
  duplicateOf?: number;
}

/**
 * Encodes an event as a Kafka value in Confluent wire format (0x00, int32 BE
 * schema id, Avro body), with `avro/analytics_event.v2.avsc` or a schema that
 * has its fields: `createEventEncoder` is the one the generator is given.
 */
export type EncodeEvent = (event: AnalyticsEventV2) => Buffer;

/** Options a user got wrong; one line that says which and what is allowed. */
export class WorkloadOptionsError extends SluiceError {
  constructor(message: string) {
    super('WORKLOAD_OPTIONS_INVALID', message);
    this.name = 'WorkloadOptionsError';
  }
}

/**
 * Late events are emitted only after this share of the records. By then every
 * partition has received valid events (keys are uniform uuids), whose event
 * times are all after the run's start, so each partition's watermark is past
 * every late event's window.
 */
export const LATE_AFTER_FRACTION = 0.2;
/** Late event times lie in (start - 2 h, start - 1 h]. */
const HOUR_MS = 3_600_000;
/** Duplicates re-send one of this many most recent valid events. */
export const DUPLICATE_LOOKBACK = 1000;

export function resolveWorkloadOptions(options: WorkloadOptions): ResolvedWorkloadOptions {
  const resolved: ResolvedWorkloadOptions = {
    ratePerSecond: 100,
    startTime: DEFAULT_START_TIME,
    users: 10_000,
    campaigns: 20,
    noCampaignShare: 0.2,
    adsPerCampaign: 5,
    eventTypes: DEFAULT_EVENT_TYPES,
    duplicateRatio: 0.02,
    outOfOrderMs: 30_000,
    lateRatio: 0.005,
    poisonRatio: 0.001,
    ...stripUndefined(options),
  };
  const fail = (message: string): never => {
    throw new WorkloadOptionsError(message);
  };
  const { count, seed } = resolved;
  if (!Number.isSafeInteger(count) || count < 1) fail(`count must be a positive integer, got ${count}`);
  if (!Number.isSafeInteger(seed)) fail(`seed must be an integer, got ${seed}`);
  if (!(resolved.ratePerSecond > 0 && resolved.ratePerSecond <= 1_000_000)) {
    fail(`rate must be > 0 and <= 1000000 events per second, got ${resolved.ratePerSecond}`);
  }
  if (!Number.isSafeInteger(resolved.startTime) || resolved.startTime < Date.UTC(2000, 0, 1) + 2 * HOUR_MS) {
    fail('start time must be an integer epoch ms after 2000-01-01T02:00:00Z (late events lie 1-2 h before it)');
  }
  for (const name of ['users', 'campaigns', 'adsPerCampaign'] as const) {
    if (!Number.isSafeInteger(resolved[name]) || resolved[name] < 1)
      fail(`${name} must be a positive integer, got ${resolved[name]}`);
  }
  if (!Number.isSafeInteger(resolved.outOfOrderMs) || resolved.outOfOrderMs < 0) {
    fail(`out-of-order spread must be a non-negative integer of ms, got ${resolved.outOfOrderMs}`);
  }
  for (const name of ['noCampaignShare', 'duplicateRatio', 'lateRatio', 'poisonRatio'] as const) {
    if (!(resolved[name] >= 0 && resolved[name] <= 1)) fail(`${name} must be between 0 and 1, got ${resolved[name]}`);
  }
  if (resolved.duplicateRatio + resolved.lateRatio + resolved.poisonRatio > 0.5) {
    fail('duplicate, late and poison ratios together must leave at least half the records valid');
  }
  if (
    resolved.eventTypes.length === 0 ||
    resolved.eventTypes.some((t) => !(t.weight > 0) || !/^[a-z][a-z0-9_]{0,63}$/.test(t.name))
  ) {
    fail('event types need names of [a-z0-9_] starting with a letter and positive weights');
  }
  return resolved;
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** Exact numbers of each kind for `count` records (rounded ratios), as the generator will emit them. */
export function plannedKindCounts(options: ResolvedWorkloadOptions): Record<RecordKind, number> {
  const { count } = options;
  const lateSlots = count - Math.ceil(count * LATE_AFTER_FRACTION);
  const late = Math.min(Math.round(count * options.lateRatio), lateSlots);
  const poison = Math.round(count * options.poisonRatio);
  // Record 0 is always valid: duplicates need something before them.
  const duplicate = Math.min(Math.round(count * options.duplicateRatio), Math.max(0, count - 1 - late - poison));
  return { valid: count - late - poison - duplicate, duplicate, late, poison };
}

const KIND_CODE: Record<RecordKind, number> = { valid: 0, duplicate: 1, late: 2, poison: 3 };
const KIND_OF_CODE: readonly RecordKind[] = ['valid', 'duplicate', 'late', 'poison'];

/**
 * Decides which seq gets which kind: exact counts at uniformly random
 * positions. Late records only in the last (1 - LATE_AFTER_FRACTION) of the
 * run; record 0 is valid.
 */
function planKinds(options: ResolvedWorkloadOptions, rng: SeededRandom): Uint8Array {
  const { count } = options;
  const kinds = new Uint8Array(count); // all valid
  const counts = plannedKindCounts(options);
  const place = (kind: RecordKind, n: number, from: number) => {
    // Rejection sampling: at most half the slots are taken (options check), so this ends quickly.
    for (let placed = 0; placed < n;) {
      const seq = from + rng.int(count - from);
      if (seq === 0 || kinds[seq] !== KIND_CODE.valid) continue;
      kinds[seq] = KIND_CODE[kind];
      placed += 1;
    }
  };
  place('late', counts.late, Math.ceil(count * LATE_AFTER_FRACTION));
  place('poison', counts.poison, 1);
  place('duplicate', counts.duplicate, 1);
  return kinds;
}

/** Cumulative weights, for picking an event type in proportion to its weight. */
function weightedPicker(types: readonly EventTypeSpec[]): (rng: SeededRandom) => EventTypeSpec {
  const total = types.reduce((s, t) => s + t.weight, 0);
  let sum = 0;
  const cumulative = types.map((t) => (sum += t.weight / total));
  return (rng) => {
    const u = rng.next();
    const i = cumulative.findIndex((c) => u < c);
    return types[i === -1 ? types.length - 1 : i]!;
  };
}

/** The channels of v2's `channel` field (its doc in avro/analytics_event.v2.avsc names these four). */
export const CHANNELS = ['web', 'ios', 'android', 'server'] as const;

/**
 * Generates the workload lazily, one record at a time, so that millions of
 * records never sit in memory at once.
 *
 * Event time: the generator's head is `start + spread + seq * 1000 / rate`;
 * a valid event's time is `head - uniform(0, spread)`, so it is never more
 * than the spread behind the head and never before `start`. A duplicate
 * re-sends (same key, same bytes) one of the last DUPLICATE_LOOKBACK valid
 * events.
 *
 * Late events must be late under ANY interleaving of partitions by the
 * consumer: the stream watermark is the minimum over partitions, so an event
 * merely 30 s behind the head could still be on time for a consumer that
 * reads its partition ahead of the others. So a late event's time lies 1-2
 * hours before the run's start (before every valid event of every
 * partition), and late events come only after the first LATE_AFTER_FRACTION
 * of the records, by which time every partition has seen valid events and
 * moved its watermark past them. (A partition the consumer has not read at
 * all yet cannot have a watermark; that is the stream's business.)
 */
export function* generateWorkload(
  options: WorkloadOptions,
  encode: EncodeEvent,
): Generator<WorkloadRecord, void, undefined> {
  const o = resolveWorkloadOptions(options);
  const rng = new SeededRandom(o.seed);
  const kinds = planKinds(o, rng);
  const pickType = weightedPicker(o.eventTypes);
  const amountType = o.eventTypes.find((t) => t.hasAmount) ?? o.eventTypes[0]!;
  const msPerRecord = 1000 / o.ratePerSecond;

  const makeEvent = (eventTime: number, type: EventTypeSpec = pickType(rng)): AnalyticsEventV2 => {
    const campaign = rng.chance(o.noCampaignShare) ? null : `campaign-${rng.int(o.campaigns)}`;
    // The channel is drawn where v1 events drew it into their properties, so a seed still pins the same ids and kinds.
    const channel = rng.pick(CHANNELS);
    const properties: Record<string, string> = {};
    if (type.name === 'view') properties.page = `/product/${rng.int(500)}`;
    return {
      event_id: rng.uuid(),
      event_type: type.name,
      user_id: `user-${rng.int(o.users)}`,
      campaign_id: campaign,
      ad_id: campaign === null ? null : `${campaign}-ad-${rng.int(o.adsPerCampaign)}`,
      event_time: eventTime,
      // Whole cents from 1.00 to 500.00, so expected sums are exact in cents.
      amount: type.hasAmount ? (100 + rng.int(49_901)) / 100 : null,
      properties,
      channel,
    };
  };

  const encodeFramed = (event: AnalyticsEventV2): Buffer => {
    const value = encode(event);
    if (value.length < 6 || value[0] !== 0) {
      throw new SluiceError(
        'ENCODER_OUTPUT_INVALID',
        'the event encoder must return Confluent wire format (0x00, schema id, Avro body)',
      );
    }
    return value;
  };

  const recent: { seq: number; event: AnalyticsEventV2; value: Buffer }[] = [];
  let recentNext = 0;

  for (let seq = 0; seq < o.count; seq++) {
    const head = o.startTime + o.outOfOrderMs + Math.floor(seq * msPerRecord);
    const kind = KIND_OF_CODE[kinds[seq]!]!;

    if (kind === 'valid') {
      const event = makeEvent(head - rng.int(o.outOfOrderMs + 1));
      const value = encodeFramed(event);
      const entry = { seq, event, value };
      if (recent.length < DUPLICATE_LOOKBACK) recent.push(entry);
      else recent[recentNext] = entry;
      recentNext = (recentNext + 1) % DUPLICATE_LOOKBACK;
      yield { seq, kind, key: event.event_id, value, eventId: event.event_id, event };
    } else if (kind === 'duplicate') {
      const original = rng.pick(recent);
      const { event } = original;
      yield {
        seq,
        kind,
        key: event.event_id,
        value: original.value,
        eventId: event.event_id,
        event,
        duplicateOf: original.seq,
      };
    } else if (kind === 'late') {
      const event = makeEvent(o.startTime - HOUR_MS - rng.int(HOUR_MS));
      yield { seq, kind, key: event.event_id, value: encodeFramed(event), eventId: event.event_id, event };
    } else {
      yield { seq, kind, ...makePoison(rng.pick(POISON_REASONS), head - rng.int(o.outOfOrderMs + 1)) };
    }
  }

  function makePoison(reason: PoisonReason, eventTime: number): Omit<WorkloadRecord, 'seq' | 'kind'> {
    // Poison keys are not event ids: half random, half null (both happen in the wild).
    const key = rng.chance(0.5) ? null : rng.uuid();
    const base = makeEvent(eventTime);
    switch (reason) {
      case 'random-bytes': {
        const value = rng.bytes(1 + rng.int(64));
        value[0] = 1 + rng.int(255); // never the magic byte, so it cannot decode by chance
        return { key, value, poisonReason: reason };
      }
      case 'wrong-magic-byte': {
        const value = Buffer.from(encodeFramed(base));
        value[0] = 1 + rng.int(255);
        return { key, value, poisonReason: reason };
      }
      case 'truncated-avro': {
        // Avro bodies are minimal: dropping any tail byte leaves a record that cannot be read in full.
        const framed = encodeFramed(base);
        return { key, value: Buffer.from(framed.subarray(0, 5 + rng.int(framed.length - 5))), poisonReason: reason };
      }
      case 'unknown-schema-id': {
        const value = Buffer.from(encodeFramed(base));
        value.writeInt32BE(UNKNOWN_SCHEMA_ID, 1);
        return { key, value, poisonReason: reason };
      }
      default: {
        const event = breakEvent(base, reason);
        return { key, value: encodeFramed(event), eventId: event.event_id, event, poisonReason: reason };
      }
    }
  }

  /** A decodable event that breaks exactly one rule of `validateAnalyticsEvent`. */
  function breakEvent(event: AnalyticsEventV2, reason: (typeof INVALID_REASONS)[number]): AnalyticsEventV2 {
    switch (reason) {
      case 'empty-event-type':
        return { ...event, event_type: '' };
      case 'event-id-not-uuid':
        return { ...event, event_id: `not-a-uuid-${rng.int(1_000_000_000)}` };
      case 'negative-event-time':
        return { ...event, event_time: -1 - rng.int(1_000_000_000_000) };
      case 'absurd-event-time':
        // Somewhere in the year 9999: a valid Avro long, nonsense as an event time.
        return { ...event, event_time: Date.UTC(9999, 0, 1) + rng.int(1_000_000_000) };
      case 'nan-amount':
        return { ...event, event_type: amountType.name, amount: Number.NaN };
    }
  }
}
