import type { Type } from 'avsc';
import { SluiceError } from '../errors';

/** One field of an event that does not fit the schema. */
export interface FieldIssue {
  /** Dotted path from the event root, e.g. `event_time` or `properties.color`; indexed for batches (`[3].user_id`). */
  path: string;
  reason: string;
}

/** An event does not fit its Avro schema; nothing was sent. `issues` lists every bad field. */
export class EventValidationError extends SluiceError {
  readonly issues: FieldIssue[];
  constructor(schemaName: string, issues: FieldIssue[]) {
    const listed = issues
      .slice(0, 10)
      .map((i) => `${i.path}: ${i.reason}`)
      .join('; ');
    const more = issues.length > 10 ? ` (and ${issues.length - 10} more)` : '';
    super('EVENT_INVALID', `event does not match Avro schema ${schemaName}: ${listed}${more}`);
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

function describeValue(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  const text = JSON.stringify(value);
  const shown = text === undefined ? String(value) : text.length > 40 ? `${text.slice(0, 37)}...` : text;
  return `${Array.isArray(value) ? 'array' : typeof value} ${shown}`;
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
  if (!isPlainObject(value)) return [{ path: '(event)', reason: `expected a JSON object, got ${describeValue(value)}` }];
  const issues: FieldIssue[] = [];
  type.isValid(value, {
    errorHook(path: string[], any: unknown, t: Type) {
      const reason = any === undefined ? `required ${describeType(t)} is missing` : `expected ${describeType(t)}, got ${describeValue(any)}`;
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
  return issues;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Checks for the logical types Sluice keeps as plain values (parseAvroType
 * registers none), which avsc therefore does not check: a `uuid` string must
 * look like one. Reads the schema JSON, top-level record fields only.
 */
export function logicalTypeChecks(schemaJson: object): (value: unknown) => FieldIssue[] {
  const fields = (schemaJson as { fields?: { name: string; type: unknown }[] }).fields ?? [];
  const isUuid = (t: unknown): boolean =>
    (typeof t === 'object' && t !== null && !Array.isArray(t) && (t as { logicalType?: string }).logicalType === 'uuid') ||
    (Array.isArray(t) && t.some(isUuid));
  const uuidFields = fields.filter((f) => isUuid(f.type)).map((f) => f.name);
  return (value) => {
    if (!isPlainObject(value)) return [];
    return uuidFields
      .filter((name) => typeof value[name] === 'string' && !UUID.test(value[name] as string))
      .map((name) => ({ path: name, reason: `expected a UUID string, got ${describeValue(value[name])}` }));
  };
}
