import { decimalType, encodeRows, rowProblems, valueProblem } from './rows';

describe('row validation against declared ClickHouse column types', () => {
  it('accepts values JSONEachRow can insert', () => {
    expect(valueProblem('String', 'x')).toBeUndefined();
    expect(valueProblem('UInt16', 65535)).toBeUndefined();
    expect(valueProblem('UInt64', '18446744073709551615')).toBeUndefined();
    expect(valueProblem('Int64', -5)).toBeUndefined();
    expect(valueProblem('Nullable(Float64)', null)).toBeUndefined();
    expect(valueProblem('Nullable(Float64)', 1.5)).toBeUndefined();
    expect(valueProblem('DateTime', 1_700_000_000)).toBeUndefined();
    expect(valueProblem('DateTime', '2023-11-14 22:13:20')).toBeUndefined();
    expect(valueProblem('Array(String)', ['a', 'b'])).toBeUndefined();
    expect(valueProblem('LowCardinality(String)', 'x')).toBeUndefined();
  });

  it('names what can never be inserted', () => {
    expect(valueProblem('String', 5)).toMatch(/string/);
    expect(valueProblem('UInt16', 65536)).toMatch(/out of range/);
    expect(valueProblem('UInt64', -1)).toMatch(/out of range/);
    expect(valueProblem('UInt32', 1.5)).toMatch(/integer/);
    expect(valueProblem('Float64', Number.NaN)).toMatch(/finite/);
    expect(valueProblem('Float64', null)).toMatch(/null/);
    expect(valueProblem('DateTime', 'yesterday')).toMatch(/epoch seconds/);
    expect(valueProblem('Array(String)', ['a', 1])).toMatch(/\[1\]/);
  });

  it('reports unknown columns and every bad value of a row; missing columns take defaults', () => {
    const columns = new Map([
      ['id', 'String'],
      ['n', 'UInt8'],
      ['opt', 'Nullable(String)'],
    ]);
    expect(rowProblems(columns, { id: 'a' })).toEqual([]);
    expect(rowProblems(columns, { id: 1, n: 300, extra: true })).toEqual([
      'id: expected a string for String',
      'n: 300 is out of range for UInt8',
      "unknown column 'extra'",
    ]);
  });

  it('reads Decimal types as system.columns prints them', () => {
    expect(decimalType('Decimal(18, 2)')).toEqual({ precision: 18, scale: 2 });
    expect(decimalType('Decimal64(4)')).toEqual({ precision: 18, scale: 4 });
    expect(decimalType('Decimal(9)')).toEqual({ precision: 9, scale: 0 });
    expect(decimalType('Float64')).toBeUndefined();
  });

  it('checks Decimal values: finite numbers that fit the precision, and no more digits than JSON carries exactly', () => {
    expect(valueProblem('Decimal(18, 2)', 999.0000000000001)).toBeUndefined();
    expect(valueProblem('Nullable(Decimal(18, 2))', null)).toBeUndefined();
    expect(valueProblem('Decimal(18, 2)', 9_999_999_999_999.99)).toBeUndefined();
    expect(valueProblem('Decimal(18, 2)', 10_000_000_000_000)).toMatch(/does not fit Decimal\(18, 2\) exactly/);
    expect(valueProblem('Decimal(9, 2)', 10_000_000)).toMatch(/does not fit/);
    expect(valueProblem('Decimal(18, 2)', '19.99')).toMatch(/finite number/);
    expect(valueProblem('Decimal(18, 2)', Number.NaN)).toMatch(/finite number/);
    expect(valueProblem('Decimal(18, 2)', null)).toMatch(/null/);
  });

  it('writes Decimal columns as the decimal they stand for: floating-point sums of cents become exact cents', () => {
    const columns = new Map([
      ['amount', 'Decimal(18, 2)'],
      ['maybe', 'Nullable(Decimal(18, 2))'],
      ['f', 'Float64'],
    ]);
    const sum = [0.1, 0.2].reduce((a, b) => a + b, 0); // 0.30000000000000004
    const rows = [
      { amount: 999.0000000000001, maybe: 19.99, f: sum },
      { amount: sum, maybe: null, f: 1 },
      { amount: 1.005, f: 2 }, // the double below 1.005 still rounds half away from zero
      { f: 3 },
    ];
    const encoded = encodeRows(columns, rows);
    expect(encoded.map((r) => JSON.stringify(r))).toEqual([
      '{"amount":999,"maybe":19.99,"f":0.30000000000000004}',
      '{"amount":0.3,"maybe":null,"f":1}',
      '{"amount":1.01,"f":2}',
      '{"f":3}',
    ]);
    expect(encoded[3]).toBe(rows[3]); // untouched rows are not copied
    expect(rows[0]!.amount).toBe(999.0000000000001); // the caller's rows are not changed
    expect(encodeRows(new Map([['f', 'Float64']]), rows)).toBe(rows);
  });
});
