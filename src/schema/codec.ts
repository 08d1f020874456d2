import type { Type } from 'avsc';
import type { SluiceConfig } from '../config';
import { SluiceError } from '../errors';
import { canonicalSchemaText, parseAvroType, type AvroSchemaJson } from './avro';
import { RegistryClient, RegistryError } from './client';
import { readIncompatibility } from './compatibility';

/** Confluent wire format: magic byte 0, the schema id as a big-endian int32, then the Avro body. */
export const MAGIC_BYTE = 0;
export const WIRE_HEADER_BYTES = 5;

export type DecodeErrorCode = 'WIRE_FORMAT_INVALID' | 'SCHEMA_UNKNOWN' | 'AVRO_INVALID' | 'SCHEMA_INCOMPATIBLE';

/**
 * A record value that can never decode, however often it is retried: not in
 * wire format, written with a schema id the registry does not know, an Avro
 * body that is truncated or has bytes left over, or a writer schema the
 * reader cannot resolve. Such records belong in the dead-letter topic.
 */
export class DecodeError extends SluiceError {
  declare readonly code: DecodeErrorCode;
  /** The schema id from the header, when the header was readable. */
  readonly schemaId?: number;
  /**
   * SCHEMA_UNKNOWN: when the registry was asked, on the codec's clock (the process's monotonic clock by
   * default). The answer may be remembered or shared with other records: a caller that must know what
   * the registry says now compares this time.
   */
  readonly askedAt?: number;
  constructor(
    code: DecodeErrorCode,
    message: string,
    options: { schemaId?: number; askedAt?: number; cause?: unknown } = {},
  ) {
    super(code, message, { retriable: false, cause: options.cause });
    this.name = 'DecodeError';
    this.schemaId = options.schemaId;
    this.askedAt = options.askedAt;
  }
}

/** A value does not match the schema it is being encoded with; names the offending field paths. */
export class EncodeError extends SluiceError {
  readonly paths: string[];
  constructor(schemaId: number, paths: string[], cause?: unknown) {
    const where = paths.length > 0 ? `field(s) ${paths.join(', ')}` : 'the value';
    super('VALUE_INVALID', `cannot encode with schema id ${schemaId}: ${where} do not match the schema`, { cause });
    this.name = 'EncodeError';
    this.paths = paths;
  }
}

export interface DecodeOptions {
  /**
   * Ask the registry now about an id it did not know a moment ago: ids it answered 404 for are taken as
   * unknown for a few seconds (so that a burst of poison records makes one request), and a request
   * already in flight may have been sent before the id was registered.
   */
  recheckUnknown?: boolean;
}

export interface Decoded {
  schemaId: number;
  value: Record<string, unknown>;
}

/** Marks a writer schema identical to the reader's: decode with the reader directly. */
const SAME_SCHEMA = Symbol('same-schema');
type Resolution = ReturnType<Type['createResolver']> | typeof SAME_SCHEMA | { incompatible: string };

interface ReaderEntry {
  type: Type;
  text: string;
  /** Writer schema id -> how to read it; built once per (reader, writer) pair. */
  resolutions: Map<number, Resolution>;
}

interface WriterEntry {
  type: Type;
  text: string;
}

/** How long an id the registry did not know stays known-unknown, so a burst of poison records makes one request. */
const UNKNOWN_ID_TTL_MS = 5_000;

/**
 * Encodes and decodes Confluent wire-format Avro through a schema registry.
 *
 * Built directly on avsc and fetch rather than on
 * @kafkajs/confluent-schema-registry: that client builds a new reader Type
 * and resolver on every decode that passes a reader schema (the hot path of
 * every processor), and reports wire-format and body errors as generic
 * argument errors that cannot be told apart from a registry outage. Here the
 * writer Types are cached by id, resolvers by (reader schema, writer id),
 * and every failure is either a DecodeError (never retriable) or a
 * retriable ServiceError (registry unreachable).
 */
export class SchemaCodec {
  private readonly client: RegistryClient;
  private readonly writers = new Map<number, WriterEntry>();
  private readonly pendingWriters = new Map<number, Promise<WriterEntry>>();
  /** Ids the registry answered 404 for: until when that answer stands, and when it was asked. */
  private readonly unknownIds = new Map<number, { until: number; askedAt: number }>();
  private readonly readersByObject = new WeakMap<object, ReaderEntry>();
  private readonly readersByText = new Map<string, ReaderEntry>();

