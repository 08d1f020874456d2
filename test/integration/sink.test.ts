import { randomUUID } from 'node:crypto';
import {
  ClickHouseSink,
  detectServerFeatures,
  featuresFromVersion,
  InvalidIdentifierError,
  migrate,
  SinkUnavailableError,
  type Row,
  type ServerFeatures,
} from '../../src/sink/clickhouse';
import { ServiceError } from '../../src/errors';
import { EVENTS_RAW_MIGRATIONS } from '../../streams/event-counts/tables';
import { loadStream, migrateStreams, migrationLeaseKeyOf } from '../../src/process';
import { LeaseLostError, withLease } from '../../src/redis';
import { runCli } from '../helpers/cli';
import { createTestContext, type TestContext } from '../helpers/context';

let ctx: TestContext;
let features: ServerFeatures;
beforeAll(async () => {
  ctx = await createTestContext('sink');
  features = await detectServerFeatures(ctx.clickhouse);
  // The reference stream's raw table: the rows below are its rows.
  await migrate(ctx.clickhouse, ctx.id, { features, migrations: EVENTS_RAW_MIGRATIONS });
});
afterAll(async () => {
  await ctx.cleanup();
});

const query = async <T>(sql: string): Promise<T[]> =>
  (await ctx.clickhouse.query({ query: sql, format: 'JSONEachRow' })).json<T>();
const scalar = async (sql: string): Promise<number> =>
  Number(Object.values((await query<Record<string, string | number>>(sql))[0]!)[0]);

/** A reference-workload row as the runtime would map it; `ids` may repeat (producer duplicates). */
/** `at`: the event's own time (a duplicate is the same event, re-sent at a later offset). */
function rawRow(id: string, offset: number, version: number, at: number = offset): Row {
  const ms = 1_700_000_000_000 + at * 1000;
  return {
    event_id: id,
    event_type: offset % 3 === 0 ? 'click' : 'view',
    user_id: `u${offset % 17}`,
    campaign_id: offset % 5 === 0 ? '' : `c${offset % 4}`,
    ad_id: '',
    event_time: Math.floor(ms / 1000),
    event_time_ms: ms,
    amount: offset % 2 === 0 ? null : offset / 10,
    property_keys: ['k'],
    property_values: [`v${offset}`],
    channel: 'web',
    kafka_topic: 'events',
    kafka_partition: offset % 6,
    kafka_offset: offset,
    ingested_at: 1_700_000_000 + version,
    version,
  };
}

describe('feature detection', () => {
  it('reads the real server: version() and the setting-shaped features agree with the version table', async () => {
    const [{ v }] = (await query<{ v: string }>('SELECT version() AS v')) as [{ v: string }];
    expect(features.version).toBe(v);
    expect(features).toEqual(featuresFromVersion(v));
  });
});

