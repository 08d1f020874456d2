import { rowProblems, valueProblem } from './rows';

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
});