  constructor(
    client: RegistryClient,
    /**
     * The clock that ages known-unknown ids and stamps when the registry was asked (DecodeError.askedAt):
     * one that only moves forward, as a processor compares it with when it took a partition over.
     */
    private readonly now: () => number = () => performance.now(),
  ) {
    this.client = client;
  }

  static fromConfig(config: Pick<SluiceConfig, 'registry'>): SchemaCodec {
    return new SchemaCodec(new RegistryClient(config.registry.url));
  }

  get registryUrl(): string {
    return this.client.url;
  }

  /** Registers a schema under a subject (idempotent: the same schema returns the same id). */
  async register(subject: string, schema: AvroSchemaJson): Promise<number> {
    const text = canonicalSchemaText(schema);
    const type = parseAvroType(schema);
    const id = await this.client.register(subject, text);
    if (!this.writers.has(id)) this.writers.set(id, { type, text });
    return id;
  }

  /** The id of the subject's latest version: what a producer writes with. */
  async latestId(subject: string): Promise<number> {
    return (await this.client.version(subject, 'latest')).id;
  }

  async encode(schemaId: number, value: unknown): Promise<Buffer> {
    const { type } = this.writers.get(schemaId) ?? (await this.writer(schemaId));
    let body: Buffer;
    try {
      body = type.toBuffer(value);
    } catch (err) {
      const paths: string[] = [];
      type.isValid(value, { errorHook: (path) => paths.push(path.join('.') || '(root)') });
      throw new EncodeError(schemaId, paths, err);
    }
    const out = Buffer.allocUnsafe(WIRE_HEADER_BYTES + body.length);
    out[0] = MAGIC_BYTE;
    out.writeInt32BE(schemaId, 1);
    body.copy(out, WIRE_HEADER_BYTES);
    return out;
  }

  /**
   * Decodes one record value. With a reader schema, the writer's data is
   * resolved into the reader's shape (fields added with defaults, removed
   * fields dropped), so old and new producers coexist.
   */
  async decode(buf: Buffer, readerSchema?: object, options: DecodeOptions = {}): Promise<Decoded> {
    const known = this.decodeKnown(buf, readerSchema);
    if (known !== undefined) return known;
    return this.decodeWith(await this.writer(buf.readInt32BE(1), options.recheckUnknown), buf, readerSchema);
  }

  /**
   * A processor's decoder: values read into `readerSchema`'s shape, without an await when the writer
   * schema was seen before; `schemaOf` names the writer schema id of a value (see UnknownSchema).
   */
  reading(readerSchema: object): {
    decode(value: Buffer, options?: DecodeOptions): Record<string, unknown> | Promise<Record<string, unknown>>;
    schemaOf(value: Buffer): number | undefined;
  } {
    return {
      decode: (value, options) =>
        this.decodeKnown(value, readerSchema)?.value ?? this.decode(value, readerSchema, options).then((d) => d.value),
      schemaOf: writerSchemaId,
    };
  }

  /**
   * `decode` without waiting, for the usual case of a writer schema seen
   * before: undefined when it must be fetched from the registry first. A
   * stream decodes every record, and an await per record is a measurable
   * share of its time.
   */
  decodeKnown(buf: Buffer, readerSchema?: object): Decoded | undefined {
    checkWireHeader(buf);
    const writer = this.writers.get(buf.readInt32BE(1));
    return writer === undefined ? undefined : this.decodeWith(writer, buf, readerSchema);
  }

  private decodeWith(writer: WriterEntry, buf: Buffer, readerSchema: object | undefined): Decoded {
    const schemaId = buf.readInt32BE(1);
    if (readerSchema === undefined) return { schemaId, value: readBody(writer.type, undefined, buf, schemaId) };

    const reader = this.reader(readerSchema);
    let resolution = reader.resolutions.get(schemaId);
    if (resolution === undefined) {
      resolution = resolve(reader, writer);
      reader.resolutions.set(schemaId, resolution);
    }
    if (resolution === SAME_SCHEMA) return { schemaId, value: readBody(reader.type, undefined, buf, schemaId) };
    if ('incompatible' in resolution) {
      throw new DecodeError(
        'SCHEMA_INCOMPATIBLE',
        `record written with schema id ${schemaId} cannot be read with the reader schema: ${resolution.incompatible}`,
        { schemaId },
      );
    }
    return { schemaId, value: readBody(reader.type, resolution, buf, schemaId) };
  }

