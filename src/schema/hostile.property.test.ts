import fc from 'fast-check';
import type { Type } from 'avsc';
import eventCounts from '../../streams/event-counts';
import { loadAvroSchema, parseAvroType } from './avro';
import { DecodeError, EncodeError, SchemaCodec, WIRE_HEADER_BYTES } from './codec';
import { startMemoryRegistry, type RunningRegistry } from './registry';

/**
 * Garbage fed to the decoder a processor runs on every record value
 * (docs/design.md §3.1, §3.7): whatever the bytes, decoding either yields a
 * value of the reader schema or rejects with a non-retriable DecodeError,
 * within a time bound, and never reaches Object.prototype. What the reference stream's
 * validator then accepts must be an event the reader schema accepts too.
 */

const v1 = loadAvroSchema('analytics_event');
const v2 = loadAvroSchema('analytics_event.v2');
const reader = parseAvroType(v2);

/**
 * v2 with every string written as `bytes` and the map as an array of
 * (key, value) records: the same binary encoding (a string is a length and
 * its bytes; a map block is a count and its entries), so arbitrary byte
 * strings, malformed UTF-8 included, can be placed exactly where the reader
 * expects strings and map keys.
 */
function asBytes(schema: unknown): unknown {
  if (schema === 'string') return 'bytes';
  if (Array.isArray(schema)) return schema.map(asBytes);
  if (typeof schema !== 'object' || schema === null) return schema;
  const s = schema as Record<string, unknown>;
  if (s.type === 'map') {
    const entry = {
      type: 'record',
      name: 'Entry',
      fields: [
        { name: 'key', type: 'bytes' },
        { name: 'value', type: asBytes(s.values) },
      ],
    };
    return { type: 'array', items: entry };
  }
  if (s.type === 'record')
    return {
      ...s,
      fields: (s.fields as { type: unknown }[]).map((f) => ({ ...f, type: asBytes(f.type), default: undefined })),
    };
  return s.type === 'string' ? { ...s, type: 'bytes' } : s;
}
const rawStrings: Type = parseAvroType(asBytes(v2) as object);

const validEvent = {
  event_id: '8a3c0f5e-2d1b-4c6e-9f7a-0b1c2d3e4f50',
  event_type: 'purchase',
  user_id: 'user-17',
  campaign_id: 'spring',
  ad_id: null,
  event_time: 1_767_225_600_000,
  amount: 12.5,
  properties: { page: '/checkout', ref: 'mail' },
  channel: 'web',
};

const nothingOnObjectPrototype = () => {
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PROTOTYPE_NAMES);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
};
const PROTOTYPE_NAMES = Object.getOwnPropertyNames(Object.prototype).sort();

/**
 * Every object in a decoded value has an ordinary prototype: Object's,
 * Array's, or the empty class avsc makes for a record type (its only own
 * property is `constructor`). A prototype set from the data would be none.
 */
function plainAllTheWay(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return true;
  const proto = Object.getPrototypeOf(value) as object;
  const recordClass =
    Object.getPrototypeOf(proto) === Object.prototype && Object.getOwnPropertyNames(proto).join() === 'constructor';
  if (proto !== Object.prototype && proto !== Array.prototype && !recordClass) return false;
  return Object.values(value).every(plainAllTheWay);
}