describe('migrate', () => {
  it('is idempotent: a second run applies nothing and leaves tables and the ledger unchanged', async () => {
    const tablesBefore = await query<{ name: string }>(
      `SELECT name FROM system.tables WHERE database = '${ctx.id}' ORDER BY name`,
    );
    const again = await migrate(ctx.clickhouse, ctx.id, { features, migrations: EVENTS_RAW_MIGRATIONS });
    expect(again.applied).toEqual([]);
    expect(again.createdDatabase).toBe(false);
    expect(again.alreadyApplied).toContain('0001_events_raw');
    expect(await query(`SELECT name FROM system.tables WHERE database = '${ctx.id}' ORDER BY name`)).toEqual(
      tablesBefore,
    );
    expect(tablesBefore.map((t) => t.name)).toEqual(['events_raw', 'sluice_migrations']);
    expect(await scalar(`SELECT count() FROM ${ctx.id}.sluice_migrations`)).toBe(again.alreadyApplied.length);
  });

  it('skips migrations this server cannot run (the dedup window on 18.16), and records only what ran', async () => {
    const fresh = `${ctx.id}_m`;
    try {
      const report = await migrate(ctx.clickhouse, fresh, { features, migrations: EVENTS_RAW_MIGRATIONS });
      expect(report.createdDatabase).toBe(true);
      const dedupWindow = ['0002_events_raw_insert_dedup_window', '0004_events_raw_insert_dedup_window_after_rebuild'];
      expect(report.applied).toEqual(
        EVENTS_RAW_MIGRATIONS.map((m) => m.id).filter(
          (id) => features.insertDeduplicationToken || !dedupWindow.includes(id),
        ),
      );
      expect(report.skipped).toEqual(features.insertDeduplicationToken ? [] : dedupWindow);
    } finally {
      await ctx.clickhouse.command({ query: `DROP DATABASE IF EXISTS ${fresh}` });
    }
  });

  it('runs caller migrations and table definitions, and reports what it created', async () => {
    const tables = [
      {
        name: 'extra_t',
        create: [
          'CREATE TABLE IF NOT EXISTS {db}.extra_t (k String, v UInt64) ENGINE = ReplacingMergeTree(v) ORDER BY k',
        ],
      },
    ];
    const migrations = [
      { id: '9001_extra_view', statements: ['CREATE VIEW IF NOT EXISTS {db}.extra_v AS SELECT k FROM {db}.extra_t'] },
    ];
    // the view reads extra_t, so tables must exist first: run tables, then migrations on a second pass
    const first = await migrate(ctx.clickhouse, ctx.id, { features, tables });
    expect(first.createdTables).toEqual(['extra_t']);
    const second = await migrate(ctx.clickhouse, ctx.id, { features, tables, migrations });
    expect(second.applied).toEqual(['9001_extra_view']);
    expect(second.existingTables).toEqual(['extra_t']);
    expect(await scalar(`SELECT count() FROM system.tables WHERE database = '${ctx.id}' AND name = 'extra_v'`)).toBe(1);
  });

  it('rejects identifiers that are not strictly letters, digits and _', async () => {
    await expect(migrate(ctx.clickhouse, 'bad-db; DROP', { features })).rejects.toBeInstanceOf(InvalidIdentifierError);
    await expect(
      migrate(ctx.clickhouse, ctx.id, { features, tables: [{ name: 'x y', create: [] }] }),
    ).rejects.toBeInstanceOf(InvalidIdentifierError);
  });
});

