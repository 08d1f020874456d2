import type { ClickHouseClient } from '@clickhouse/client';
import { assertIdentifier } from './migrations';

/** Column name → ClickHouse type, as the server declares it. */
export type TableColumns = Map<string, string>;

export async function fetchColumns(client: ClickHouseClient, database: string, table: string): Promise<TableColumns> {
  assertIdentifier('database', database);
  assertIdentifier('table', table);
  const result = await client.query({
    query: `SELECT name, type FROM system.columns WHERE database = '${database}' AND table = '${table}'`,
    format: 'JSONEachRow',
  });
  return new Map((await result.json<{ name: string; type: string }>()).map((c) => [c.name, c.type]));
}

const INT_RANGES: Record<string, [bigint, bigint]> = {
  UInt8: [0n, 255n],
  UInt16: [0n, 65535n],
  UInt32: [0n, 4294967295n],
  UInt64: [0n, 18446744073709551615n],
  Int8: [-128n, 127n],
  Int16: [-32768n, 32767n],
  Int32: [-2147483648n, 2147483647n],
  Int64: [-9223372036854775808n, 9223372036854775807n],
};

const DATETIME_TEXT = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;
const DATE_TEXT = /^\d{4}-\d{2}-\d{2}$/;

const inner = (type: string, wrapper: string): string | undefined =>
  type.startsWith(`${wrapper}(`) && type.endsWith(')') ? type.slice(wrapper.length + 1, -1) : undefined;

/**
 * A JSON number carries any decimal of up to 15 significant digits exactly
 * (the shortest text of the nearest double is that decimal): larger Decimal
 * values are refused rather than written with their last digits changed.
 */
const JSON_EXACT_DIGITS = 15;

const DECIMAL = /^Decimal(32|64|128|256)?\((\d+)(?:,\s*(\d+))?\)$/;
const DECIMAL_PRECISION: Record<string, number> = { '32': 9, '64': 18, '128': 38, '256': 76 };

/** Precision and scale of Decimal(P, S) and DecimalN(S), as system.columns prints them; undefined for other types. */
export function decimalType(type: string): { precision: number; scale: number } | undefined {
  const m = DECIMAL.exec(type);
  if (!m) return undefined;
  return m[1]
    ? { precision: DECIMAL_PRECISION[m[1]]!, scale: Number(m[2]) }
    : { precision: Number(m[2]), scale: Number(m[3] ?? 0) };
}

/** Says why a value cannot go into one column, or undefined if it can. */
export type ValueCheck = (value: unknown) => string | undefined;

const unchecked: ValueCheck = () => undefined;

function integerCheck(type: string, [lo, hi]: [bigint, bigint]): ValueCheck {
  // Numbers are compared as numbers (no BigInt per value); the bounds beyond 2^53 only matter for strings.
  const low = Number(lo);
  const high = Number(hi);
  return (value) => {
    if (typeof value === 'number' && Number.isSafeInteger(value))
      return value < low || value > high ? `${value} is out of range for ${type}` : undefined;
    if (typeof value === 'string' && /^-?\d+$/.test(value)) {
      const n = BigInt(value);
      return n < lo || n > hi ? `${value} is out of range for ${type}` : undefined;
    }
    return `expected an integer for ${type}`;
  };
}

/**
 * Builds the check of one column type once, so rows are checked without
 * parsing type names again for every value (the sink checks every value of
 * every row before an insert). Types Sluice does not know are passed to the
 * server unchecked (its error then fails the whole insert, non-retriably).
 */
export function compileValueCheck(type: string): ValueCheck {
  const nullable = inner(type, 'Nullable');
  if (nullable !== undefined) {
    const check = compileValueCheck(nullable);
    return (value) => (value === null || value === undefined ? undefined : check(value));
  }
  const lowCardinality = inner(type, 'LowCardinality');
  if (lowCardinality !== undefined) return compileValueCheck(lowCardinality);
  const notNull =
    (check: ValueCheck): ValueCheck =>
    (value) =>
      value === null || value === undefined ? `null in non-Nullable ${type}` : check(value);
  const array = inner(type, 'Array');
  if (array !== undefined) {
    const element = compileValueCheck(array);
    return notNull((value) => {
      if (!Array.isArray(value)) return `expected an array for ${type}`;
      for (let i = 0; i < value.length; i++) {
        const problem = element(value[i]);
        if (problem) return `[${i}]: ${problem}`;
      }
      return undefined;
    });
  }
  if (type === 'String' || type.startsWith('FixedString(') || type === 'UUID') {
    return notNull((value) => (typeof value === 'string' ? undefined : `expected a string for ${type}`));
  }
  const range = INT_RANGES[type];
  if (range) return notNull(integerCheck(type, range));
  if (type === 'Float32' || type === 'Float64') {
    return notNull((value) =>
      typeof value === 'number' && Number.isFinite(value) ? undefined : `expected a finite number for ${type}`,
    );
  }
  const decimal = decimalType(type);
  if (decimal) {
    const limit = 10 ** Math.min(decimal.precision, JSON_EXACT_DIGITS);
    return notNull((value) => {
      if (typeof value !== 'number' || !Number.isFinite(value)) return `expected a finite number for ${type}`;
      return Math.abs(Math.round(value * 10 ** decimal.scale)) < limit
        ? undefined
        : `${value} does not fit ${type} exactly (at most ${Math.min(decimal.precision, JSON_EXACT_DIGITS)} digits)`;
    });
  }
  if (type === 'DateTime' || type.startsWith('DateTime(')) {
    return notNull((value) => {
      if (typeof value === 'number')
        return Number.isSafeInteger(value) && value >= 0 && value <= 4294967295
          ? undefined
          : `expected epoch seconds (0..2^32-1) for ${type}`;
      return typeof value === 'string' && DATETIME_TEXT.test(value)
        ? undefined
        : `expected epoch seconds or 'YYYY-MM-DD hh:mm:ss' for ${type}`;
    });
  }
  if (type === 'Date')
    return notNull((value) =>
      typeof value === 'string' && DATE_TEXT.test(value) ? undefined : `expected 'YYYY-MM-DD' for Date`,
    );
  return notNull(unchecked);
}

