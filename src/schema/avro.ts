import { isUtf8 } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Type, types as avscTypes, type Schema } from 'avsc';
import { SluiceError } from '../errors';

/** The repository's Avro schemas: `avro/<name>.avsc`. */
export const AVRO_DIR = resolve(__dirname, '..', '..', 'avro');

/** A JSON Avro schema (record, enum, primitive name, ...), as read from an .avsc file. */
export type AvroSchemaJson = object | string;

/** A schema text that is not valid Avro: reported before it reaches a registry or a codec. */
export class SchemaInvalidError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('SCHEMA_INVALID', message, { cause });
    this.name = 'SchemaInvalidError';
  }
}

/**
 * Parses a schema the way every Sluice component must: logical types are not
 * registered, so timestamp-millis stays a plain number and uuid a plain
 * string; unions decode to plain values (`["null","string"]` -> null or a
 * string); records are plain objects without avsc's helper methods.
 * avsc mutates the options' type registry, so each parse gets fresh options.
 */
export function parseAvroType(schema: AvroSchemaJson): Type {
  try {
    return Type.forSchema(schema as Schema, {
      wrapUnions: false,
      omitRecordMethods: true,
      registry: {},
      typeHook: guardedReaders,
    });
  } catch (err) {
    throw new SchemaInvalidError(`invalid Avro schema: ${(err as Error).message}`, err);
  }
}

/** The parts of avsc's internal tap and type objects the readers below rely on. */
interface AvroTap {
  buf: Buffer;
  pos: number;
  readLong(): number;
  skipLong(): void;
  readString(): string | undefined;
}
interface AvroReader {
  _read(tap: AvroTap): unknown;
}
type MapTypeConstructor = new (schema: unknown, opts: unknown) => Type & { valuesType: AvroReader };
type StringTypeConstructor = new () => Type;
type ArrayTypeConstructor = new (schema: unknown, opts: unknown) => Type & { itemsType: AvroReader };
type LongTypeConstructor = new () => Type;

/**
 * Reads an Avro string and refuses bytes that are not UTF-8. Node decodes
 * them to U+FFFD without a word, so two different malformed ids would become
 * the same string and a record would be stored other than as sent. Only a
 * string that contains U+FFFD can have come from malformed bytes, so the
 * bytes are checked only then and the common case costs one scan. The error
 * is thrown inside `decode`, where the codec reports it as AVRO_INVALID.
 */
function readUtf8String(tap: AvroTap): string | undefined {
  const start = tap.pos;
  const text = tap.readString();
  if (text === undefined || !text.includes('\uFFFD')) return text;
  const end = tap.pos;
  tap.pos = start;
  const length = tap.readLong();
  const from = tap.pos;
  tap.pos = end;
  if (!isUtf8(tap.buf.subarray(from, from + length))) throw new Error('a string is not valid UTF-8');
  return text;
}

const Utf8StringType = (() => {
  const Base = (avscTypes as unknown as { StringType: StringTypeConstructor }).StringType;
  return class Utf8StringType extends Base {
    _read(tap: AvroTap): string | undefined {
      return readUtf8String(tap);
    }
  };
})();

/**
 * avsc reads a map into `{}` by assignment, so a key named `__proto__` (sent
 * by anyone who can write to the topic) sets the object's prototype and its
 * value silently disappears. This map type defines every key as an own
 * property instead: the data stays as sent, and nothing reaches a prototype.
 * Resolvers built from it reuse the same reader.
 */
