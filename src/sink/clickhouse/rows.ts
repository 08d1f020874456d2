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
 * Why `value` can never be inserted into a column of `type` with JSONEachRow,
 * or undefined if it can. Types Sluice does not know are passed to the server
 * unchecked (its error then fails the whole insert, non-retriably).
 */
export function valueProblem(type: string, value: unknown): string | undefined {
  const nullable = inner(type, 'Nullable');
  if (nullable !== undefined) return value === null || value === undefined ? undefined : valueProblem(nullable, value);
  const lowCardinality = inner(type, 'LowCardinality');
  if (lowCardinality !== undefined) return valueProblem(lowCardinality, value);
  if (value === null || value === undefined) return `null in non-Nullable ${type}`;
  const array = inner(type, 'Array');
  if (array !== undefined) {
    if (!Array.isArray(value)) return `expected an array for ${type}`;
    for (let i = 0; i < value.length; i++) {
      const problem = valueProblem(array, value[i]);
      if (problem) return `[${i}]: ${problem}`;
    }
    return undefined;
  }
  if (type === 'String' || type.startsWith('FixedString(') || type === 'UUID') return typeof value === 'string' ? undefined : `expected a string for ${type}`;
  const range = INT_RANGES[type];
  if (range) {
    let n: bigint;
    if (typeof value === 'number' && Number.isSafeInteger(value)) n = BigInt(value);
    else if (typeof value === 'string' && /^-?\d+$/.test(value)) n = BigInt(value);
    else return `expected an integer for ${type}`;
    return n < range[0] || n > range[1] ? `${value} is out of range for ${type}` : undefined;
  }
  if (type === 'Float32' || type === 'Float64') return typeof value === 'number' && Number.isFinite(value) ? undefined : `expected a finite number for ${type}`;
  if (type === 'DateTime' || type.startsWith('DateTime(')) {
    if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 && value <= 4294967295 ? undefined : `expected epoch seconds (0..2^32-1) for ${type}`;
    return typeof value === 'string' && DATETIME_TEXT.test(value) ? undefined : `expected epoch seconds or 'YYYY-MM-DD hh:mm:ss' for ${type}`;
  }
  if (type === 'Date') return typeof value === 'string' && DATE_TEXT.test(value) ? undefined : `expected 'YYYY-MM-DD' for Date`;
  return undefined;
}

/** Every reason one row cannot be inserted: unknown columns and values that do not fit. Missing columns take their defaults. */
export function rowProblems(columns: TableColumns, row: Record<string, unknown>): string[] {
  const problems: string[] = [];
  for (const [name, value] of Object.entries(row)) {
    const type = columns.get(name);
    if (type === undefined) {
      problems.push(`unknown column '${name}'`);
      continue;
    }
    const problem = valueProblem(type, value);
    if (problem) problems.push(`${name}: ${problem}`);
  }
  return problems;
}
