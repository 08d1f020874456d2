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
    return Type.forSchema(schema as Schema, { wrapUnions: false, omitRecordMethods: true, registry: {}, typeHook: guardedMaps });
  } catch (err) {
    throw new SchemaInvalidError(`invalid Avro schema: ${(err as Error).message}`, err);
  }
}

/** The parts of avsc's internal tap and type objects the map reader below relies on. */
interface AvroTap {
  readLong(): number;
  skipLong(): void;
  readString(): string;
}
interface AvroReader {
  _read(tap: AvroTap): unknown;
}
type MapTypeConstructor = new (schema: unknown, opts: unknown) => Type & { valuesType: AvroReader };

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
          const key = tap.readString();
          Object.defineProperty(values, key, { value: this.valuesType._read(tap), enumerable: true, writable: true, configurable: true });
        }
      }
      return values;
    }
  };
})();

function guardedMaps(schema: unknown, opts: unknown): Type | undefined {
  const s = schema as { type?: unknown };
  if (s && typeof s === 'object' && s.type === 'map') return new GuardedMapType(schema, opts);
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
