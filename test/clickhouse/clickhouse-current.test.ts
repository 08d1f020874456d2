import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { readWindowRows } from '../../src/generator';
import { settleReplacedPartitions } from '../../src/replay/settle';
import { createShadowTables, dropShadowTables, SqlShadowTables } from '../../src/replay/shadow';
import { swapShadows, type ShadowTable } from '../../src/replay/swap';
import {
  ClickHouseSink,
  createClickHouse,
  detectServerFeatures,
  featuresFromVersion,
  formatMigrationReport,
  migrate,
  type Row,
  type ServerFeatures,
} from '../../src/sink/clickhouse';
import { SinkHold } from '../../src/sink/hold';
import { MemoryHoldBackend } from '../../src/sink/hold-memory';
import { clickHouseSchemaOf } from '../../src/process';
import eventCounts from '../../streams/event-counts';
import { EVENT_COUNTS_MIGRATIONS, EVENTS_RAW_MIGRATIONS } from '../../streams/event-counts/tables';
import { chdbSettings } from '../helpers/chdb';
import { fillMonthOfPartials, MONTH_OF_PARTIALS_ROWS } from '../helpers/partials';

/**
 * The project's own ClickHouse code on a current engine (chdb; the local
 * stack has only 18.16): migrations, the sink's dedup tokens, the reference
 * stream's tables and views, the three swap strategies of a shadow replay,
 * and every SQL block of docs/analysts.md. No other service is involved.
 * The same file runs on 24.8, 25.8 and 26.9 with `npm run test:clickhouse-matrix`.
 */
const settings = chdbSettings();
const db = `cc_${randomBytes(4).toString('hex')}`;
let root: ClickHouseClient;
let ch: ClickHouseClient;
let features: ServerFeatures;
let version: string;
/** The analyzer's switch (`enable_analyzer` since 24.3, `allow_experimental_analyzer` before) and its default. */
let analyzer: { name: string; value: string };

const rows = async <T>(client: ClickHouseClient, query: string): Promise<T[]> =>
  (await client.query({ query, format: 'JSONEachRow' })).json<T>();
const scalar = async (query: string): Promise<number> =>
  Number(Object.values((await rows<Record<string, unknown>>(ch, query))[0]!)[0]);

beforeAll(async () => {
  root = createClickHouse(settings);
  ch = createClickHouse(settings, db);
  features = await detectServerFeatures(root);
  version = features.version;
  [analyzer = { name: 'none', value: '' }] = await rows<{ name: string; value: string }>(
    root,
    "SELECT name, value FROM system.settings WHERE name IN ('enable_analyzer', 'allow_experimental_analyzer') ORDER BY name = 'enable_analyzer' DESC LIMIT 1",
  );
  console.log(`ClickHouse ${version} (${settings.url})`);
});
afterAll(async () => {
  // In an Ordinary database the engine leaves the insert dedup log of a renamed table under its former
  // name (here the migration's events_raw__rebuilding), which a plain DROP DATABASE refuses to remove.
  await root.command({ query: 'SET force_remove_data_recursively_on_drop = 1' });
  for (const name of [db, `${db}_ord`, `${db}_old`, `${db}_vf`, `${db}_vg`])
    await root.command({ query: `DROP DATABASE IF EXISTS ${name}` });
  await ch.close();
  await root.close();
});

// The day the example queries of docs/analysts.md ask about.
const DAY = Date.UTC(2026, 0, 1) / 1000;
const TYPES = ['view', 'view', 'click', 'purchase'];

/** One events_raw row, as streams/event-counts maps an event. */
function rawRow(i: number, at: number = DAY + i * 150): Row {
  const type = TYPES[i % TYPES.length]!;
  return {
    event_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    event_type: type,
    user_id: `u${i % 7}`,
    campaign_id: i % 3 === 0 ? '' : `c${i % 3}`,
    ad_id: '',
    event_time: at,
    event_time_ms: at * 1000,
    amount: type === 'purchase' ? i + 0.25 : null,
    property_keys: type === 'view' ? ['page'] : [],
    property_values: type === 'view' ? [`/p${i % 4}`] : [],
    channel: 'web',
    kafka_topic: 'events',
    kafka_partition: i % 6,
    kafka_offset: i,
    ingested_at: at + 1,
    version: 0,
  };
}

