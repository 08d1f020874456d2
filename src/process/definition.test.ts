import { clickHouseSchemaOf } from './definition';

describe('clickHouseSchemaOf', () => {
  const tableA = { id: '0001_a', statements: ['CREATE TABLE IF NOT EXISTS {db}.a (n UInt8) ENGINE = Memory'] };
  const table = { name: 'b', create: ['CREATE TABLE IF NOT EXISTS {db}.b (n UInt8) ENGINE = Memory'] };

  it('keeps every stream table and runs a migration two streams share once, in declaration order', () => {
    const later = { id: '0002_a', statements: ['SELECT 1'] };
    const first = { tables: [table], migrations: [tableA, later] };
    // One definition spread into another shares its migration objects.
    const second = { ...first, tables: [] };
    expect(clickHouseSchemaOf([first, second, { tables: [] }])).toEqual({
      tables: [table],
      migrations: [tableA, later],
    });
  });

  it('passes two different migrations under one id on, for migrate to refuse', () => {
    const clash = { ...tableA, statements: ['SELECT 2'] };
    expect(
      clickHouseSchemaOf([
        { tables: [], migrations: [tableA] },
        { tables: [], migrations: [clash] },
      ]).migrations,
    ).toEqual([tableA, clash]);
  });
});
