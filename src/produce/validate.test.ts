import { loadAvroSchema, parseAvroType } from '../schema';
import { logicalTypeChecks, validateEvent } from './validate';

const json = loadAvroSchema('analytics_event');
const type = parseAvroType(json);
const valid = {
  event_id: '0b7e2a4c-52c3-4d1e-9b7a-4f0e8f1c2d3e',
  event_type: 'view',
  user_id: 'u',
  event_time: 1_700_000_000_000,
};

describe('validateEvent', () => {
  it('accepts an event that leaves optional fields to their defaults', () => {
    expect(validateEvent(type, valid)).toEqual([]);
    expect(validateEvent(type, { ...valid, campaign_id: 'c', amount: 2.5, properties: { a: 'b' } })).toEqual([]);
  });

  it('lists every bad field with its path and a reason', () => {
    const { user_id: _u, ...noUser } = valid;
    expect(_u).toBe('u');
    expect(validateEvent(type, { ...noUser, event_time: 1.5, amount: true, properties: { a: 1 }, extra: 'x' })).toEqual(
      [
        { path: 'user_id', reason: 'required string is missing' },
        { path: 'event_time', reason: 'expected long, got number 1.5' },
        { path: 'amount', reason: 'expected null or double, got boolean true' },
        { path: 'properties.a', reason: 'expected string, got number 1' },
        { path: 'extra', reason: 'unknown field (not in the schema)' },
      ],
    );
    expect(validateEvent(type, [valid])).toEqual([
      { path: '(event)', reason: expect.stringContaining('expected a JSON object, got array') },
    ]);
  });

  it('checks uuid fields, which avsc leaves as plain strings', () => {
    const check = logicalTypeChecks(json);
    expect(check(valid)).toEqual([]);
    expect(check({ ...valid, event_id: 'abc' })).toEqual([
      { path: 'event_id', reason: 'expected a UUID string, got string "abc"' },
    ]);
  });
});