/** One window partial, as the reference stream writes it for a Kafka partition. */
function partial(
  start: number,
  type: string,
  campaign: string,
  source: number,
  users: string[],
  amount: number,
  final: 0 | 1,
  version: number,
): Row {
  return {
    window_start: start,
    window_end: start + 60,
    event_type: type,
    campaign_id: campaign,
    source_partition: source,
    events: users.length,
    amount,
    users: [...new Set(users)],
    final,
    version,
    emitted_at: start + 90,
  };
}

describe('the engine', () => {
  it('is a current release, and feature detection reads what it has from its system tables, as the version table says', async () => {
    expect(features.major).toBeGreaterThanOrEqual(24);
    expect(features).toMatchObject({
      insertDeduplicationToken: true,
      nonReplicatedDeduplicationWindow: true,
      asyncInsert: true,
      dateTime64: true,
      tableComments: true,
      viewFiltersReachFinal: true,
    });
    expect(features).toEqual(featuresFromVersion(version));
  });

  it('runs queries with the new analyzer unless told otherwise', async () => {
    expect(analyzer?.value).toBe('1');
  });
});

describe('migrations', () => {
  it('create the database, events_raw with its dedup window and column comments, and the stream tables; a second run changes nothing', async () => {
    const first = await migrate(root, db, { features, ...clickHouseSchemaOf([eventCounts]) });
    expect(first).toMatchObject({
      createdDatabase: true,
      applied: EVENT_COUNTS_MIGRATIONS.map((m) => m.id),
      skipped: [],
      // The partial table is created by a migration now (its Float64 form, then rebuilt with Decimal money).
      createdTables: ['event_counts_1m', 'event_counts_1h', 'events'],
    });
    const schema = async () =>
      rows<{ name: string; q: string }>(
        root,
        `SELECT name, create_table_query AS q FROM system.tables WHERE database = '${db}' ORDER BY name`,
      );
    const before = await schema();
    expect(before.map((t) => t.name)).toEqual([
      'event_counts_1h',
      'event_counts_1m',
      'event_counts_1m_partial',
      'events',
      'events_raw',
      'sluice_migrations',
    ]);
    expect(before.find((t) => t.name === 'events_raw')!.q).toMatch(/non_replicated_deduplication_window = 1000/);
    const [comment] = await rows<{ comment: string }>(
      root,
      `SELECT comment FROM system.columns WHERE database = '${db}' AND table = 'events_raw' AND name = 'event_id'`,
    );
    expect(comment?.comment).toBe('producer uuid; with event_time the row identity a replay replaces');

    const second = await migrate(root, db, { features, ...clickHouseSchemaOf([eventCounts]) });
    expect(second).toMatchObject({
      createdDatabase: false,
      applied: [],
      alreadyApplied: EVENT_COUNTS_MIGRATIONS.map((m) => m.id),
      createdTables: [],
    });
    expect(second.existingTables).toEqual(['event_counts_1m_partial', ...first.createdTables]);
    expect(formatMigrationReport(second)).toContain('nothing to do: schema is up to date');
    expect(await schema()).toEqual(before);
    expect(await scalar(`SELECT count() FROM ${db}.sluice_migrations`)).toBe(EVENT_COUNTS_MIGRATIONS.length);
  });
});

