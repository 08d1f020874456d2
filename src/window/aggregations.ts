import { WindowDefinitionError, WindowStateError } from './errors';
import { HyperLogLog, checkPrecision } from './hll';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * One aggregate of a window, as a mergeable partial: each source partition
 * keeps its own state per (window, group key) and emits its partial result;
 * partials are merged downstream (ClickHouse) with `mergeResults`' meaning.
 *
 * `add` and `merge` return the new state: they may mutate and return the
 * state they were given (sets, sketches), or return a fresh value (numbers).
 */
export interface Aggregation<E, S, R> {
  /** e.g. `count`, `approxDistinct(p=14)`: recorded in snapshots, so state of a changed definition is refused. */
  readonly describe: string;
  create(): S;
  add(state: S, event: E): S;
  /** Folds `from` into `into` (both partials of the same window and key). */
  merge(into: S, from: S): S;
  /** The partial result a closed (or early-emitted) window carries; never aliases the state. */
  result(state: S): R;
  /** How two partial results combine: what the downstream merge across partitions must do. */
  mergeResults(a: R, b: R): R;
  toJSON(state: S): JsonValue;
  /** Rebuilds a state from `toJSON`'s output; throws WindowStateError when it is malformed. */
  fromJSON(json: unknown): S;
}

/** Any aggregation over E (method parameters are bivariant, so every concrete state/result type fits). */
export type AnyAggregation<E> = Aggregation<E, unknown, unknown>;

/** Named aggregations of one windowed stream, e.g. `{ events: count(), users: distinct(e => e.user_id) }`. */
export type AggregationSpec<E> = Record<string, AnyAggregation<E>>;

export type ResultOf<A> = A extends Aggregation<never, unknown, infer R> ? R : never;

/** The typed aggregate values of one window row for a spec. */
export type AggregateResults<A> = { [N in keyof A]: ResultOf<A[N]> };

function expectNumber(json: unknown, what: string): number {
  if (typeof json !== 'number' || !Number.isFinite(json))
    throw new WindowStateError(`${what} state ${JSON.stringify(json)} is not a finite number`);
  return json;
}

function expectFunction(fn: unknown, what: string): void {
  if (typeof fn !== 'function')
    throw new WindowDefinitionError(`${what} needs a function that reads the value from an event`);
}

/** Number of events in the window. */
export function count<E = unknown>(): Aggregation<E, number, number> {
  return {
    describe: 'count',
    create: () => 0,
    add: (n) => n + 1,
    merge: (a, b) => a + b,
    result: (n) => n,
    mergeResults: (a, b) => a + b,
    toJSON: (n) => n,
    fromJSON: (json) => expectNumber(json, 'count'),
  };
}

/** Sum of `value(event)`. null, undefined and non-finite values (NaN, ±Infinity) are skipped; an empty sum is 0. */
export function sum<E>(value: (event: E) => number | null | undefined): Aggregation<E, number, number> {
  expectFunction(value, 'sum()');
  return {
    describe: 'sum',
    create: () => 0,
    add: (total, event) => {
      const v = value(event);
      return typeof v === 'number' && Number.isFinite(v) ? total + v : total;
    },
    merge: (a, b) => a + b,
    result: (total) => total,
    mergeResults: (a, b) => a + b,
    toJSON: (total) => total,
    fromJSON: (json) => expectNumber(json, 'sum'),
  };
}

function extreme<E>(
  name: 'min' | 'max',
  value: (event: E) => number | null | undefined,
): Aggregation<E, number | null, number | null> {
  expectFunction(value, `${name}()`);
  const better = name === 'min' ? (a: number, b: number) => (b < a ? b : a) : (a: number, b: number) => (b > a ? b : a);
  const combine = (a: number | null, b: number | null): number | null =>
    a === null ? b : b === null ? a : better(a, b);
  return {
    describe: name,
    create: () => null,
    add: (current, event) => {
      const v = value(event);
      if (typeof v !== 'number' || !Number.isFinite(v)) return current;
      return current === null ? v : better(current, v);
    },
    merge: combine,
    result: (current) => current,
    mergeResults: combine,
    toJSON: (current) => current,
    fromJSON: (json) => (json === null ? null : expectNumber(json, name)),
  };
}

/**
 * Smallest `value(event)`. Like SQL MIN: null, undefined and non-finite values
 * are skipped, and a window whose events all lack a value yields null.
 */
export function min<E>(value: (event: E) => number | null | undefined): Aggregation<E, number | null, number | null> {
  return extreme('min', value);
}

/** Largest `value(event)`; skips null/undefined/non-finite values like `min`, null when there was none. */
export function max<E>(value: (event: E) => number | null | undefined): Aggregation<E, number | null, number | null> {
  return extreme('max', value);
}

/**
 * State of `distinct`, by size, so that the many small partials of a large state stay small: null
 * while empty, the value itself for one, an array of up to `SMALL_DISTINCT` values, a Set past
 * that. Each keeps insertion order (what `toJSON` writes, unchanged from when every state was a
 * Set). A Set costs about 240 bytes at 5 values, an array of 5 about 90, a single value nothing.
 */
export type DistinctState = null | string | readonly string[] | Set<string>;

/** Up to this many values a linear scan of an array is as quick as a Set lookup, and much smaller. */
export const SMALL_DISTINCT = 16;