/** A byte position and a way to spoil the encoding there. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 12 }),
  }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 8 }) }),
  // A varint that claims billions of map entries or string bytes: must not be believed.
  fc.record({ kind: fc.constant('huge-count' as const), at: fc.nat() }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(buf: Buffer, mutations: Mutation[]): Buffer {
  let out = Buffer.from(buf);
  for (const m of mutations) {
    // Past the header, so the mutated body still claims a known schema id.
    const at = WIRE_HEADER_BYTES + (m.at % Math.max(1, out.length - WIRE_HEADER_BYTES));
    if (m.kind === 'flip' && at < out.length) out[at] = m.byte;
    else if (m.kind === 'truncate') out = out.subarray(0, at);
    else if (m.kind === 'insert') out = Buffer.concat([out.subarray(0, at), m.bytes, out.subarray(at)]);
    else if (m.kind === 'delete') out = Buffer.concat([out.subarray(0, at), out.subarray(at + m.length)]);
    else if (m.kind === 'huge-count')
      out = Buffer.concat([out.subarray(0, at), Buffer.from([0xfe, 0xff, 0xff, 0xff, 0x3f]), out.subarray(at)]);
  }
  return out;
}

describe('decoding hostile record values (property)', () => {
  let registry: RunningRegistry;
  let codec: SchemaCodec;
  let id1: number;
  let id2: number;
  let otherId: number;

  beforeAll(async () => {
    registry = await startMemoryRegistry();
    codec = SchemaCodec.fromConfig({ registry: { url: registry.url } });
    id1 = await codec.register('events-value', v1);
    id2 = await codec.register('events-value', v2);
    otherId = await codec.register('other-value', {
      type: 'record',
      name: 'Other',
      fields: [{ name: 'n', type: 'long' }],
    });
  });
  afterAll(() => registry.close());

  const header = (id: number) => {
    const h = Buffer.alloc(WIRE_HEADER_BYTES);
    h.writeInt32BE(id, 1);
    return h;
  };

  /**
   * The contract for one value: a DecodeError (never retriable) or a decoded
   * value the reader schema accepts; if the stream's validator accepts it, the
   * event is one the reader schema accepts as well. Within a time bound.
   */
  async function decodesSafely(buf: Buffer): Promise<{ decoded: boolean; valid: boolean }> {
    const started = Date.now();
    let outcome = { decoded: false, valid: false };
    try {
      const { value } = await codec.decode(buf, v2);
      expect(reader.isValid(value)).toBe(true);
      expect(plainAllTheWay(value)).toBe(true);
      const validation = eventCounts.validate(value);
      if (validation.ok) expect(reader.isValid(validation.event)).toBe(true);
      outcome = { decoded: true, valid: validation.ok };
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      expect(err.retriable).toBe(false);
      expect(err.message.length).toBeGreaterThan(0);
    }
    expect(Date.now() - started).toBeLessThan(1000);
    nothingOnObjectPrototype();
    return outcome;
  }

  it('arbitrary bytes, with or without a plausible header', async () => {
    const ids = () => fc.constantFrom(id1, id2, otherId, 424242, -1);
    const value = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
      fc.tuple(ids(), fc.uint8Array({ maxLength: 300 })).map(([id, body]) => Buffer.concat([header(id), body])),
    );
    await fc.assert(
      fc.asyncProperty(value, async (buf) => void (await decodesSafely(buf))),
      { numRuns: 1500 },
    );
  });

  it('mutated encodings of valid events', async () => {
    const encoded = await codec.encode(id2, validEvent);
    const v1Encoded = await codec.encode(
      id1,
      Object.fromEntries(Object.entries(validEvent).filter(([k]) => k !== 'channel')),
    );
    let decodedAfterMutation = 0;
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.array(mutation, { minLength: 1, maxLength: 4 }), async (useV1, mutations) => {
        if ((await decodesSafely(mutate(useV1 ? v1Encoded : encoded, mutations))).decoded) decodedAfterMutation += 1;
      }),
      { numRuns: 1500 },
    );
    // Some mutations (a changed character) still decode: the property saw both outcomes.
    expect(decodedAfterMutation).toBeGreaterThan(0);
  });

  it('strings are exactly the bytes sent, or the record is refused: malformed UTF-8 is never replaced', async () => {
    const bytes = fc.uint8Array({ maxLength: 24 }).map((b) => Buffer.from(b));
    const record = fc.record({
      user_id: bytes,
      campaign_id: fc.option(bytes, { nil: null }),
      properties: fc.uniqueArray(fc.record({ key: bytes, value: bytes }), {
        maxLength: 3,
        selector: (e) => e.key.toString('hex'),
      }),
    });
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(record, async ({ user_id, campaign_id, properties }) => {
        const body = rawStrings.toBuffer({
          ...validEvent,
          event_id: Buffer.from(validEvent.event_id),
          event_type: Buffer.from(validEvent.event_type),
          user_id,
          campaign_id,
          ad_id: null,
          properties,
          channel: Buffer.from('web'),
        });
        const buf = Buffer.concat([header(id2), body]);
        try {
          const { value } = await codec.decode(buf, v2);
          expect(Buffer.from(value.user_id as string, 'utf8')).toEqual(user_id);
          if (campaign_id !== null) expect(Buffer.from(value.campaign_id as string, 'utf8')).toEqual(campaign_id);
          const decoded = Object.entries(value.properties as Record<string, string>).map(([k, v]) => [
            Buffer.from(k),
            Buffer.from(v),
          ]);
          expect(decoded).toEqual(properties.map((e) => [e.key, e.value]));
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError);
          expect((err as DecodeError).code).toBe('AVRO_INVALID');
          refused += 1;
        }
        nothingOnObjectPrototype();
      }),
      { numRuns: 1000 },
    );
    expect(refused).toBeGreaterThan(0);
  });

  it('arrays: any bytes decode or fail within the bound, and a claimed item count is never believed beyond the bytes left', async () => {
    const nested = {
      type: 'record',
      name: 'Basket',
      fields: [
        { name: 'ids', type: { type: 'array', items: 'long' } },
        {
          name: 'lines',
          type: {
            type: 'array',
            items: {
              type: 'record',
              name: 'Line',
              fields: [
                { name: 'sku', type: 'string' },
                { name: 'tags', type: { type: 'array', items: 'string' } },
              ],
            },
          },
        },
      ],
    };
    const id = await codec.register('baskets-value', nested);
    const basket = fc.record({
      ids: fc.array(fc.integer({ min: -(2 ** 52) + 1, max: 2 ** 52 - 1 }), { maxLength: 5 }),
      lines: fc.array(fc.record({ sku: fc.string(), tags: fc.array(fc.string(), { maxLength: 3 }) }), { maxLength: 3 }),
    });
    await fc.assert(
      fc.asyncProperty(basket, fc.array(mutation, { maxLength: 3 }), async (value, mutations) => {
        const encoded = await codec.encode(id, value);
        const started = Date.now();
        try {
          const decoded = await codec.decode(mutate(encoded, mutations), nested);
          if (mutations.length === 0) expect(decoded.value).toEqual(value);
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError);
          expect(mutations.length).toBeGreaterThan(0);
        }
        expect(Date.now() - started).toBeLessThan(1000);
      }),
      { numRuns: 1000 },
    );
    // Five bytes claiming 2^31 - 1 longs: refused at once (avsc alone allocates until the heap is gone).
    const bomb = Buffer.concat([header(id), Buffer.from([0xfe, 0xff, 0xff, 0xff, 0x0f])]);
    await expect(codec.decode(bomb, nested)).rejects.toThrow(/claims 2147483647 items but only 0 byte\(s\) remain/);
  });

  it('longs beyond ±2^52 are refused both ways, never read back with another value', async () => {
    const id = await codec.register('longs-value', {
      type: 'record',
      name: 'L',
      fields: [{ name: 'n', type: 'long' }],
    });
    await expect(codec.encode(id, { n: -(2 ** 52) - 1 })).rejects.toThrow(EncodeError);
    // -(2^52 + 1) as another writer would send it: zigzag 2^53 + 1, eight 0xff-ish bytes avsc reads as +2^52.
    const zigzag = 2n ** 53n + 1n;
    const varint: number[] = [];
    for (let v = zigzag; ; v >>= 7n) {
      if (v < 0x80n) {
        varint.push(Number(v));
        break;
      }
      varint.push(Number(v & 0x7fn) | 0x80);
    }
    const sent = Buffer.concat([header(id), Buffer.from(varint)]);
    await expect(codec.decode(sent)).rejects.toThrow(/beyond ±2\^52/);
    expect((await codec.decode(await codec.encode(id, { n: -(2 ** 52) + 1 }))).value).toEqual({ n: -(2 ** 52) + 1 });
  });

  it('map keys named __proto__ or constructor stay data', async () => {
    const key = fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'polluted');
    const properties = fc.array(fc.tuple(key, fc.string()), { maxLength: 6 });
    await fc.assert(
      fc.asyncProperty(properties, async (entries) => {
        const sent: Record<string, string> = {};
        for (const [k, v] of entries)
          Object.defineProperty(sent, k, { value: v, enumerable: true, writable: true, configurable: true });
        const { value } = await codec.decode(await codec.encode(id2, { ...validEvent, properties: sent }), v2);
        const decoded = value.properties as Record<string, string>;
        expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
        expect(Object.entries(decoded)).toEqual(Object.entries(sent));
        nothingOnObjectPrototype();
      }),
      { numRuns: 500 },
    );
  });
});