describe('the sink', () => {
  const sink = () => new ClickHouseSink({ settings, database: db, maxDelayMs: 60_000 });
  const block = Array.from({ length: 40 }, (_, i) => rawRow(i));
  const position = { topic: 'events', partition: 0, fromOffset: '0', toOffset: '39' };

  it('writes a block once: the same block retried with its dedup token is dropped by the engine, a different block is not', async () => {
    // No merges: a count without FINAL then shows every block that landed, folded or not.
    await ch.command({ query: `SYSTEM STOP MERGES ${db}.events_raw` });
    const parts = () =>
      scalar(`SELECT count() FROM system.parts WHERE database = '${db}' AND table = 'events_raw' AND active`);
    const s = sink();
    try {
      expect(await s.write('events_raw', block, [position])).toEqual([]);
      expect(await scalar(`SELECT count() FROM ${db}.events_raw`)).toBe(40);
      expect(await parts()).toBe(1);

      // The process died after the insert, before its commit: the same records, mapped again (a newer ingest time).
      expect(
        await s.write(
          'events_raw',
          block.map((r) => ({ ...r, ingested_at: Number(r.ingested_at) + 60 })),
          [position],
        ),
      ).toEqual([]);
      expect(await scalar(`SELECT count() FROM ${db}.events_raw`)).toBe(40);
      expect(await parts()).toBe(1);
      expect(s.stats()).toMatchObject({ inserts: 2, rowsWritten: 80, failures: 0 });

      // Other records (another offset range) are another block, even with the same rows.
      expect(
        await s.write('events_raw', block.slice(0, 5), [{ ...position, fromOffset: '40', toOffset: '44' }]),
      ).toEqual([]);
      expect(await scalar(`SELECT count() FROM ${db}.events_raw`)).toBe(45);
      expect(await scalar(`SELECT count() FROM ${db}.events_raw FINAL`)).toBe(40);
    } finally {
      await s.close();
      await ch.command({ query: `SYSTEM START MERGES ${db}.events_raw` });
    }
  });

  it("an insert's settings last for that insert only: the next insert on the same connection carries no token and lands", async () => {
    // Injected client: the sink's inserts and the plain one below share one connection (one chdb session).
    const s = new ClickHouseSink({ settings, database: db, client: ch, maxDelayMs: 60_000 });
    await s.write('events_raw', [rawRow(98)], [{ ...position, fromOffset: '98', toOffset: '98' }]);
    await s.close();
    await ch.insert({ table: `${db}.events_raw`, values: [rawRow(99)], format: 'JSONEachRow' });
    expect(await scalar(`SELECT count() FROM ${db}.events_raw WHERE kafka_offset IN (98, 99)`)).toBe(2);
  });

  it('returns the rows the engine refuses for their data and writes the rest', async () => {
    await ch.command({
      query: `CREATE TABLE ${db}.codes (code FixedString(2), n UInt32) ENGINE = MergeTree ORDER BY n`,
    });
    const s = sink();
    try {
      const refused = await s.write(
        'codes',
        Array.from({ length: 6 }, (_, n) => ({ code: n === 4 ? 'abc' : 'ok', n })),
        [position],
      );
      expect(refused.map((r) => r.index)).toEqual([4]);
      expect(await scalar(`SELECT count() FROM ${db}.codes`)).toBe(5);
    } finally {
      await s.close();
    }
  });
});

