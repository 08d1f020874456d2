import fc from 'fast-check';
import {
  approxDistinct,
  count,
  distinct,
  max,
  min,
  sum,
  SMALL_DISTINCT,
  type AggregateResults,
  type Aggregation,
} from './aggregations';
import { WindowDefinitionError, WindowStateError } from './errors';

interface Ev {
  user: string | null;
  amount?: number | null;
}

function fold<S, R>(agg: Aggregation<Ev, S, R>, events: Ev[]): S {
  return events.reduce((state, e) => agg.add(state, e), agg.create());
}

/** JSON round trip the way snapshots travel (through Redis as a string). */
function roundTrip<S, R>(agg: Aggregation<Ev, S, R>, state: S): S {
  return agg.fromJSON(JSON.parse(JSON.stringify(agg.toJSON(state))));
}

const events: Ev[] = [
  { user: 'a', amount: 2.5 },
  { user: 'b', amount: null },
  { user: 'a' },
  { user: null, amount: -4 },
  { user: 'c', amount: Number.NaN },
  { user: 'b', amount: 10 },
];

describe('aggregations', () => {
  it('count counts every event', () => {
    const agg = count<Ev>();
    expect(agg.result(fold(agg, events))).toBe(6);
    expect(agg.result(agg.merge(fold(agg, events.slice(0, 2)), fold(agg, events.slice(2))))).toBe(6);
    expect(agg.mergeResults(2, 4)).toBe(6);
  });

  it('sum skips null, undefined and non-finite values; an empty sum is 0', () => {
    const agg = sum((e: Ev) => e.amount);
    expect(agg.result(fold(agg, events))).toBe(2.5 - 4 + 10);
    expect(agg.result(fold(agg, [{ user: 'x' }]))).toBe(0);
    expect(agg.result(agg.merge(fold(agg, events.slice(0, 3)), fold(agg, events.slice(3))))).toBe(8.5);
  });

  it('min and max skip missing values like SQL and are null when none was seen', () => {
    const lo = min((e: Ev) => e.amount);
    const hi = max((e: Ev) => e.amount);
    expect(lo.result(fold(lo, events))).toBe(-4);
    expect(hi.result(fold(hi, events))).toBe(10);
    expect(lo.result(fold(lo, [{ user: 'x', amount: null }, { user: 'y' }]))).toBeNull();
    expect(lo.merge(null, 3)).toBe(3);
    expect(hi.mergeResults(7, null)).toBe(7);
    expect(hi.mergeResults(null, null)).toBeNull();
  });

  it('distinct keeps the exact set (null skipped) and merges by union', () => {
    const agg = distinct((e: Ev) => e.user);
    expect(agg.result(fold(agg, events))).toEqual(['a', 'b', 'c']);
    const left = fold(agg, [{ user: 'x' }, { user: 'y' }]);
    const right = fold(agg, [{ user: 'y' }, { user: 'z' }]);
    expect(agg.result(agg.merge(left, right))).toEqual(['x', 'y', 'z']);
    expect(agg.mergeResults(['x', 'y'], ['a', 'y'])).toEqual(['a', 'x', 'y']);
  });

  it('distinct keeps insertion order and its result through every size (one value, an array, a Set)', () => {
    const agg = distinct((e: Ev) => e.user);
    // Fresh strings, as each decoded event brings its own: equal values must still count once.
    const users = Array.from({ length: SMALL_DISTINCT * 2 + 3 }, (_, i) => `u${(i * 7) % 40}`);
    let state = agg.create();
    const seen: string[] = [];
    for (const u of [...users, ...users]) {
      state = agg.add(state, { user: `${u}!`.slice(0, -1) });
      if (!seen.includes(u)) seen.push(u);
      expect(agg.toJSON(state)).toEqual(seen);
      expect(agg.result(state)).toEqual([...seen].sort());
      expect(agg.toJSON(roundTrip(agg, state))).toEqual(seen);
    }
    expect(agg.toJSON(agg.create())).toEqual([]);
    expect(agg.toJSON(agg.fromJSON([]))).toEqual([]);
    // Merging across sizes: one value into a large state, a large state into one value or none.
    const large = fold(
      agg,
      users.map((user) => ({ user })),
    );
    expect(agg.result(agg.merge(fold(agg, [{ user: 'zz' }]), large))).toEqual([...seen, 'zz'].sort());
    expect(agg.result(agg.merge(agg.create(), fold(agg, [{ user: 'a' }, { user: 'b' }])))).toEqual(['a', 'b']);
  });

  it('distinct results in the order the generic sort gives strings, leaving the state as it was', () => {
    const agg = distinct((e: Ev) => e.user);
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' }), fc.string())),
        (users) => {
          const state = fold(
            agg,
            users.map((user) => ({ user })),
          );
          const before = agg.toJSON(state);
          expect(agg.result(state)).toEqual([...new Set(users)].sort());
          expect(agg.toJSON(state)).toEqual(before);
        },
      ),
    );
  });

  it('approxDistinct estimates small sets exactly enough and merges', () => {
    const agg = approxDistinct((e: Ev) => e.user, 12);
    const result = agg.result(fold(agg, events));
    expect(result.estimate).toBe(3);
    expect(result.precision).toBe(12);
    expect(result.registers).toHaveLength(4096);
    const merged = agg.mergeResults(result, agg.result(fold(agg, [{ user: 'd' }, { user: 'a' }])));
    expect(merged.estimate).toBe(4);
  });

  it('every state survives a JSON round trip unchanged', () => {
    const aggs = {
      n: count<Ev>(),
      s: sum((e: Ev) => e.amount),
      lo: min((e: Ev) => e.amount),
      hi: max((e: Ev) => e.amount),
      d: distinct((e: Ev) => e.user),
      hll: approxDistinct((e: Ev) => e.user, 10),
    };
    for (const agg of Object.values(aggs) as Aggregation<Ev, unknown, unknown>[]) {
      const state = fold(agg, events);
      expect(agg.result(roundTrip(agg, state))).toEqual(agg.result(state));
      expect(agg.toJSON(roundTrip(agg, state))).toEqual(agg.toJSON(state));
    }
    // min of nothing (null) also round-trips
    const lo = min((e: Ev) => e.amount);
    expect(roundTrip(lo, lo.create())).toBeNull();
  });

  it('rejects malformed state and bad definitions', () => {
    expect(() => count().fromJSON('3')).toThrow(WindowStateError);
    expect(() => distinct((e: Ev) => e.user).fromJSON([1, 2])).toThrow(WindowStateError);
    expect(() =>
      approxDistinct((e: Ev) => e.user, 12).fromJSON(
        approxDistinct((e: Ev) => e.user, 10).toJSON(approxDistinct((e: Ev) => e.user, 10).create()),
      ),
    ).toThrow(/precision 10/);
    expect(() => approxDistinct((e: Ev) => e.user, 3)).toThrow(WindowDefinitionError);
    expect(() => sum(undefined as unknown as (e: Ev) => number)).toThrow(WindowDefinitionError);
  });

  it('spec results are typed per aggregation', () => {
    const spec = { n: count<Ev>(), users: distinct((e: Ev) => e.user), lo: min((e: Ev) => e.amount) };
    expect(Object.keys(spec)).toEqual(['n', 'users', 'lo']);
    const typed: AggregateResults<typeof spec> = { n: 1, users: ['a'], lo: null };
    // @ts-expect-error count's result is a number, not a string
    const wrong: AggregateResults<typeof spec> = { n: 'x', users: [], lo: 1 };
    expect(typed.n + (wrong.lo ?? 0)).toBe(2);
  });
});
