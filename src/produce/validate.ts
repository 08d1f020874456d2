import type { Type } from 'avsc';
import { SluiceError } from '../errors';

/** One field of an event that does not fit the schema. */
export interface FieldIssue {
  /** Dotted path from the event root, e.g. `event_time` or `properties.color`; indexed for batches (`[3].user_id`). */
  path: string;
  reason: string;
}

/**
 * An event does not fit its Avro schema, or breaks the rules of a stream that
 * reads the topic (the producer's `streams`); nothing was sent. `issues` lists
 * every bad field, and every rule broken (path `(event)`, or the event's index).
 */
export class EventValidationError extends SluiceError {
  readonly issues: FieldIssue[];
  constructor(schemaName: string, issues: FieldIssue[], against = `Avro schema ${schemaName}`) {
    const listed = issues
      .slice(0, 10)
      .map((i) => `${i.path}: ${i.reason}`)
      .join('; ');
    const more = issues.length > 10 ? ` (and ${issues.length - 10} more)` : '';
    super('EVENT_INVALID', `event does not match ${against}: ${listed}${more}`);
    this.name = 'EventValidationError';
    this.issues = issues;
  }
}

function describeType(type: Type): string {
  const logical = (type as Type & { logicalTypeName?: string }).logicalTypeName;
  // Unions of null and one type read as "optional X".
  if (type.typeName.startsWith('union')) {
    const branches = (type as Type & { types: Type[] }).types;
    const nonNull = branches.filter((t) => t.typeName !== 'null');
    if (nonNull.length === 1 && branches.length === 2) return `null or ${describeType(nonNull[0]!)}`;
    return branches.map(describeType).join(' or ');
  }
  const base = type.typeName;
  const schema = type.schema() as { logicalType?: string } | string;
  const logicalName = logical ?? (typeof schema === 'object' ? schema.logicalType : undefined);
  return logicalName ? `${base} (${logicalName})` : base;
}

/**
 * A short rendering of a bad value. Objects and arrays are named, not
 * serialised: JSON.stringify recurses, so a deeply nested value (which
 * JSON.parse accepts) would overflow the stack and turn a 400 into a 500.
 */
function describeValue(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return `array of ${value.length}`;
  if (typeof value === 'object') return Buffer.isBuffer(value) ? `bytes (${value.length})` : 'object';
  const text =
    typeof value === 'string' ? JSON.stringify(value.length > 40 ? value.slice(0, 40) : value) : String(value);
  const shown = text.length > 40 ? `${text.slice(0, 37)}...` : text;
  return `${typeof value} ${shown}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

/**
 * Every field of `value` that does not fit the record `type`, with a reason.
 * avsc's errorHook reports each offending leaf; fields the schema does not
 * know are reported too, because avsc would silently drop them on encode.
 */
export function validateEvent(type: Type, value: unknown): FieldIssue[] {
  if (!isPlainObject(value))
    return [{ path: '(event)', reason: `expected a JSON object, got ${describeValue(value)}` }];
  const issues: FieldIssue[] = [];
  type.isValid(value, {
    errorHook(path: string[], any: unknown, t: Type) {
      const reason =
        any === undefined
          ? `required ${describeType(t)} is missing`
          : `expected ${describeType(t)}, got ${describeValue(any)}`;
      issues.push({ path: path.join('.') || '(event)', reason });
    },
  });
  const fields = (type as Type & { fields?: { name: string }[] }).fields;
  if (fields) {
    const known = new Set(fields.map((f) => f.name));
    for (const key of Object.keys(value)) {
      if (!known.has(key)) issues.push({ path: key, reason: 'unknown field (not in the schema)' });
    }
  }
  if (issues.length === 0) issues.push(...malformedStrings(value));
  return issues;
}

/** Deeper than any event a schema here describes; a value nested further already failed the schema check. */
const MAX_STRING_SCAN_DEPTH = 64;

/** In Unicode mode a surrogate pair is one code point, so only a lone surrogate is in category Cs. */
const LONE_SURROGATE = /\p{Cs}/u;
const wellFormed = (text: string) => !LONE_SURROGATE.test(text);

/**
 * Strings (and map keys) holding a lone UTF-16 surrogate, which JSON can
 * carry (`"\ud800"`) but UTF-8 cannot: Avro would write bytes no reader
 * accepts, or replacement characters, so the event would not be stored as
 * sent. Runs on values that already fit the schema, so the walk is bounded
 * by the schema's own depth.
 */
function malformedStrings(value: unknown, path: string[] = [], depth = 0): FieldIssue[] {
  const at = (key?: string) => [...path, ...(key === undefined ? [] : [key])].join('.') || '(event)';
  if (typeof value === 'string')
    return wellFormed(value)
      ? []
      : [{ path: at(), reason: 'string holds a lone UTF-16 surrogate (not valid Unicode)' }];
  if (typeof value !== 'object' || value === null || Buffer.isBuffer(value) || depth > MAX_STRING_SCAN_DEPTH) return [];
  const issues: FieldIssue[] = [];
  for (const [key, inner] of Object.entries(value)) {
    if (!wellFormed(key))
      issues.push({ path: at(key), reason: 'key holds a lone UTF-16 surrogate (not valid Unicode)' });
    issues.push(...malformedStrings(inner, [...path, key], depth + 1));
  }
  return issues;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The instants a `timestamp-millis` may hold: what a ClickHouse `DateTime`
 * (seconds, unsigned 32-bit) can store, 1970-01-01 to 2106-02-07. Avro
 * would encode any long, but a negative or far-future time can only wrap or
 * clamp in the sink, so it is refused where it is sent, with its field named.
 */
export const TIMESTAMP_MILLIS_MIN = 0;
export const TIMESTAMP_MILLIS_MAX = 4_294_967_295_999;

/**
 * Checks for the logical types Sluice keeps as plain values (parseAvroType
 * registers none), which avsc therefore does not check: a `uuid` string must
 * look like one, and a `timestamp-millis` must be an instant the sink can
 * store. Reads the schema JSON, top-level record fields only.
 */
export function logicalTypeChecks(schemaJson: object): (value: unknown) => FieldIssue[] {
  const fields = (schemaJson as { fields?: { name: string; type: unknown }[] }).fields ?? [];
  const hasLogicalType =
    (logical: string) =>
    (t: unknown): boolean =>
      (typeof t === 'object' &&
        t !== null &&
        !Array.isArray(t) &&
        (t as { logicalType?: string }).logicalType === logical) ||
      (Array.isArray(t) && t.some(hasLogicalType(logical)));
  const uuidFields = fields.filter((f) => hasLogicalType('uuid')(f.type)).map((f) => f.name);
  const timeFields = fields.filter((f) => hasLogicalType('timestamp-millis')(f.type)).map((f) => f.name);
  return (value) => {
    if (!isPlainObject(value)) return [];
    const uuids = uuidFields
      .filter((name) => typeof value[name] === 'string' && !UUID.test(value[name] as string))
      .map((name) => ({ path: name, reason: `expected a UUID string, got ${describeValue(value[name])}` }));
    const times = timeFields
      .filter((name) => {
        const t = value[name];
        return (
          typeof t === 'number' && Number.isSafeInteger(t) && (t < TIMESTAMP_MILLIS_MIN || t > TIMESTAMP_MILLIS_MAX)
        );
      })
      .map((name) => ({
        path: name,
        reason: `expected epoch milliseconds between 1970-01-01 and 2106-02-07, got ${describeValue(value[name])}`,
      }));
    return [...uuids, ...times];
  };
}
