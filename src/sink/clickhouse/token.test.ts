import { insertDedupToken } from './token';

const p = (partition: number, from: string, to: string) => ({
  topic: 'events',
  partition,
  fromOffset: from,
  toOffset: to,
});

describe('insertDedupToken', () => {
  const rows = [
    { id: 'a', n: 1, version: 1, ingested_at: 10 },
    { id: 'b', n: 2, version: 1, ingested_at: 10 },
  ];

  it('is the same for the same records and content, whatever the volatile columns, key order or position order', () => {
    const replay = rows.map((r) => ({ ingested_at: 99, version: 7, n: r.n, id: r.id }));
    expect(insertDedupToken('t', replay, [p(1, '5', '9'), p(0, '0', '4')])).toBe(
      insertDedupToken('t', rows, [p(0, '0', '4'), p(1, '5', '9')]),
    );
  });

  it('differs when the rows, the offsets or the table differ, so a different block is never dropped as a duplicate', () => {
    const base = insertDedupToken('t', rows, [p(0, '0', '4')]);
    expect(insertDedupToken('t', [rows[0]!, { ...rows[1]!, n: 3 }], [p(0, '0', '4')])).not.toBe(base);
    expect(insertDedupToken('t', [...rows, { id: 'c', n: 0, version: 1, ingested_at: 10 }], [p(0, '0', '4')])).not.toBe(
      base,
    );
    expect(insertDedupToken('t', rows, [p(0, '0', '5')])).not.toBe(base);
    expect(insertDedupToken('u', rows, [p(0, '0', '4')])).not.toBe(base);
  });
});