  private writer(schemaId: number, recheckUnknown = false): Promise<WriterEntry> {
    if (recheckUnknown) return this.fetchWriter(schemaId);
    const unknown = this.unknownIds.get(schemaId);
    if (unknown !== undefined && unknown.until > this.now())
      return Promise.reject(unknownSchema(schemaId, unknown.askedAt));
    let pending = this.pendingWriters.get(schemaId);
    if (pending === undefined) {
      pending = this.fetchWriter(schemaId).finally(() => this.pendingWriters.delete(schemaId));
      this.pendingWriters.set(schemaId, pending);
    }
    return pending;
  }

  private async fetchWriter(schemaId: number): Promise<WriterEntry> {
    const askedAt = this.now();
    let text: string;
    try {
      text = await this.client.schemaById(schemaId);
    } catch (err) {
      if (err instanceof RegistryError && err.status === 404) {
        this.unknownIds.set(schemaId, { until: this.now() + UNKNOWN_ID_TTL_MS, askedAt });
        throw unknownSchema(schemaId, askedAt, err);
      }
      throw err;
    }
    const json: unknown = JSON.parse(text);
    const entry = { type: parseAvroType(json as AvroSchemaJson), text: canonicalSchemaText(json as AvroSchemaJson) };
    this.writers.set(schemaId, entry);
    this.unknownIds.delete(schemaId);
    return entry;
  }

  private reader(schema: object): ReaderEntry {
    let entry = this.readersByObject.get(schema);
    if (entry === undefined) {
      const text = canonicalSchemaText(schema);
      entry = this.readersByText.get(text);
      if (entry === undefined) {
        entry = { type: parseAvroType(schema), text, resolutions: new Map() };
        this.readersByText.set(text, entry);
      }
      this.readersByObject.set(schema, entry);
    }
    return entry;
  }
}

/** The schema id a wire-format value names in its header; undefined when it has no such header. */
export function writerSchemaId(value: Buffer): number | undefined {
  return value.length >= WIRE_HEADER_BYTES && value[0] === MAGIC_BYTE ? value.readInt32BE(1) : undefined;
}

function unknownSchema(schemaId: number, askedAt: number, cause?: unknown): DecodeError {
  return new DecodeError('SCHEMA_UNKNOWN', `schema id ${schemaId} is not in the schema registry (error 40403)`, {
    schemaId,
    askedAt,
    cause,
  });
}

function resolve(reader: ReaderEntry, writer: WriterEntry): Resolution {
  if (reader.text === writer.text) return SAME_SCHEMA;
  try {
    return reader.type.createResolver(writer.type);
  } catch {
    return { incompatible: readIncompatibility(reader.type, writer.type) ?? 'schemas do not resolve' };
  }
}

/** Throws WIRE_FORMAT_INVALID unless `buf` starts with the Confluent wire-format header. */
function checkWireHeader(buf: Buffer): void {
  if (buf.length < WIRE_HEADER_BYTES) {
    throw new DecodeError(
      'WIRE_FORMAT_INVALID',
      `record value is ${buf.length} byte(s), shorter than the 5-byte Confluent wire-format header: not written by a schema-registry serializer`,
    );
  }
  if (buf[0] !== MAGIC_BYTE) {
    throw new DecodeError(
      'WIRE_FORMAT_INVALID',
      `record value starts with 0x${buf[0]!.toString(16).padStart(2, '0')}, not the wire-format magic byte 0x00: not written by a schema-registry serializer`,
    );
  }
}

function readBody(
  type: Type,
  resolver: ReturnType<Type['createResolver']> | undefined,
  buf: Buffer,
  schemaId: number,
): Record<string, unknown> {
  let result: { value: unknown; offset: number };
  try {
    result = type.decode(buf, WIRE_HEADER_BYTES, resolver);
  } catch (err) {
    throw new DecodeError(
      'AVRO_INVALID',
      `Avro body of a record with schema id ${schemaId} is undecodable: ${(err as Error).message}`,
      {
        schemaId,
        cause: err,
      },
    );
  }
  if (result.offset < 0) {
    throw new DecodeError(
      'AVRO_INVALID',
      `Avro body of a record with schema id ${schemaId} is truncated (${buf.length - WIRE_HEADER_BYTES} byte(s))`,
      {
        schemaId,
      },
    );
  }
  if (result.offset !== buf.length) {
    throw new DecodeError(
      'AVRO_INVALID',
      `Avro body of a record with schema id ${schemaId} has ${buf.length - result.offset} trailing byte(s): written with a different schema than its id says`,
      { schemaId },
    );
  }
  return result.value as Record<string, unknown>;
}
