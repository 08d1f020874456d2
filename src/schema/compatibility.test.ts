import { parseAvroType } from './avro';
import { checkCompatibility, readIncompatibility, type CompatibilityLevel } from './compatibility';

const record = (fields: object[]) =>
  parseAvroType({ type: 'record', name: 'R', fields: [{ name: 'id', type: 'string' }, ...fields] });
const base = record([]);
const withDefault = record([{ name: 'n', type: 'int', default: 0 }]);
const withoutDefault = record([{ name: 'n', type: 'int' }]);

const verdict = (
  candidate: ReturnType<typeof record>,
  existing: ReturnType<typeof record>[],
  level: CompatibilityLevel,
) =>
  checkCompatibility(
    candidate,
    existing.map((type, i) => ({ version: i + 1, type })),
    level,
  ).compatible;

describe('compatibility levels', () => {
  it.each([
    // candidate, previous, level, expected
    ['adds a field with a default', withDefault, [base], 'FULL', true],
    ['adds a field without a default', withoutDefault, [base], 'BACKWARD', false],
    ['adds a field without a default', withoutDefault, [base], 'FORWARD', true],
    ['adds a field without a default', withoutDefault, [base], 'FULL', false],
    ['removes a field without a default', base, [withoutDefault], 'BACKWARD', true],
    ['removes a field without a default', base, [withoutDefault], 'FORWARD', false],
    ['removes a field with a default', base, [withDefault], 'FULL', true],
    ['anything', withoutDefault, [base], 'NONE', true],
  ] as const)('%s: %s under %s', (_what, candidate, previous, level, expected) => {
    expect(verdict(candidate, [...previous], level)).toBe(expected);
  });

  it('checks only the latest version unless transitive', () => {
    // v1 has no n; v2 adds n with a default; v3 makes n required: reads v2 data, not v1 data.
    expect(verdict(withoutDefault, [base, withDefault], 'FULL')).toBe(true);
    expect(verdict(withoutDefault, [base, withDefault], 'FULL_TRANSITIVE')).toBe(false);
    expect(verdict(withoutDefault, [base, withDefault], 'FORWARD_TRANSITIVE')).toBe(true);
  });

  it('names the nested field that breaks', () => {
    const outer = (inner: object) =>
      parseAvroType({
        type: 'record',
        name: 'Outer',
        fields: [{ name: 'address', type: { type: 'record', name: 'Address', fields: [inner] } }],
      });
    expect(readIncompatibility(outer({ name: 'zip', type: 'int' }), outer({ name: 'zip', type: 'string' }))).toMatch(
      /^field address\.zip: /,
    );
  });
});