/** Why `value` can never be inserted into a column of `type` with JSONEachRow, or undefined if it can. */
export function valueProblem(type: string, value: unknown): string | undefined {
  return compileValueCheck(type)(value);
}

/** Compiled checks per column, built once per fetched column list. */
const compiled = new WeakMap<TableColumns, Map<string, ValueCheck>>();

function checksOf(columns: TableColumns): Map<string, ValueCheck> {
  let checks = compiled.get(columns);
  if (!checks) {
    checks = new Map([...columns].map(([name, type]) => [name, compileValueCheck(type)]));
    compiled.set(columns, checks);
  }
  return checks;
}

/** Every reason one row cannot be inserted: unknown columns and values that do not fit. Missing columns take their defaults. */
export function rowProblems(columns: TableColumns, row: Record<string, unknown>): string[] {
  const checks = checksOf(columns);
  let problems: string[] | undefined;
  for (const name in row) {
    if (!Object.prototype.hasOwnProperty.call(row, name)) continue;
    const check = checks.get(name);
    const problem = check === undefined ? `unknown column '${name}'` : check(row[name]);
    if (problem) (problems ??= []).push(check === undefined ? problem : `${name}: ${problem}`);
  }
  return problems ?? NO_PROBLEMS;
}

/** Shared by every valid row, so checking one allocates nothing; never mutated. */
const NO_PROBLEMS: string[] = Object.freeze([]) as unknown as string[];

/** Rewrites one column's value for JSONEachRow; identity for the types that need nothing. */
type ValueEncoder = (value: unknown) => unknown;

/**
 * A number for a Decimal column, rounded to the column's scale, so that its
 * JSON text is the decimal itself: sums of cents in floating point (999.0000000000001)
 * are written as 999, where the server would refuse the extra digits or, converting
 * from Float64, truncate 19.99 to 19.98. The rounding is done on the number's
 * shortest decimal text (what the producer wrote, for a value read from an event),
 * half away from zero: 1.005 is 1.01, though the double nearest to it is below.
 */
function compileValueEncoder(type: string): ValueEncoder | undefined {
  const nullable = inner(type, 'Nullable');
  const decimal = decimalType(nullable ?? type);
  if (!decimal) return undefined;
  const { scale } = decimal;
  const factor = 10 ** scale;
  return (value) => {
    if (typeof value !== 'number' || !Number.isFinite(value)) return value;
    const text = String(Math.abs(value));
    const [whole = '', fraction = ''] = text.split('.');
    // Exponent notation only for tiny or huge numbers: tiny ones round to 0, huge ones are refused by the check.
    if (text.includes('e')) return (Math.sign(value) * Math.round(Math.abs(value) * factor)) / factor;
    if (fraction.length <= scale) return value;
    const units = BigInt(whole + fraction.slice(0, scale)) + (fraction[scale]! >= '5' ? 1n : 0n);
    return (Math.sign(value) * Number(units)) / factor;
  };
}

const encoders = new WeakMap<TableColumns, [string, ValueEncoder][]>();

/** The rows as JSONEachRow should carry them (Decimal columns rounded to their scale); the same array when no column needs it. Run after the checks. */
export function encodeRows<R extends Record<string, unknown>>(columns: TableColumns, rows: R[]): R[] {
  let list = encoders.get(columns);
  if (!list) {
    list = [];
    for (const [name, type] of columns) {
      const encode = compileValueEncoder(type);
      if (encode) list.push([name, encode]);
    }
    encoders.set(columns, list);
  }
  if (list.length === 0) return rows;
  return rows.map((row) => {
    let out: R | undefined;
    for (const [name, encode] of list) {
      if (!Object.prototype.hasOwnProperty.call(row, name)) continue;
      const value = encode(row[name]);
      if (value !== row[name]) (out ??= { ...row })[name as keyof R] = value as R[keyof R];
    }
    return out ?? row;
  });
}