describe('the window tables and views', () => {
  const M = DAY + 3600; // 01:00
  it('merge the partials of every Kafka partition: counts and sums add up, users are distinct over the union, a re-emission replaces its partial', async () => {
    const s = new ClickHouseSink({ settings, database: db, maxDelayMs: 60_000 });
    try {
      const emitted = [
        partial(M, 'view', 'c1', 0, ['u1', 'u2'], 0, 0, 1), // early, replaced below
        partial(M, 'view', 'c1', 0, ['u1', 'u2', 'u3'], 0, 1, 2),
        partial(M, 'view', 'c1', 1, ['u3', 'u4'], 0, 1, 2),
        partial(M, 'purchase', '', 2, ['u5'], 12.5, 1, 2),
        partial(M + 60, 'view', 'c1', 0, ['u1'], 0, 1, 2),
        partial(M + 60, 'purchase', '', 3, ['u5', 'u6'], 7.25, 0, 2),
      ];
      expect(await s.write('event_counts_1m_partial', emitted, [from(0)])).toEqual([]);
    } finally {
      await s.close();
    }
    expect(await readWindowRows(ch)).toEqual([
      {
        window_start: M * 1000,
        window_end: (M + 60) * 1000,
        event_type: 'purchase',
        campaign_id: '',
        events: 1,
        distinct_users: 1,
        sum_amount: 12.5,
      },
      {
        window_start: M * 1000,
        window_end: (M + 60) * 1000,
        event_type: 'view',
        campaign_id: 'c1',
        events: 5,
        distinct_users: 4,
        sum_amount: 0,
      },
      {
        window_start: (M + 60) * 1000,
        window_end: (M + 120) * 1000,
        event_type: 'purchase',
        campaign_id: '',
        events: 2,
        distinct_users: 2,
        sum_amount: 7.25,
      },
      {
        window_start: (M + 60) * 1000,
        window_end: (M + 120) * 1000,
        event_type: 'view',
        campaign_id: 'c1',
        events: 1,
        distinct_users: 1,
        sum_amount: 0,
      },
    ]);
    expect(
      await rows(
        ch,
        `SELECT toUnixTimestamp(window_start) AS start, final FROM event_counts_1m WHERE event_type = 'purchase' ORDER BY start`,
      ),
    ).toEqual([
      { start: M, final: 1 },
      { start: M + 60, final: 0 },
    ]);
    // The hour's distinct users are distinct over the whole hour, not a sum of minutes.
    const hours = await rows<Record<string, string | number>>(
      ch,
      `SELECT toUnixTimestamp(hour) AS hour, event_type, campaign_id, events, distinct_users_in_hour, arraySort(users) AS users, amount
       FROM event_counts_1h ORDER BY event_type`,
    );
    // 64-bit integers are JSON strings, as a server sends them (the chdb connection asks for that).
    expect(hours).toEqual([
      {
        hour: DAY + 3600,
        event_type: 'purchase',
        campaign_id: '',
        events: '3',
        distinct_users_in_hour: '2',
        users: ['u5', 'u6'],
        amount: 19.75,
      },
      {
        hour: DAY + 3600,
        event_type: 'view',
        campaign_id: 'c1',
        events: '6',
        distinct_users_in_hour: '4',
        users: ['u1', 'u2', 'u3', 'u4'],
        amount: 0,
      },
    ]);
    // Re-grouped at any grain, the user sets merge: the hour over every group has 6 users, not 2 + 4 + ... per minute.
    expect(
      await rows(
        ch,
        `SELECT uniqExactArray(users) AS users, sum(distinct_users_in_window) AS summed FROM event_counts_1m WHERE toStartOfHour(window_start) = toDateTime(${M})`,
      ),
    ).toEqual([{ users: '6', summed: '8' }]);
  });
});

const from = (partition: number) => ({ topic: 'events', partition, fromOffset: '0', toOffset: '0' });

