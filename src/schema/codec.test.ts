import fc from 'fast-check';
import { ServiceError } from '../errors';
import { loadAvroSchema } from './avro';
import { RegistryClient, RegistryError } from './client';
import { DecodeError, EncodeError, SchemaCodec } from './codec';
import { startMemoryRegistry, type RunningRegistry } from './registry';

const v1 = loadAvroSchema('analytics_event');
const v2 = loadAvroSchema('analytics_event.v2');
const SUBJECT = 'events-value';

const event = {
  event_id: '8a3c0f5e-2d1b-4c6e-9f7a-0b1c2d3e4f50',
  event_type: 'purchase',
  user_id: 'user-17',
  campaign_id: 'spring',
  ad_id: null,
  event_time: 1_700_000_123_456,
  amount: 12.5,
  properties: { page: '/checkout' },
};

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(DecodeError);
    expect((err as DecodeError).retriable).toBe(false);
    return (err as DecodeError).code;
  }
  throw new Error('expected a DecodeError');
}

describe('SchemaCodec', () => {
  let registry: RunningRegistry;
  let codec: SchemaCodec;
  let id1: number;
  let id2: number;

  beforeAll(async () => {
    registry = await startMemoryRegistry();
    codec = SchemaCodec.fromConfig({ registry: { url: registry.url } });
    id1 = await codec.register(SUBJECT, v1);
    id2 = await codec.register(SUBJECT, v2);
  });
  afterAll(() => registry.close());

  it('registers idempotently and reports the latest id', async () => {
    expect(id2).not.toBe(id1);
    expect(await codec.register(SUBJECT, v1)).toBe(id1);
    expect(await codec.latestId(SUBJECT)).toBe(id2);
  });

  it('writes the Confluent header: magic byte 0, then the id as big-endian int32', async () => {
    const buf = await codec.encode(id2, { ...event, channel: 'web' });
    expect(buf[0]).toBe(0);
    expect(buf.readInt32BE(1)).toBe(id2);
  });

  it('resolves a v1 record into the v2 reader with the default, and a v2 record into the v1 reader', async () => {
    const old = await codec.encode(id1, event);
    expect(await codec.decode(old, v2)).toEqual({ schemaId: id1, value: { ...event, channel: 'unknown' } });
    const fresh = await codec.encode(id2, { ...event, channel: 'ios' });
    expect(await codec.decode(fresh, v1)).toEqual({ schemaId: id2, value: event });
    expect(await codec.decode(fresh)).toEqual({ schemaId: id2, value: { ...event, channel: 'ios' } });
  });

  it('round-trips arbitrary v1 events through the v2 reader (property)', async () => {
    const arbitraryEvent = fc.record({
      event_id: fc.uuid(),
      event_type: fc.constantFrom('view', 'click', 'purchase'),
      user_id: fc.string(),
      campaign_id: fc.option(fc.string(), { nil: null }),
      ad_id: fc.option(fc.string(), { nil: null }),
      event_time: fc.integer({ min: 0, max: 4_102_444_800_000 }),
      amount: fc.option(fc.double({ noNaN: true }), { nil: null }),
      properties: fc.dictionary(fc.string(), fc.string()),
    });
    await fc.assert(
      fc.asyncProperty(arbitraryEvent, async (value) => {
        const decoded = await codec.decode(await codec.encode(id1, value), v2);
        expect(decoded.value).toEqual({ ...value, properties: { ...value.properties }, channel: 'unknown' });
      }),
      { numRuns: 200 },
    );
  });

  it('rejects values that are not in wire format', async () => {
    expect(await codeOf(codec.decode(Buffer.alloc(0)))).toBe('WIRE_FORMAT_INVALID');
    expect(await codeOf(codec.decode(Buffer.from([0, 0, 0, 1])))).toBe('WIRE_FORMAT_INVALID');
    const json = Buffer.from(JSON.stringify(event));
    expect(await codeOf(codec.decode(json, v2))).toBe('WIRE_FORMAT_INVALID');
    const wrongMagic = await codec.encode(id1, event);
    wrongMagic[0] = 1;
    expect(await codeOf(codec.decode(wrongMagic))).toBe('WIRE_FORMAT_INVALID');
  });

  it('rejects a truncated body and a body with trailing bytes', async () => {
    const buf = await codec.encode(id1, event);
    expect(await codeOf(codec.decode(buf.subarray(0, buf.length - 3), v2))).toBe('AVRO_INVALID');
    expect(await codeOf(codec.decode(buf.subarray(0, 5)))).toBe('AVRO_INVALID');
    expect(await codeOf(codec.decode(Buffer.concat([buf, Buffer.from([7])]), v2))).toBe('AVRO_INVALID');
  });

  it('rejects a schema id the registry does not know (40403)', async () => {
    const buf = await codec.encode(id1, event);
    buf.writeInt32BE(424242, 1);
    expect(await codeOf(codec.decode(buf, v2))).toBe('SCHEMA_UNKNOWN');
  });

  it('remembers a 404 with when the registry was asked, and asks again when told to, not joining a request in flight', async () => {
    let clock = 1000;
    const answers: (() => void)[] = [];
    let requests = 0;
    const slow = new SchemaCodec(
      {
        schemaById: () => {
          requests += 1;
          return new Promise<string>((_, reject) =>
            answers.push(() => reject(new RegistryError(404, 40403, 'Schema not found'))),
          );
        },
      } as unknown as RegistryClient,
      () => clock,
    );
    const buf = await codec.encode(id1, event);
    buf.writeInt32BE(424242, 1);
    const first = slow.decode(buf, v2).catch((err: unknown) => err);
    clock = 2000;
    const joined = slow.decode(buf, v2).catch((err: unknown) => err);
    const fresh = slow.decode(buf, v2, { recheckUnknown: true }).catch((err: unknown) => err);
    expect(requests).toBe(2);
    for (const answer of answers.splice(0)) answer();
    expect(((await first) as DecodeError).askedAt).toBe(1000);
    expect(((await joined) as DecodeError).askedAt).toBe(1000);
    expect(((await fresh) as DecodeError).askedAt).toBe(2000);
    // Remembered: no request, the answer's time kept.
    clock = 3000;
    const remembered = (await slow.decode(buf, v2).catch((err: unknown) => err)) as DecodeError;
    expect([requests, remembered.code]).toEqual([2, 'SCHEMA_UNKNOWN']);
    expect(remembered.askedAt).toBeGreaterThanOrEqual(1000);
  });

  it('rejects a writer the reader cannot resolve, naming the field', async () => {
    const other = {
      ...(v2 as { fields: object[] }),
      fields: [...(v2 as { fields: object[] }).fields, { name: 'region', type: 'string' }],
    };
    const buf = await codec.encode(id1, event);
    await expect(codec.decode(buf, other)).rejects.toThrow(/region/);
    expect(await codeOf(codec.decode(buf, other))).toBe('SCHEMA_INCOMPATIBLE');
  });

  it('names the field when a value does not match the schema', async () => {
    const bad = { ...event, event_time: 'yesterday' };
    await expect(codec.encode(id1, bad)).rejects.toThrow(EncodeError);
    await expect(codec.encode(id1, bad)).rejects.toThrow(/event_time/);
  });

  it('keeps decoding cached ids when the registry goes away, and reports an unreachable registry as retriable', async () => {
    const own = await startMemoryRegistry();
    const cached = new SchemaCodec(new RegistryClient(own.url));
    const id = await cached.register(SUBJECT, v1);
    const buf = await cached.encode(id, event);
    await own.close();
    expect((await cached.decode(buf, v2)).value).toEqual({ ...event, channel: 'unknown' });
    buf.writeInt32BE(id + 1, 1);
    const failure = await cached.decode(buf).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ServiceError);
    expect((failure as ServiceError).retriable).toBe(true);
    expect((failure as ServiceError).service).toBe('registry');
  });
});
