import { replacingVersionColumn, splitTopLevel } from './shadow';

describe('reading a table definition for the swap', () => {
  it('splits a sorting key at its top-level commas only', () => {
    expect(splitTopLevel('event_id')).toEqual(['event_id']);
    expect(splitTopLevel('window_start, window_end, event_type, campaign_id, source_partition')).toEqual([
      'window_start',
      'window_end',
      'event_type',
      'campaign_id',
      'source_partition',
    ]);
    expect(splitTopLevel("toDate(ts), lower(k), if(a, 'x,y', b)")).toEqual([
      'toDate(ts)',
      'lower(k)',
      "if(a, 'x,y', b)",
    ]);
  });

  it.each([
    // engine, engine_full (as system.tables prints them), version column
    [
      'ReplacingMergeTree',
      'ReplacingMergeTree(version) PARTITION BY toYYYYMM(event_time) ORDER BY event_id SETTINGS index_granularity = 8192',
      'version',
    ],
    ['ReplacingMergeTree', 'ReplacingMergeTree(ver, is_deleted) ORDER BY k SETTINGS index_granularity = 8192', 'ver'],
    [
      'ReplicatedReplacingMergeTree',
      "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/t', '{replica}', ver) PARTITION BY d ORDER BY k",
      'ver',
    ],
    [
      'SharedReplacingMergeTree',
      "SharedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', `version`) ORDER BY k",
      'version',
    ],
    ['ReplacingMergeTree', 'ReplacingMergeTree(EventDate, (CounterID, EventDate), 8192, ver)', 'ver'],
    [
      'ReplacingMergeTree',
      'ReplacingMergeTree(EventDate, intHash32(UserID), (CounterID, EventDate, intHash32(UserID)), 8192)',
      undefined,
    ],
    ['ReplacingMergeTree', 'ReplacingMergeTree ORDER BY k SETTINGS index_granularity = 8192', undefined],
    ['ReplacingMergeTree', 'ReplacingMergeTree() ORDER BY k', undefined],
    ['MergeTree', 'MergeTree PARTITION BY d ORDER BY k', undefined],
  ])('%s: %s -> %s', (engine, full, version) => {
    expect(replacingVersionColumn(engine, full)).toBe(version);
  });

  it('refuses a version that is not a plain column name, rather than put it in SQL', () => {
    expect(() =>
      replacingVersionColumn('ReplacingMergeTree', 'ReplacingMergeTree(v; DROP TABLE x) ORDER BY k'),
    ).toThrow(/column name/);
  });
});