describe('the window views over a month of partials, in both of their forms', () => {
  // The form this engine gets (FINAL) and the one servers before 24.8 get (argMax by identity), on the same partials.
  const forms = { final: `${db}_vf`, grouped: `${db}_vg` };
  const H = DAY + 14 * 86_400 + 10 * 3600; // an hour in the middle of the month
  const TOO_MANY = /Limit for rows|TOO_MANY_ROWS/;

  beforeAll(async () => {
    for (const [form, database] of Object.entries(forms)) {
      await migrate(root, database, {
        features: { ...features, viewFiltersReachFinal: form === 'final' },
        ...clickHouseSchemaOf([eventCounts]),
      });
      await fillMonthOfPartials(root, database, DAY);
      const emit = (rows: Row[]) =>
        root.insert({ table: `${database}.event_counts_1m_partial`, values: rows, format: 'JSONEachRow' });
      // Left unmerged, as a replay or a restart leaves them: an early partial, then its final in the same
      // millisecond (FINAL keeps the row inserted last); a replay's later version; a stale copy of an older one.
      await emit([partial(H, 'view', '', 0, ['u1'], 0, 0, 2000)]);
      await emit([
        partial(H, 'view', '', 0, ['u1', 'u2'], 0, 1, 2000),
        partial(H + 60, 'click', 'c1', 1, ['u3', 'u4', 'u5'], 9.5, 1, 3000),
        partial(H + 120, 'view', 'c1', 0, ['u9'], 0, 1, 500),
      ]);
    }
  });

  it('answer row for row the same, each partial at its latest version as FINAL keeps it', async () => {
    for (const [view, windows] of [
      ['event_counts_1m', MONTH_OF_PARTIALS_ROWS / 2],
      ['event_counts_1h', MONTH_OF_PARTIALS_ROWS / 120],
    ] as const) {
      // Compared in the engine (a month of rows): the rows of each form that the other lacks, and the counts.
      const columns = 'SELECT * EXCEPT (users), arraySort(users) AS users FROM';
      const [a, b] = [`${forms.final}.${view}`, `${forms.grouped}.${view}`];
      expect(
        await rows(
          root,
          `SELECT (SELECT count() FROM ${a}) AS final, (SELECT count() FROM ${b}) AS grouped,
             (SELECT count() FROM (${columns} ${a} EXCEPT ${columns} ${b})) AS only_final,
             (SELECT count() FROM (${columns} ${b} EXCEPT ${columns} ${a})) AS only_grouped`,
        ),
      ).toEqual([{ final: String(windows), grouped: String(windows), only_final: '0', only_grouped: '0' }]);
    }
    const hour = await rows(
      root,
      `SELECT event_type, campaign_id, events, distinct_users_in_hour AS users, amount
       FROM ${forms.grouped}.event_counts_1h WHERE hour = toDateTime(${H}) ORDER BY event_type, campaign_id`,
    );
    // 180 events an hour; the final partial (2 events, not 1 nor the early 1) and the replay (3, not 2) replace theirs.
    expect(hour).toEqual([
      { event_type: 'click', campaign_id: '', events: '180', users: '2', amount: 150 },
      { event_type: 'click', campaign_id: 'c1', events: '181', users: '5', amount: 150 + 9.5 - 1.25 },
      { event_type: 'view', campaign_id: '', events: '181', users: '4', amount: 150 - 1.25 },
      { event_type: 'view', campaign_id: 'c1', events: '180', users: '2', amount: 150 },
    ]);
  });

  it('read about the hour a query asks for, not the month: both forms, both views', async () => {
    // 345,600 partials; an hour of them is 480 rows, read as the one or two granules (8,192 rows each) around it.
    const limit = 'SETTINGS max_rows_to_read = 20000';
    for (const database of Object.values(forms)) {
      const hourView = `SELECT event_type, sum(events) AS events, uniqExactArray(users) AS users
        FROM ${database}.event_counts_1h WHERE hour = toDateTime(${H}) GROUP BY event_type ORDER BY event_type`;
      expect(await rows(root, `${hourView} ${limit}`)).toEqual([
        { event_type: 'click', events: '361', users: '5' },
        { event_type: 'view', events: '361', users: '4' },
      ]);
      const minuteView = `SELECT count() AS windows, sum(events) AS events FROM ${database}.event_counts_1m
        WHERE window_start >= toDateTime(${H}) AND window_start < toDateTime(${H + 3600})`;
      expect(await rows(root, `${minuteView} ${limit}`)).toEqual([{ windows: '240', events: '722' }]);
      // The limit bites: the same query over the whole month is refused.
      await expect(rows(root, `SELECT sum(events) FROM ${database}.event_counts_1h ${limit}`)).rejects.toThrow(
        TOO_MANY,
      );
    }
  });
});

describe('docs/analysts.md', () => {
  const doc = readFileSync(join(__dirname, '../../docs/analysts.md'), 'utf8');
  const blocks = [...doc.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());

  it('has SQL blocks to check', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(5);
  });

  // The raw events of the documented day are in events_raw (the sink spec) and its windows in the views.
  it.each(blocks.map((sql, i) => [i + 1, sql.split('\n')[0], sql] as const))(
    'block %i (%s) answers with rows, the same with the new analyzer and the old one where it exists',
    async (_, __, sql) => {
      // As sorted lines: a block without ORDER BY may answer in any order.
      // The blocks ask about yesterday; the data here is of the day DAY.
      const onDay = sql.split('yesterday()').join(`toDate('${new Date(DAY * 1000).toISOString().slice(0, 10)}')`);
      const answer = async (on: 0 | 1) =>
        (await rows<Record<string, unknown>>(ch, `${onDay}\nSETTINGS ${analyzer.name} = ${on}`))
          .map((r) => JSON.stringify(r))
          .sort();
      const current = await answer(1);
      expect(current.length).toBeGreaterThan(0);
      // The old query analysis is gone from 26.9 on (disabling the analyzer is an error there).
      const oldAnalysis = features.major < 26 || (features.major === 26 && features.minor < 9);
      if (oldAnalysis) expect(await answer(0)).toEqual(current);
    },
  );
});

