import { parseAvroType } from './avro';

describe('parseAvroType', () => {
  const type = parseAvroType({
    type: 'record',
    name: 'WithMap',
    fields: [{ name: 'properties', type: { type: 'map', values: 'string' } }],
  });

  it("keeps a map key named __proto__ as data, without touching any object's prototype", () => {
    const sent = { properties: JSON.parse('{"__proto__":"x","constructor":"y","a":"b"}') as Record<string, string> };
    const decoded = type.fromBuffer(type.toBuffer(sent)) as { properties: Record<string, string> };
    expect(Object.keys(decoded.properties)).toEqual(['__proto__', 'constructor', 'a']);
    expect(Object.getOwnPropertyDescriptor(decoded.properties, '__proto__')?.value).toBe('x');
    expect(Object.getPrototypeOf(decoded.properties)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('reads maps written in blocks with byte sizes (negative block counts)', () => {
    // Block of 2 entries written with a negative count and its byte size, as other Avro writers may do.
    const entries = Buffer.concat([Buffer.from([0x02, 0x6b, 0x02, 0x76]), Buffer.from([0x02, 0x6c, 0x02, 0x77])]); // "k"->"v", "l"->"w"
    const body = Buffer.concat([Buffer.from([0x03]), Buffer.from([entries.length * 2]), entries, Buffer.from([0x00])]);
    expect(type.fromBuffer(body)).toEqual({ properties: { k: 'v', l: 'w' } });
  });
});