describe('ClickHouseSink', () => {
  const sinkFor = (extra: Partial<ConstructorParameters<typeof ClickHouseSink>[0]> = {}) =>
    new ClickHouseSink({ settings: ctx.config.clickhouse, database: ctx.id, maxDelayMs: 60_000, ...extra });

  it('flush resolves only after the rows are visible, and re-inserting them (crash replay) changes no result', async () => {
    await ctx.clickhouse.command({ query: `TRUNCATE TABLE ${ctx.id}.events_raw` });
    const ids = Array.from({ length: 250 }, () => randomUUID());
    // 300 records, 50 of them producer duplicates of earlier ids (same event, later offset)
    const rows = Array.from({ length: 300 }, (_, offset) =>
      rawRow(ids[offset < 250 ? offset : offset - 250]!, offset, 1, offset < 250 ? offset : offset - 250),
    );
    const expectedDistinct = new Set(rows.map((r) => r.event_id)).size;
    const sink = sinkFor({ maxRows: 120 });
    try {
      const result = await sink.add('events_raw', rows, {
        topic: 'events',
        partition: 0,
        fromOffset: '0',
        toOffset: '299',
      });
      expect(result).toEqual({ accepted: 300, rejected: [] });
      expect(sink.pendingRows()).toBe(300); // the size trigger flushes in the background, not inside add()
      await sink.flush();
      expect(sink.pendingRows()).toBe(0);
      expect(sink.stats().inserts).toBe(3); // chunks of at most maxRows
      expect(await scalar(`SELECT count() FROM ${ctx.id}.events_raw`)).toBe(300);
      const before = await query(
        `SELECT count() AS n, uniqExact(event_id) AS u, sum(kafka_offset) AS s FROM ${ctx.id}.events_raw FINAL`,
      );

      // the process died after the insert, before the commit: the same records come again, mapped with a newer version
      await sink.add(
        'events_raw',
        rows.map((r) => ({ ...r, version: 2, ingested_at: 1_700_000_002 })),
        { topic: 'events', partition: 0, fromOffset: '0', toOffset: '299' },
      );
      await sink.flush();
      const after = await query<{ n: string; u: string }>(
        `SELECT count() AS n, uniqExact(event_id) AS u, sum(kafka_offset) AS s FROM ${ctx.id}.events_raw FINAL`,
      );
      expect(after).toEqual(before);
      expect(Number(after[0]!.n)).toBe(expectedDistinct);
      expect(Number(after[0]!.u)).toBe(expectedDistinct);
      expect(sink.stats()).toMatchObject({ rowsWritten: 600, breaker: 'closed' });
    } finally {
      await sink.close();
    }
  });

  it('returns rows that can never be inserted, row by row, and buffers the rest', async () => {
    const sink = sinkFor();
    try {
      const good = rawRow(randomUUID(), 1, 1);
      const result = await sink.add(
        'events_raw',
        [good, { ...good, kafka_partition: 70_000 }, { ...good, amount: 'lots' }, { ...good, nope: 1 }],
        {
          topic: 'events',
          partition: 1,
          fromOffset: '0',
          toOffset: '3',
        },
      );
      expect(result.accepted).toBe(1);
      expect(result.rejected.map((r) => [r.index, r.problems])).toEqual([
        [1, ['kafka_partition: 70000 is out of range for UInt16']],
        [2, ['amount: expected a finite number for Decimal(18, 2)']],
        [3, ["unknown column 'nope'"]],
      ]);
      expect(sink.pendingRows()).toBe(1);
    } finally {
      await sink.close();
    }
  });

  it('write (the runtime port) writes every row ClickHouse can take and returns the others, never written', async () => {
    const sink = sinkFor();
    try {
      const [good, bad] = [randomUUID(), randomUUID()];
      const refused = await sink.write(
        'events_raw',
        [rawRow(good, 1, 1), { ...rawRow(bad, 2, 1), event_time: 'soon' }, rawRow(good, 3, 1)],
        [{ topic: 'events', partition: 2, fromOffset: '1', toOffset: '3' }],
      );
      expect(refused.map((r) => r.index)).toEqual([1]);
      expect(refused[0]!.problems.join()).toMatch(/event_time/);
      expect(await scalar(`SELECT count() FROM ${ctx.id}.events_raw WHERE event_id = '${good}'`)).toBe(2);
      expect(await scalar(`SELECT count() FROM ${ctx.id}.events_raw WHERE event_id = '${bad}'`)).toBe(0);
    } finally {
      await sink.close();
    }
  });

  it('write finds the rows the server refuses for their data by splitting the block, and writes the rest', async () => {
    // FixedString(2) takes any string in the sink's own checks; the server refuses one that is too long.
    await ctx.clickhouse.command({
      query: `CREATE TABLE IF NOT EXISTS ${ctx.id}.codes (code FixedString(2), n UInt32) ENGINE = MergeTree ORDER BY n`,
    });
    const sink = sinkFor();
    try {
      const rows = Array.from({ length: 9 }, (_, n) => ({ code: n === 2 || n === 7 ? 'abc' : 'ok', n }));
      const refused = await sink.write('codes', rows, [
        { topic: 'events', partition: 0, fromOffset: '0', toOffset: '8' },
      ]);
      expect(refused.map((r) => r.index)).toEqual([2, 7]);
      expect(refused[0]!.problems.join()).toMatch(/ClickHouse refused it/);
      expect((await query<{ n: number }>(`SELECT n FROM ${ctx.id}.codes ORDER BY n`)).map((r) => Number(r.n))).toEqual([
        0, 1, 3, 4, 5, 6, 8,
      ]);
    } finally {
      await sink.close();
    }
  });

  it('rejects table names that are not strict identifiers before any SQL is built', async () => {
    const sink = sinkFor();
    try {
      await expect(
        sink.add('events_raw; DROP TABLE x', [{}], { topic: 't', partition: 0, fromOffset: '0', toOffset: '0' }),
      ).rejects.toBeInstanceOf(InvalidIdentifierError);
      expect(() => sinkFor({ database: 'no-dashes' })).toThrow(InvalidIdentifierError);
    } finally {
      await sink.close();
    }
  });

  it('opens its breaker against an unreachable server, then fails fast without losing the buffered rows', async () => {
    const sink = new ClickHouseSink({
      settings: { ...ctx.config.clickhouse, url: 'http://127.0.0.1:1' },
      database: 'sluice',
      columns: { t: { k: 'String' } },
      retry: { retries: 2, baseMs: 1, capMs: 5 },
      breaker: { failureThreshold: 3, resetTimeoutMs: 60_000 },
      maxDelayMs: 60_000,
    });
    try {
      await sink.add('t', [{ k: 'a' }, { k: 'b' }], { topic: 't', partition: 0, fromOffset: '0', toOffset: '1' });
      const first = await sink.flush().catch((e: unknown) => e);
      expect(first).toBeInstanceOf(ServiceError);
      expect((first as ServiceError).retriable).toBe(true);
      expect(sink.breakerState).toBe('open');
      const started = Date.now();
      const second = await sink.flush().catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(100);
      expect(second).toBeInstanceOf(SinkUnavailableError);
      expect((second as SinkUnavailableError).retriable).toBe(true);
      expect(sink.pendingRows()).toBe(2);
      expect(sink.stats()).toMatchObject({ failures: 3, retries: 2, inserts: 0 });
    } finally {
      await sink.close();
    }
  });
});