describe('shadow swaps on the reference tables', () => {
  const hold = () => new SinkHold(new MemoryHoldBackend(), 'event-counts');
  const swap = (database: string, client: ClickHouseClient, shadow: ShadowTable, tag: string) =>
    swapShadows(new SqlShadowTables(client, database), hold(), [shadow], tag, { holdTimeoutMs: 5000 });
  const eventsOf = async (client: ClickHouseClient, database: string) =>
    (
      await rows<{ event_id: string; amount: number | null }>(
        client,
        `SELECT event_id, amount FROM ${database}.events_raw FINAL ORDER BY event_id`,
      )
    ).map((r) => `${r.event_id.slice(-4)}=${r.amount}`);

  it('one partition: REPLACE PARTITION puts the rebuilt window rows in and leaves the other days alone', async () => {
    const D2 = DAY + 86_400;
    const s = new ClickHouseSink({ settings, database: db, maxDelayMs: 60_000 });
    await s.write('event_counts_1m_partial', [partial(D2, 'click', 'c2', 0, ['u1'], 0, 1, 5)], [from(1)]);
    const [shadow] = await createShadowTables(ch, db, ['event_counts_1m_partial'], 'one');
    // The rebuilt day: one partial recomputed (a higher version), one the live table never had, and one
    // older than its live row (the version column, read from this engine's engine_full, keeps the live one).
    await ch.insert({
      table: `${db}.${shadow!.rebuilt}`,
      values: [
        partial(DAY + 3600, 'view', 'c1', 1, ['u3', 'u4', 'u9'], 0, 1, 9),
        partial(DAY + 7200, 'click', 'c1', 0, ['u2'], 0, 1, 9),
        partial(DAY + 3660, 'view', 'c1', 0, ['u7', 'u8'], 0, 1, 1),
      ],
      format: 'JSONEachRow',
    });
    const { swaps } = await swap(db, ch, shadow!, 'one');
    await s.close();
    expect(swaps[0]).toMatchObject({
      strategy: 'replace-partition',
      partitions: ['20260101'],
      rowsRebuilt: 3,
      rowsKept: 4,
      liveNewer: 1,
    });
    const view = await readWindowRows(ch);
    expect(
      view.map(
        (r) =>
          `${new Date(r.window_start).toISOString().slice(5, 16)} ${r.event_type} ${r.campaign_id} ${r.events}/${r.distinct_users}`,
      ),
    ).toEqual([
      '01-01T01:00 purchase  1/1',
      '01-01T01:00 view c1 6/5', // u1 u2 u3 (partition 0) + u3 u4 u9 (rebuilt partition 1)
      '01-01T01:01 purchase  2/2',
      '01-01T01:01 view c1 1/1', // the live partial, newer than its rebuilt one
      '01-01T02:00 click c1 1/1',
      '01-02T00:00 click c2 1/1', // the other day's partition, untouched
    ]);
    await dropShadowTables(ch, db, [shadow!], 'one');
    expect(await scalar(`SELECT count() FROM system.tables WHERE database = '${db}' AND name LIKE '%\\_\\_%'`)).toBe(0);
  });

  it('several partitions in an Atomic database: the whole table is staged and swapped with EXCHANGE TABLES', async () => {
    expect(await new SqlShadowTables(ch, db).canExchange()).toBe(true);
    const before = await eventsOf(ch, db);
    const [shadow] = await createShadowTables(ch, db, ['events_raw'], 'many');
    // A fix recomputed an event of January and one of December: two monthly partitions.
    await ch.insert({
      table: `${db}.${shadow!.rebuilt}`,
      values: [
        { ...rawRow(3), amount: 99.5 },
        { ...rawRow(1000, DAY - 86_400), amount: 1.5 },
      ],
      format: 'JSONEachRow',
    });
    const { swaps } = await swap(db, ch, shadow!, 'many');
    expect(swaps[0]).toMatchObject({
      strategy: 'exchange-tables',
      partitions: ['202512', '202601'],
      rowsRebuilt: 2,
      rowsKept: 41,
      liveNewer: 0,
    });
    const after = await eventsOf(ch, db);
    expect(after).toEqual([...before.map((e) => (e.startsWith('0003=') ? '0003=99.5' : e)), '1000=1.5'].sort());
    // The insert dedup window is a setting of the table, and the swapped-in table has it too.
    expect(
      (
        await rows<{ q: string }>(
          ch,
          `SELECT create_table_query AS q FROM system.tables WHERE database = '${db}' AND name = 'events_raw'`,
        )
      )[0]!.q,
    ).toMatch(/non_replicated_deduplication_window = 1000/);
    await dropShadowTables(ch, db, [shadow!], 'many');
  });

  it('several partitions in an Ordinary database (a server upgraded from old releases): one RENAME swaps the tables', async () => {
    const ordinary = `${db}_ord`;
    const setup = createClickHouse(settings);
    try {
      // Deprecated, but what a database created before 20.x still is after an upgrade.
      await setup.command({ query: 'SET allow_deprecated_database_ordinary = 1' });
      await setup.command({ query: `CREATE DATABASE ${ordinary} ENGINE = Ordinary` });
    } finally {
      await setup.close();
    }
    const client = createClickHouse(settings, ordinary);
    try {
      await migrate(client, ordinary, { features, ...clickHouseSchemaOf([eventCounts]) });
      await client.insert({
        table: `${ordinary}.events_raw`,
        values: [rawRow(1), rawRow(2), rawRow(3, DAY - 86_400)],
        format: 'JSONEachRow',
      });
      expect(await new SqlShadowTables(client, ordinary).canExchange()).toBe(false);
      const [shadow] = await createShadowTables(client, ordinary, ['events_raw'], 'ren');
      await client.insert({
        table: `${ordinary}.${shadow!.rebuilt}`,
        values: [
          { ...rawRow(1), amount: 5 },
          { ...rawRow(3, DAY - 86_400), amount: 7 },
        ],
        format: 'JSONEachRow',
      });
      const { swaps } = await swap(ordinary, client, shadow!, 'ren');
      expect(swaps[0]).toMatchObject({
        strategy: 'rename-tables',
        partitions: ['202512', '202601'],
        rowsRebuilt: 2,
        rowsKept: 1,
      });
      expect(await eventsOf(client, ordinary)).toEqual(['0001=5', '0002=null', '0003=7']);
      await dropShadowTables(client, ordinary, [shadow!], 'ren');
      const left = await rows<{ name: string }>(
        client,
        `SELECT name FROM system.tables WHERE database = '${ordinary}' AND name LIKE 'events_raw%' ORDER BY name`,
      );
      expect(left.map((r) => r.name)).toEqual(['events_raw']);
    } finally {
      await client.close();
    }
  });
});

