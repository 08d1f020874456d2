import fc from 'fast-check';

/**
 * Arbitraries of hostile input for the property specs of the validator and
 * the ingest API (issue 9): what a JSON parser can hand over when anyone may
 * send the text.
 */

/** A valid v1 reference event (avro/analytics_event.avsc). */
export const VALID_V1_EVENT = {
  event_id: '0b7e2a4c-52c3-4d1e-9b7a-4f0e8f1c2d3e',
  event_type: 'view',
  user_id: 'u-1',
  campaign_id: null,
  ad_id: null,
  event_time: 1_767_225_600_000,
  amount: null,
  properties: { page: '/' },
};

const PROTOTYPE_NAMES = Object.getOwnPropertyNames(Object.prototype).sort();

/** Nothing was added to Object.prototype (prototype pollution). */
export function expectPrototypeUntouched(): void {
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PROTOTYPE_NAMES);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
}

export const SPECIAL_KEYS = ['__proto__', 'constructor', 'prototype', 'polluted', 'toString'];

/** JSON text nested `depth` levels deep in arrays or objects (JSON.parse accepts any depth; JSON.stringify does not). */
export const deeplyNestedText = fc
  .tuple(fc.integer({ min: 1, max: 5_000 }), fc.boolean())
  .map(([depth, asArray]) =>
    asArray ? `${'['.repeat(depth)}1${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`,
  );
export const deeplyNested = deeplyNestedText.map((text) => JSON.parse(text) as unknown);

/** Strings of any UTF-16 code units, lone surrogates included. */
export const anyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.constantFrom('\ud800', 'a\udfff', '\ud83d\ude00', ''),
);

/** An object whose keys are all own data properties, `__proto__` included, as JSON.parse builds them. */
export function ownProperties(entries: [string, unknown][]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries)
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  return out;
}

/** JSON-like values with special keys and any strings. */
export const hostileValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    anyString,
    fc.double(),
    fc.integer(),
    fc.constantFrom(null, true, false, 0, -1, 2 ** 53, Number.MAX_VALUE, 1e21, -0),
    fc.array(tie('value'), { maxLength: 4 }),
    fc
      .array(fc.tuple(fc.oneof(fc.constantFrom(...SPECIAL_KEYS), anyString), tie('value')), { maxLength: 4 })
      .map(ownProperties),
  ),
})).value;

/** A valid event with some fields replaced by `values`, maybe extra hostile keys, and hostile properties. */
export const hostileEventWith = (values: fc.Arbitrary<unknown>) =>
  fc
    .tuple(
      fc.array(fc.tuple(fc.constantFrom(...Object.keys(VALID_V1_EVENT), ...SPECIAL_KEYS), values), { maxLength: 3 }),
      fc.dictionary(anyString, anyString, { maxKeys: 3 }),
      fc.boolean(),
    )
    .map(([replaced, properties, keepProperties]) =>
      ownProperties([...Object.entries({ ...VALID_V1_EVENT, ...(keepProperties ? {} : { properties }) }), ...replaced]),
    );

/** Hostile values, deeply nested ones too (these cannot go through JSON.stringify). */
export const hostileEvent = hostileEventWith(fc.oneof(hostileValue, deeplyNested));