describe('migrations from processors that start together', () => {
  const definitions = [loadStream('event-counts')];
  const ledger = (database: string) =>
    query<{ id: string; n: string }>(
      `SELECT id, count() AS n FROM ${database}.sluice_migrations GROUP BY id ORDER BY id`,
    );
  const tablesOf = async (database: string) =>
    (await query<{ name: string }>(`SELECT name FROM system.tables WHERE database = '${database}' ORDER BY name`)).map(
      (t) => t.name,
    );

  it('three migrating one fresh database at once all succeed, and each migration runs once', async () => {
    const database = `${ctx.id}_race`;
    try {
      const waits: string[] = [];
      const config = { ...ctx.config, clickhouse: { ...ctx.config.clickhouse, database } };
      const runs = await Promise.all(
        [0, 1, 2].map(() => migrateStreams(config, definitions, { onWait: (holder) => waits.push(holder) })),
      );
      const applied = runs.flatMap((r) => r.report.applied);
      expect(applied.length).toBe(new Set(applied).size); // no migration ran twice
      expect(new Set(applied)).toEqual(new Set((await ledger(database)).map((r) => r.id)));
      expect((await ledger(database)).every((r) => Number(r.n) === 1)).toBe(true);
      expect(waits.length).toBe(2); // the two that found the lease taken said so
      const tables = await tablesOf(database);
      expect(tables).toEqual(expect.arrayContaining(['events_raw', 'event_counts_1m_partial', 'event_counts_1m']));
      expect(tables.filter((t) => /__(rebuilding|replaced)$/.test(t))).toEqual([]);
      expect(await ctx.redis.exists(migrationLeaseKeyOf(ctx.config, database))).toBe(0); // released
    } finally {
      await ctx.clickhouse.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    }
  });

  it('waits out a lease its holder left behind when it died, then migrates', async () => {
    const database = `${ctx.id}_orphan`;
    const key = migrationLeaseKeyOf(ctx.config, database);
    try {
      await ctx.redis.set(key, 'host#4242#dead', 'PX', 2000);
      const config = { ...ctx.config, clickhouse: { ...ctx.config.clickhouse, database } };
      let holder = '';
      const started = Date.now();
      const run = migrateStreams(config, definitions, { onWait: (h) => (holder = h) });
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(holder).toBe('host#4242#dead');
      expect(await tablesOf(database)).toEqual([]); // nothing done while the lease stands
      const { report } = await run;
      expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
      expect(report.applied).toContain('0001_events_raw');
    } finally {
      await ctx.redis.del(key);
      await ctx.clickhouse.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    }
  });
});

describe('the lease', () => {
  it('tells the work it was lost when Redis no longer has it, and leaves another holder its lease', async () => {
    const key = `${ctx.config.redis.keyPrefix}lease:test`;
    let reason: unknown;
    await withLease(
      ctx.redis,
      key,
      async (signal) => {
        await ctx.redis.set(key, 'another#1#holder', 'PX', 5000); // as after a Redis restart and a new holder
        await new Promise((resolve) => setTimeout(resolve, 500));
        reason = signal.reason;
        expect(signal.aborted).toBe(true);
      },
      { ttlMs: 600 },
    );
    expect(reason).toBeInstanceOf(LeaseLostError);
    expect(await ctx.redis.get(key)).toBe('another#1#holder'); // the release took only its own
    await ctx.redis.del(key);
  });
});

