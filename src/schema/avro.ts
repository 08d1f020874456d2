import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Type, type Schema } from 'avsc';
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
    return Type.forSchema(schema as Schema, { wrapUnions: false, omitRecordMethods: true, registry: {} });
  } catch (err) {
    throw new SchemaInvalidError(`invalid Avro schema: ${(err as Error).message}`, err);
  }
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