function addDistinct(state: DistinctState, v: string, pool: StringPool): DistinctState {
  if (state === null) return pool.intern(v);
  if (typeof state === 'string') return state === v ? state : [state, pool.intern(v)];
  if (Array.isArray(state)) {
    const values = state as readonly string[];
    const n = values.length;
    for (let i = 0; i < n; i++) if (values[i] === v) return state;
    if (n >= SMALL_DISTINCT) return new Set(values).add(pool.intern(v));
    // A fresh array of exactly n + 1: push would grow the backing store by 16 slots at once.
    const next = new Array<string>(n + 1);
    for (let i = 0; i < n; i++) next[i] = values[i]!;
    next[n] = pool.intern(v);
    return next;
  }
  const set = state as Set<string>;
  if (!set.has(v)) set.add(pool.intern(v));
  return set;
}

function distinctValues(state: DistinctState): string[] {
  if (state === null) return [];
  if (typeof state === 'string') return [state];
  return [...state];
}

/**
 * The values in the order `Array.prototype.sort` gives strings (by UTF-16 code units). Most partials
 * hold a few values: an insertion sort of a copied array, without the generic sort's call per comparison,
 * takes a fifth of the close of a window's partials less.
 */
function sortedValues(state: DistinctState): string[] {
  const values = distinctValues(state);
  if (values.length > SMALL_DISTINCT) return values.sort();
  for (let i = 1; i < values.length; i++) {
    const v = values[i]!;
    let j = i - 1;
    for (; j >= 0 && values[j]! > v; j--) values[j + 1] = values[j]!;
    values[j + 1] = v;
  }
  return values;
}

/**
 * Exact distinct values of `value(event)` (null/undefined skipped, as SQL
 * COUNT(DISTINCT) does). The partial result is the sorted set itself, not its
 * size: sizes of partitions' partials cannot be added, sets can be unioned.
 */
export function distinct<E>(value: (event: E) => string | null | undefined): Aggregation<E, DistinctState, string[]> {
  expectFunction(value, 'distinct()');
  const pool = new StringPool();
  return {
    describe: 'distinct',
    create: () => null,
    add: (state, event) => {
      const v = value(event);
      return typeof v === 'string' ? addDistinct(state, v, pool) : state;
    },
    merge: (into, from) => {
      let state = into;
      for (const v of distinctValues(from)) state = addDistinct(state, v, pool);
      return state;
    },
    result: sortedValues,
    mergeResults: (a, b) => [...new Set([...a, ...b])].sort(),
    // Insertion order, not sorted: the same for the same events, kept by fromJSON, and a checkpoint of a
    // large state would otherwise sort every open window's set each time.
    toJSON: (state) => distinctValues(state),
    fromJSON: (json) => {
      if (!Array.isArray(json) || !json.every((v) => typeof v === 'string'))
        throw new WindowStateError('distinct state is not an array of strings');
      let state: DistinctState = null;
      for (const v of json as string[]) state = addDistinct(state, v, pool);
      return state;
    },
  };
}

/**
 * One shared copy per distinct string. Every decoded event carries its own
 * copy of a value such as a user id, and each open window's set would keep
 * the copy of the event that added it: with many windows open, the same few
 * thousand users are held hundreds of thousands of times. Bounded: when full
 * it starts over (values already in sets stay valid, merely unshared).
 */
class StringPool {
  private readonly values = new Map<string, string>();

  constructor(private readonly limit = 200_000) {}

  intern(value: string): string {
    const shared = this.values.get(value);
    if (shared !== undefined) return shared;
    if (this.values.size >= this.limit) this.values.clear();
    this.values.set(value, value);
    return value;
  }
}

/** Partial result of `approxDistinct`: the estimate of this partial alone, and the registers to merge partials with. */
export interface ApproxDistinctResult {
  estimate: number;
  precision: number;
  /** 2^precision registers; partials merge by element-wise max (see `estimateFromRegisters`). */
  registers: Uint8Array;
}

/**
 * Approximate distinct count of `value(event)` with a HyperLogLog sketch of
 * 2^precision registers (4..16; standard error ≈ 1.04/√2^precision, e.g.
 * 0.81% at 14). null/undefined values are skipped.
 */
export function approxDistinct<E>(
  value: (event: E) => string | null | undefined,
  precision: number,
): Aggregation<E, HyperLogLog, ApproxDistinctResult> {
  expectFunction(value, 'approxDistinct()');
  try {
    checkPrecision(precision);
  } catch (err) {
    throw new WindowDefinitionError(`approxDistinct(): ${(err as Error).message}`);
  }
  return {
    describe: `approxDistinct(p=${precision})`,
    create: () => new HyperLogLog(precision),
    add: (sketch, event) => {
      const v = value(event);
      if (typeof v === 'string') sketch.add(v);
      return sketch;
    },
    merge: (into, from) => {
      into.merge(from);
      return into;
    },
    result: (sketch) => ({ estimate: sketch.estimate(), precision, registers: sketch.registers() }),
    mergeResults: (a, b) => {
      const merged = HyperLogLog.fromRegisters(a.registers);
      merged.merge(HyperLogLog.fromRegisters(b.registers));
      return { estimate: merged.estimate(), precision, registers: merged.registers() };
    },
    toJSON: (sketch) => sketch.toJSON(),
    fromJSON: (json) => {
      const sketch = HyperLogLog.fromJSON(json);
      if (sketch.precision !== precision)
        throw new WindowStateError(
          `approxDistinct state has precision ${sketch.precision}, the definition says ${precision}`,
        );
      return sketch;
    },
  };
}