describe('a rebuilding migration that stopped half-way', () => {
  const rebuild = EVENTS_RAW_MIGRATIONS.find((m) => m.id === '0003_events_raw_decimal_amount_time_order')!;
  const before = EVENTS_RAW_MIGRATIONS.slice(0, EVENTS_RAW_MIGRATIONS.indexOf(rebuild));
  const tablesOf = async (database: string) =>
    new Set(
      (await query<{ name: string }>(`SELECT name FROM system.tables WHERE database = '${database}'`)).map(
        (t) => t.name,
      ),
    );
  const row = (id: string, amount: number) => ({
    ...rawRow(id, 1, 1),
    amount,
    event_time: 1_700_000_000,
    event_time_ms: 1_700_000_000_000,
  });
  const insert = (database: string, table: string, rows: Row[]) =>
    ctx.clickhouse.insert({ table: `${database}.${table}`, values: rows, format: 'JSONEachRow' });

  /**
   * A database with the first form of events_raw and two rows, where a run of the rebuild executed its
   * first `steps` statements and died; `e2` is written to the old table after the first copy, as a
   * processor still running would.
   */
  async function interrupted(database: string, steps: number) {
    await migrate(ctx.clickhouse, database, { features, migrations: before });
    await insert(database, 'events_raw', [row('e1', 19.99)]);
    const plan = (rebuild.statements as (t: ReadonlySet<string>) => string[])(await tablesOf(database));
    for (const [i, statement] of plan.slice(0, steps).entries()) {
      await ctx.clickhouse.command({ query: statement.split('{db}').join(database) });
      if (i === 2) await insert(database, 'events_raw', [row('e2', 0.25)]); // after the first copy
    }
  }

  it.each([
    ['after the first copy', 3],
    ['after the rename', 4],
    ['after the second copy', 5],
  ])('is finished by the next run when it stopped %s, with every row converted', async (_label, steps) => {
    const database = `${ctx.id}_resume${steps}`;
    try {
      await interrupted(database, steps);
      const report = await migrate(ctx.clickhouse, database, { features, migrations: EVENTS_RAW_MIGRATIONS });
      expect(report.applied).toContain(rebuild.id);
      expect([...(await tablesOf(database))].sort()).toEqual(['events_raw', 'sluice_migrations']);
      const rows = await query<{ event_id: string; amount: string }>(
        `SELECT event_id, toString(amount) AS amount FROM ${database}.events_raw FINAL ORDER BY event_id`,
      );
      expect(rows).toEqual([
        { event_id: 'e1', amount: '19.99' },
        { event_id: 'e2', amount: '0.25' },
      ]);
      expect(await scalar(`SELECT count() FROM ${database}.events_raw`)).toBe(rows.length); // folded, not doubled
    } finally {
      await ctx.clickhouse.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    }
  });

  it('is finished when 18.16 renamed only the old table away before the run died', async () => {
    const database = `${ctx.id}_halfrename`;
    try {
      await interrupted(database, 3);
      // The first half of the two-table RENAME, as a server that renames one table at a time leaves it.
      await ctx.clickhouse.command({
        query: `RENAME TABLE ${database}.events_raw TO ${database}.events_raw__replaced`,
      });
      await migrate(ctx.clickhouse, database, { features, migrations: EVENTS_RAW_MIGRATIONS });
      expect([...(await tablesOf(database))].sort()).toEqual(['events_raw', 'sluice_migrations']);
      expect(await scalar(`SELECT count() FROM ${database}.events_raw FINAL`)).toBe(2);
    } finally {
      await ctx.clickhouse.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    }
  });

  it('stops before its next statement when the process no longer holds the lease', async () => {
    const database = `${ctx.id}_aborted`;
    try {
      const lost = new AbortController();
      lost.abort(new Error('lease lost'));
      await expect(
        migrate(ctx.clickhouse, database, { features, migrations: EVENTS_RAW_MIGRATIONS, signal: lost.signal }),
      ).rejects.toThrow('lease lost');
      expect(await tablesOf(database)).not.toContain('events_raw');
    } finally {
      await ctx.clickhouse.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    }
  });
});

describe('sluice sink migrate', () => {
  it("creates the streams' schema (a migration two streams share runs once), then reports that there is nothing to do", () => {
    const env = { SLUICE_CLICKHOUSE_DATABASE: `${ctx.id}_cli` };
    {
      const first = runCli(['sink', 'migrate', 'event-counts', 'events-raw'], env);
      expect(first.stderr).toBe('');
      expect(first.status).toBe(0);
      expect(first.stdout).toMatch(/database \S+_cli: created/);
      expect(first.stdout).toMatch(/applied\s+0001_events_raw/);
      const second = runCli(['sink', 'migrate', 'event-counts', 'events-raw'], env);
      expect(second.status).toBe(0);
      expect(second.stdout).toMatch(/nothing to do/);
      expect(second.stdout).not.toMatch(/^(applied|created)/m);
    }
  });
  afterAll(async () => {
    await ctx.clickhouse.command({ query: `DROP DATABASE IF EXISTS ${ctx.id}_cli` });
  });
});