describe('money, the events view and settling after a replay', () => {
  it('migrates a database of the Float64 era: amounts become the exact Decimal they stood for, events_raw is sorted by event time', async () => {
    const old = `${db}_old`;
    await root.command({ query: `CREATE DATABASE ${old}` });
    const client = createClickHouse(settings, old);
    try {
      // The schema as released before: events_raw's first migrations and the Float64 partial table.
      await migrate(client, old, { features, migrations: EVENTS_RAW_MIGRATIONS.slice(0, 2) });
      await client.command({
        query: `CREATE TABLE ${old}.event_counts_1m_partial (window_start DateTime, window_end DateTime, event_type String,
          campaign_id String, source_partition UInt16, events UInt64, amount Float64, users Array(String), final UInt8,
          version UInt64, emitted_at DateTime) ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMMDD(window_start)
          ORDER BY (window_start, window_end, event_type, campaign_id, source_partition)`,
      });
      await client.insert({
        table: `${old}.events_raw`,
        values: [
          { ...rawRow(3), amount: 19.99 },
          { ...rawRow(7), amount: 0.29 },
          { ...rawRow(1), amount: null },
        ],
        format: 'JSONEachRow',
      });
      await client.insert({
        table: `${old}.event_counts_1m_partial`,
        values: [partial(DAY, 'purchase', '', 0, ['u1'], 999.0000000000001, 1, 1)],
        format: 'JSONEachRow',
      });
      const report = await migrate(client, old, { features, ...clickHouseSchemaOf([eventCounts]) });
      expect(report.applied).toEqual(EVENT_COUNTS_MIGRATIONS.slice(2).map((m) => m.id));
      expect(
        await rows(client, `SELECT event_id, amount FROM ${old}.events ORDER BY event_id`).then((r) =>
          r.map((x) => JSON.stringify(x)),
        ),
      ).toEqual([
        `{"event_id":"${rawRow(1).event_id as string}","amount":null}`,
        `{"event_id":"${rawRow(3).event_id as string}","amount":19.99}`,
        `{"event_id":"${rawRow(7).event_id as string}","amount":0.29}`,
      ]);
      expect(await rows(client, `SELECT sum(amount) AS s FROM ${old}.event_counts_1m`)).toEqual([{ s: 999 }]);
      const [table] = await rows<{ sorting_key: string; partition_key: string }>(
        client,
        `SELECT sorting_key, partition_key FROM system.tables WHERE database = '${old}' AND name = 'events_raw'`,
      );
      expect(table).toEqual({ sorting_key: 'event_time, event_id', partition_key: 'toYYYYMM(event_time)' });
      expect(
        (
          await rows<{ name: string }>(client, `SELECT name FROM system.tables WHERE database = '${old}' ORDER BY name`)
        ).map((t) => t.name),
      ).toEqual([
        'event_counts_1h',
        'event_counts_1m',
        'event_counts_1m_partial',
        'events',
        'events_raw',
        'sluice_migrations',
      ]);
    } finally {
      await client.close();
    }
  });

  it('sums money exactly: floating-point partial sums are written as the cents they stand for', async () => {
    const at = DAY + 5 * 3600;
    const s = new ClickHouseSink({ settings, database: db, maxDelayMs: 60_000 });
    try {
      const tenths = Array.from({ length: 10 }, () => 0.1).reduce((a, b) => a + b, 0); // 0.9999999999999999
      expect(
        await s.write(
          'event_counts_1m_partial',
          [
            partial(at, 'purchase', 'money', 0, ['u1'], 998 + tenths, 1, 1),
            partial(at, 'purchase', 'money', 1, ['u2'], 0.1 + 0.2, 1, 1),
          ],
          [from(0)],
        ),
      ).toEqual([]);
    } finally {
      await s.close();
    }
    // As a Decimal: 998.9999999999999 + 0.30000000000000004 in Float64 would not print as 999.3.
    expect(
      await rows(ch, `SELECT amount, toTypeName(amount) AS type FROM event_counts_1m WHERE campaign_id = 'money'`),
    ).toEqual([{ amount: 999.3, type: 'Decimal(38, 2)' }]);
  });

  it('the events view counts a re-inserted event once; settling the replayed partition folds the copies in the table too', async () => {
    const at = DAY + 6 * 3600;
    const replayed: Row[] = Array.from({ length: 4 }, (_, i) => ({ ...rawRow(500 + i, at + i), amount: 10.1 }));
    await ch.command({ query: `SYSTEM STOP MERGES ${db}.events_raw` });
    try {
      await ch.insert({ table: `${db}.events_raw`, values: replayed, format: 'JSONEachRow' });
      // The replay's copy: the same rows, written again later (a different block, so the insert dedup window keeps it).
      await ch.insert({
        table: `${db}.events_raw`,
        values: replayed.map((r) => ({ ...r, ingested_at: Number(r.ingested_at) + 3600 })),
        format: 'JSONEachRow',
      });
      const inRange = `event_time >= toDateTime(${at}) AND event_time < toDateTime(${at + 60})`;
      expect(await scalar(`SELECT count() FROM events_raw WHERE ${inRange}`)).toBe(8);
      expect(await rows(ch, `SELECT count() AS n, sum(amount) AS s FROM events WHERE ${inRange}`)).toEqual([
        { n: '4', s: 40.4 },
      ]);
      await ch.command({ query: `SYSTEM START MERGES ${db}.events_raw` });
      const settled = await settleReplacedPartitions(ch, db, [
        { table: 'events_raw', kind: 'raw', rowsInRange: 4, partitions: ['202601'] },
      ]);
      expect(settled).toEqual([{ table: 'events_raw', partitionId: '202601' }]);
      expect(await scalar(`SELECT count() FROM events_raw WHERE ${inRange}`)).toBe(4);
    } finally {
      await ch.command({ query: `SYSTEM START MERGES ${db}.events_raw` });
    }
  });
});
