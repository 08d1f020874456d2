import fc from 'fast-check';
import {
  VALID_V1_EVENT,
  deeplyNested,
  expectPrototypeUntouched,
  hostileEvent,
  hostileValue,
} from '../../test/helpers/hostile';
import { loadAvroSchema, parseAvroType } from '../schema';
import { logicalTypeChecks, validateEvent, type FieldIssue } from './validate';

/**
 * Generated garbage fed to the producer-side validator, the gate of the SDK
 * and the HTTP API: it never throws, names a path and a reason for every
 * issue, never touches Object.prototype, and what it accepts is an event the
 * schema encodes and decodes back exactly as sent.
 */

const schema = loadAvroSchema('analytics_event');
const type = parseAvroType(schema);
const logical = logicalTypeChecks(schema);
const validate = (value: unknown): FieldIssue[] => [...validateEvent(type, value), ...logical(value)];
/** Fields holding a long (alone or in a union): a long has no negative zero, so -0 comes back as 0, the same number; a double keeps -0. */
const longFields = new Set(
  (schema as { fields: { name: string; type: unknown }[] }).fields
    .filter((f) => JSON.stringify(f.type).includes('"long"'))
    .map((f) => f.name),
);

describe('validating hostile events (property)', () => {
  it('never throws, always names a path and a reason, never touches Object.prototype', () => {
    fc.assert(
      fc.property(fc.oneof(hostileEvent, hostileValue, deeplyNested), (value) => {
        const issues = validate(value);
        for (const issue of issues) {
          expect(typeof issue.path).toBe('string');
          expect(issue.reason.length).toBeGreaterThan(0);
          expect(issue.reason.length).toBeLessThan(200);
        }
        expectPrototypeUntouched();
      }),
      { numRuns: 1000 },
    );
  });

  it('what it accepts encodes and decodes back exactly as sent', () => {
    let accepted = 0;
    fc.assert(
      fc.property(hostileEvent, (event) => {
        if (validate(event).length > 0) return;
        accepted += 1;
        const decoded = type.fromBuffer(type.toBuffer(event)) as Record<string, unknown>;
        for (const [k, v] of Object.entries(event))
          expect(decoded[k]).toEqual(longFields.has(k) && Object.is(v, -0) ? 0 : v);
        expectPrototypeUntouched();
      }),
      { numRuns: 1000 },
    );
    expect(accepted).toBeGreaterThan(0);
  });

  it('refuses lone surrogates in values and keys, and times the sink cannot store, naming the field', () => {
    expect(validate({ ...VALID_V1_EVENT, user_id: 'a\ud800' })).toEqual([
      { path: 'user_id', reason: expect.stringContaining('lone UTF-16 surrogate') },
    ]);
    expect(validate({ ...VALID_V1_EVENT, properties: { '\udc00': 'x' } })).toEqual([
      { path: 'properties.\udc00', reason: expect.stringContaining('lone UTF-16 surrogate') },
    ]);
    expect(validate({ ...VALID_V1_EVENT, user_id: 'ok \ud83d\ude00' })).toEqual([]);
    expect(validate({ ...VALID_V1_EVENT, event_time: -1 })).toEqual([
      { path: 'event_time', reason: expect.stringContaining('between 1970-01-01 and 2106-02-07') },
    ]);
    expect(validate({ ...VALID_V1_EVENT, event_time: Date.UTC(9999, 0, 1) })).toEqual([
      { path: 'event_time', reason: expect.stringContaining('got number 253370764800000') },
    ]);
    expect(validate({ ...VALID_V1_EVENT, event_time: Date.UTC(2100, 0, 1) })).toEqual([]);
  });

  it('describes a deeply nested bad value without serialising it', () => {
    const deep = JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`) as unknown;
    expect(validate({ ...VALID_V1_EVENT, properties: { a: deep } })).toEqual([
      { path: 'properties.a', reason: 'expected string, got array of 1' },
    ]);
    expect(validate(deep)).toEqual([{ path: '(event)', reason: 'expected a JSON object, got array of 1' }]);
  });
});