const GuardedMapType = (() => {
  const Base = (avscTypes as unknown as { MapType: MapTypeConstructor }).MapType;
  return class GuardedMapType extends Base {
    _read(this: { valuesType: AvroReader }, tap: AvroTap): Record<string, unknown> {
      const values: Record<string, unknown> = {};
      for (let n = tap.readLong(); n !== 0; n = tap.readLong()) {
        if (n < 0) {
          n = -n;
          tap.skipLong(); // the block's size in bytes: not needed to read it
        }
        while (n-- > 0) {
          const key = readUtf8String(tap);
          if (key === undefined) return values; // truncated: avsc reports it as a negative offset
          Object.defineProperty(values, key, {
            value: this.valuesType._read(tap),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
      }
      return values;
    }
  };
})();

/**
 * avsc believes an array block's item count: five bytes claiming two billion
 * items make it allocate and loop until the process runs out of memory. Every
 * item takes at least one byte, so a count beyond the bytes left is refused
 * before anything is allocated (an array of `null`s, whose items take none,
 * is limited the same way).
 */
const GuardedArrayType = (() => {
  const Base = (avscTypes as unknown as { ArrayType: ArrayTypeConstructor }).ArrayType;
  return class GuardedArrayType extends Base {
    _read(this: { itemsType: AvroReader }, tap: AvroTap): unknown[] {
      const items: unknown[] = [];
      for (let n = tap.readLong(); n !== 0; n = tap.readLong()) {
        if (n < 0) {
          n = -n;
          tap.skipLong(); // the block's size in bytes: not needed to read it
        }
        const left = tap.buf.length - tap.pos;
        if (n > left) throw new Error(`an array block claims ${n} items but only ${Math.max(0, left)} byte(s) remain`);
        while (n-- > 0) items.push(this.itemsType._read(tap));
      }
      return items;
    }
  };
})();

/**
 * avsc computes a long's zigzag varint in floating point, so between 2^52 and
 * 2^53 it loses the low bit both ways: -(2^52 + 1) is written and read back
 * as +2^52, a silent change of sign. Longs are limited to |n| < 2^52
 * (timestamps up to the year 144,000): beyond, writing and validation refuse
 * the value and reading refuses the record (only such varints decode there).
 */
const LONG_EXACT_LIMIT = 2 ** 52;
const ExactLongType = (() => {
  const Base = (avscTypes as unknown as { LongType: LongTypeConstructor }).LongType;
  return class ExactLongType extends Base {
    _check(value: unknown, _flags: unknown, hook?: (value: unknown, type: Type) => void): boolean {
      const ok = typeof value === 'number' && Number.isInteger(value) && Math.abs(value) < LONG_EXACT_LIMIT;
      if (!ok && hook) hook(value, this);
      return ok;
    }
    _write(tap: AvroTap & { writeLong(n: number): void }, value: unknown): void {
      if (!this._check(value, undefined))
        throw new Error(`invalid "long": ${String(value)} (integers beyond ±2^52 cannot be written exactly)`);
      tap.writeLong(value as number);
    }
    _read(tap: AvroTap): number {
      const n = tap.readLong();
      if (!(Math.abs(n) < LONG_EXACT_LIMIT)) throw new Error('a long is beyond ±2^52, which cannot be read exactly');
      return n;
    }
  };
})();

/** Every map, array, string and long of a parsed schema is read by the guarded readers above. */
function guardedReaders(schema: unknown, opts: unknown): Type | undefined {
  const s = schema as { type?: unknown };
  if (s && typeof s === 'object' && s.type === 'map') return new GuardedMapType(schema, opts);
  if (s && typeof s === 'object' && s.type === 'array') return new GuardedArrayType(schema, opts);
  if (schema === 'string' || (s && typeof s === 'object' && s.type === 'string')) return new Utf8StringType();
  if (schema === 'long' || (s && typeof s === 'object' && s.type === 'long')) return new ExactLongType();
  return undefined;
}

/** Reads and parses `avro/<name>.avsc`; fails with the file name when missing or invalid. */
export function loadAvroSchema(name: string, dir: string = AVRO_DIR): object {
  const file = join(dir, `${name}.avsc`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SchemaInvalidError(`Avro schema ${file} cannot be read: ${(err as Error).message}`, err);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SchemaInvalidError(`Avro schema ${file} is not valid JSON: ${(err as Error).message}`, err);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new SchemaInvalidError(`Avro schema ${file} must be a JSON object (a named record)`);
  }
  try {
    parseAvroType(json);
  } catch (err) {
    throw new SchemaInvalidError(`Avro schema ${file}: ${(err as Error).message}`, err);
  }
  return json;
}

/**
 * The text a schema is stored and compared as: compact JSON in the author's
 * key order. Two submissions that differ only in whitespace get the same id,
 * which is what Confluent clients rely on when many producers register the
 * same schema.
 */
export function canonicalSchemaText(schema: AvroSchemaJson): string {
  return JSON.stringify(schema);
}
