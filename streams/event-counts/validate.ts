import type { Validation } from '../../src/process';
import type { AnalyticsEvent, AnalyticsEventV2 } from './event';

export const EVENT_TIME_MIN_MS = Date.UTC(2000, 0, 1);
export const EVENT_TIME_MAX_MS = Date.UTC(2100, 0, 1); // exclusive
export const MAX_ID_LENGTH = 256;
export const MAX_AMOUNT = 1e12;

const UUID_LOWERCASE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const EVENT_TYPE = /^[a-z][a-z0-9_]{0,63}$/;

/** Short, printable rendering of a bad value for an error message (never the whole of a huge value). */
function show(value: unknown): string {
  let text: string;
  if (typeof value === 'string') text = JSON.stringify(value);
  else if (typeof value === 'bigint') text = `${value}n`;
  else if (value instanceof Date) text = `Date(${value.getTime()})`;
  else if (typeof value === 'number') text = String(value);
  else if (value === null) text = 'null';
  else text = typeof value;
  return text.length > 48 ? `${text.slice(0, 45)}...` : text;
}

function eventTimeMillis(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (value instanceof Date) return value.getTime();
  if (
    typeof value === 'bigint' &&
    value >= BigInt(Number.MIN_SAFE_INTEGER) &&
    value <= BigInt(Number.MAX_SAFE_INTEGER)
  ) {
    return Number(value);
  }
  return undefined;
}

const isIdString = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_ID_LENGTH;

/**
 * The reference stream's validator for decoded `AnalyticsEvent` values.
 *
 * The generator's decodable-but-invalid poison records break exactly these
 * rules, and the stream (through `validateAnalyticsEventV2`) and the HTTP
 * ingest API (through the stream definition) call this same function, so
 * all three agree on what is invalid by construction.
 *
 * Rules (every broken rule is reported, not only the first):
 *  1. `event_id` is a UUID in lowercase canonical form (8-4-4-4-12 hex digits,
 *     any version). Lowercase only, because the id is the dedup key: the same
 *     UUID spelled in two cases must not count as two events.
 *  2. `event_type` is 1-64 characters of `[a-z0-9_]` starting with a letter.
 *     It is a group key of `event_counts_1m`, so an empty or free-form value
 *     would create junk groups.
 *  3. `user_id` is a non-empty string of at most 256 characters.
 *  4. `campaign_id` and `ad_id` are null or a non-empty string of at most 256
 *     characters. Empty strings are refused because ClickHouse stores "no
 *     campaign" as '' (no Nullable in ORDER BY): '' would merge with null.
 *  5. `event_time` is an integer number of epoch milliseconds in
 *     [2000-01-01T00:00:00Z, 2100-01-01T00:00:00Z). Negative or absurd times
 *     would wrap or clamp in ClickHouse `DateTime`. The bounds are fixed, not
 *     relative to the wall clock, so a replay years later validates the same
 *     way. (A `Date` or a safe `bigint` is accepted too, in case a codec maps
 *     the `timestamp-millis` logical type or longs that way.)
 *  6. `amount` is null or a finite number >= 0: NaN or infinities would poison
 *     every sum they enter, and refunds are not part of this schema. It is at
 *     most MAX_AMOUNT (1e12): two amounts near the largest double add up to
 *     Infinity, which ClickHouse refuses, while 1e12 needs more than 1e296
 *     events in one window to overflow, and still carries its cents (1e14
 *     cents is below 2^53).
 *  7. `properties` is an object whose values are all strings.
 * Absent optional fields count as their Avro defaults (null, {}).
 * Fields the rules do not name (e.g. v2's `channel`) are ignored and not
 * copied into the returned event.
 */
export function validateAnalyticsEvent(value: Record<string, unknown>): Validation<AnalyticsEvent> {
  const errors: string[] = [];
  const { event_id, event_type, user_id, event_time } = value;
  // Absent optional fields take their Avro defaults (null, {}), as a decoder would fill them in.
  const campaign_id = value.campaign_id ?? null;
  const ad_id = value.ad_id ?? null;
  const amount = value.amount ?? null;
  const properties = value.properties ?? {};

  if (typeof event_id !== 'string' || !UUID_LOWERCASE.test(event_id)) {
    errors.push(`event_id must be a lowercase canonical UUID, got ${show(event_id)}`);
  }
  if (typeof event_type !== 'string' || !EVENT_TYPE.test(event_type)) {
    errors.push(`event_type must be 1-64 of [a-z0-9_] starting with a letter, got ${show(event_type)}`);
  }
  if (!isIdString(user_id)) {
    errors.push(`user_id must be a non-empty string of at most ${MAX_ID_LENGTH} characters, got ${show(user_id)}`);
  }
  if (campaign_id !== null && !isIdString(campaign_id)) {
    errors.push(
      `campaign_id must be null or a non-empty string of at most ${MAX_ID_LENGTH} characters, got ${show(campaign_id)}`,
    );
  }
  if (ad_id !== null && !isIdString(ad_id)) {
    errors.push(`ad_id must be null or a non-empty string of at most ${MAX_ID_LENGTH} characters, got ${show(ad_id)}`);
  }
  const time = eventTimeMillis(event_time);
  if (time === undefined || !Number.isSafeInteger(time) || time < EVENT_TIME_MIN_MS || time >= EVENT_TIME_MAX_MS) {
    errors.push(`event_time must be integer epoch ms in [2000-01-01, 2100-01-01), got ${show(event_time)}`);
  }
  if (amount !== null && (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0)) {
    errors.push(`amount must be null or a finite number >= 0, got ${show(amount)}`);
  } else if (amount !== null && amount > MAX_AMOUNT) {
    errors.push(`amount must be at most ${MAX_AMOUNT}, got ${show(amount)}`);
  }
  const propertiesOk =
    typeof properties === 'object' &&
    properties !== null &&
    !Array.isArray(properties) &&
    Object.values(properties).every((v) => typeof v === 'string');
  if (!propertiesOk) errors.push('properties must be a map of strings');

  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    event: {
      event_id: event_id as string,
      event_type: event_type as string,
      user_id: user_id as string,
      campaign_id: campaign_id as string | null,
      ad_id: ad_id as string | null,
      event_time: time as number,
      amount: amount as number | null,
      properties: properties as Record<string, string>,
    },
  };
}

/**
 * The stream's validator: the rules above on a value read with the v2
 * schema, with its `channel` kept ('unknown' when the value has none).
 */
export function validateAnalyticsEventV2(value: Record<string, unknown>): Validation<AnalyticsEventV2> {
  const result = validateAnalyticsEvent(value);
  if (!result.ok) return result;
  // The validator's event is a fresh object: completing it in place saves a copy of every field per event.
  const event = result.event as AnalyticsEventV2;
  event.channel = typeof value.channel === 'string' ? value.channel : 'unknown';
  return { ok: true, event };
}
