import { systemClock } from '../../src/clock';
import { SqlShadowTables } from '../../src/replay/shadow';
import { createShadows, dropShadows, swapShadows, type ShadowTables, type SwapReport } from '../../src/replay/swap';
import { ClickHouseSink, detectServerFeatures, type ServerFeatures } from '../../src/sink/clickhouse';
import type { Row } from '../../src/sink/clickhouse/token';
import { RedisHoldBackend, SinkHold, type HoldBackend } from '../../src/sink/hold';
import { MemoryHoldBackend } from '../../src/sink/hold-memory';
import { ManualClock } from '../../src/sink/manual-clock';
import { ClickHouseModel } from '../sim/models/clickhouse';
import { createTestContext, type TestContext } from '../helpers/context';
import { sleep } from '../../src/clock';

/**
 * The simulation's models (test/sim) against the services they stand for:
 * the same small scenario on the real one and on the model, with the same
 * outcome, which is also the answer worked out by hand. If ClickHouse or
 * Redis behave differently from what the simulation assumes, this fails.
 */
describe('the simulation models agree with the real services', () => {
  let ctx: TestContext;
  let features: ServerFeatures;
  beforeAll(async () => {
    ctx = await createTestContext('models');
    features = await detectServerFeatures(ctx.clickhouse);
  });
  afterAll(async () => ctx.cleanup());

  describe('the hold backend: Redis and in memory', () => {
    /** Every call's answer, in order; TTLs short enough to watch expire. */
    async function scenario(b: HoldBackend): Promise<unknown[]> {
      const out: unknown[] = [];
      out.push(await b.enterLease('w1', 400)); // true
      out.push(await b.setHold('h1', 1000)); // 1: w1 is writing
      out.push(await b.enterLease('w2', 400)); // false: held
      out.push(await b.setHold('h2', 1000)); // -1: h1 has it
      out.push(await b.renewLease('w1', 400)); // true: a running write keeps its lease while held
      await b.leaveLease('w1');
      out.push(await b.setHold('h1', 1000)); // 0
      out.push(await b.renewHold('h2', 1000)); // false: not h2's
      out.push(await b.renewHold('h1', 1000)); // true
      await b.releaseHold('h2'); // not h2's: no effect
      out.push(await b.enterLease('w3', 400)); // false
      await b.releaseHold('h1');
      out.push(await b.enterLease('w3', 300)); // true
      await sleep(500);
      out.push(await b.renewLease('w3', 300)); // false: expired, and not brought back
      out.push(await b.setHold('h3', 300)); // 0: the expired lease does not count
      await sleep(500);
      out.push(await b.renewHold('h3', 300)); // false: lapsed, and not brought back
      out.push(await b.enterLease('w4', 300)); // true
      return out;
    }
    const expected = [true, 1, false, -1, true, 0, false, true, false, true, false, 0, false, true];

    it('gives the same answers as Redis, which are the expected ones', async () => {
      const [redis, memory] = await Promise.all([
        scenario(new RedisHoldBackend(ctx.redis, ctx.config.redis.keyPrefix, 'agree')),
        scenario(new MemoryHoldBackend(systemClock)),
      ]);
      expect(redis).toEqual(expected);
      expect(memory).toEqual(redis);
    });
  });

  describe('ClickHouse: inserts through the sink, then one swap, read FINAL', () => {
    const columns = { d: 'Date', k: 'String', v: 'UInt64', ver: 'UInt64' };
    const partition = (r: Row) => String(r.d).replace(/-/g, '');
    const r = (d: string, k: string, v: number, ver: number): Row => ({ d: `2026-01-0${d}`, k, v, ver });

    /** The live stream's inserts: one part each, with a newer and an equal-version duplicate left unmerged. */
    const liveInserts: Row[][] = [
      [r('1', 'a', 1, 1), r('1', 'b', 2, 1), r('2', 'c', 3, 1), r('3', 'e', 5, 1)],
      [r('1', 'a', 11, 3)], // newer than a's first row
      [r('1', 'b', 22, 1)], // same version as b's first row: the later insert wins
      [r('1', 'f', 6, 7), r('2', 'g', 7, 5)],
    ];
    const liveFinal = [
      '2026-01-01/a=11@3',
      '2026-01-01/b=22@1',
      '2026-01-01/f=6@7',
      '2026-01-02/c=3@1',
      '2026-01-02/g=7@5',
      '2026-01-03/e=5@1',
    ];

    const cases: { name: string; rebuilt: Row[][]; final: string[]; report: Partial<SwapReport> }[] = [
      {
        name: 'one partition (REPLACE PARTITION)',
        rebuilt: [
          // a: live newer (3 > 2), kept; b: equal (1 = 1), rebuilt; f: rebuilt newer (9 > 7); h: new, twice at one version (the later wins)
          [r('1', 'a', 100, 2), r('1', 'b', 200, 1), r('1', 'f', 600, 9), r('1', 'h', 800, 1)],
          [r('1', 'h', 801, 1)],
        ],
        final: [
          '2026-01-01/a=11@3',
          '2026-01-01/b=200@1',
          '2026-01-01/f=600@9',
          '2026-01-01/h=801@1',
          '2026-01-02/c=3@1',
          '2026-01-02/g=7@5',
          '2026-01-03/e=5@1',
        ],
        report: { strategy: 'replace-partition', partitions: ['20260101'], rowsRebuilt: 5, rowsKept: 1, liveNewer: 1 },
      },
      {
        name: 'several partitions (RENAME)',
        rebuilt: [
          // b: equal, rebuilt; c: live newer (1 > 0); g: rebuilt newer (6 > 5); 2026-01-03 is not rebuilt
          [r('1', 'b', 200, 1), r('2', 'c', 300, 0), r('2', 'g', 700, 6)],
        ],
        final: [
          '2026-01-01/a=11@3',
          '2026-01-01/b=200@1',
          '2026-01-01/f=6@7',
          '2026-01-02/c=3@1',
          '2026-01-02/g=700@6',
          '2026-01-03/e=5@1',
        ],
        report: {
          strategy: 'rename-tables',
          partitions: ['20260101', '20260102'],
          rowsRebuilt: 3,
          rowsKept: 4,
          liveNewer: 1,
        },
      },
    ];

    const show = (rows: Row[]) =>
      rows.map((x) => `${String(x.d)}/${String(x.k)}=${String(x.v)}@${String(x.ver)}`).sort();

    it.each(cases.map((c, i) => [c.name, i] as const))('%s', async (_name, i) => {
      const c = cases[i]!;
      const table = `agree${i}`;
      const tag = `t${i}`;
      const rebuilt = `${table}__rebuild_${tag}`;
      const declared = { [table]: columns, [rebuilt]: columns };

      // The real server.
      await ctx.clickhouse.command({
        query: `CREATE TABLE ${ctx.id}.${table} (d Date, k String, v UInt64, ver UInt64) ENGINE = ReplacingMergeTree(ver) PARTITION BY toYYYYMMDD(d) ORDER BY (d, k)`,
      });
      const realSink = new ClickHouseSink({
        settings: ctx.config.clickhouse,
        database: ctx.id,
        columns: declared,
        features,
      });
      const realTables: ShadowTables = new SqlShadowTables(ctx.clickhouse, ctx.id);
      const readReal = async (t: string) =>
        await (
          await ctx.clickhouse.query({ query: `SELECT d, k, v, ver FROM ${ctx.id}.${t} FINAL`, format: 'JSONEachRow' })
        ).json<Row>();

      // The model, fed the same way: the sink with the model as its client.
      const model = new ClickHouseModel();
      model.createTable(ctx.id, table, { key: ['d', 'k'], version: 'ver', partition });
      const modelSink = new ClickHouseSink({
        settings: ctx.config.clickhouse,
        database: ctx.id,
        columns: declared,
        features,
        client: model.asClient(),
      });
      const modelTables = model.shadowTables(ctx.id);

      const run = async (
        sink: ClickHouseSink,
        tables: ShadowTables,
        hold: SinkHold,
        read: (t: string) => Promise<Row[]>,
      ) => {
        for (const rows of liveInserts) await sink.write(table, rows, []);
        const before = show(await read(table));
        const shadows = await createShadows(tables, [table], tag);
        for (const rows of c.rebuilt) await sink.write(rebuilt, rows, []);
        const { swaps } = await swapShadows(tables, hold, shadows, tag, { holdTimeoutMs: 5000 });
        const after = show(await read(table));
        await dropShadows(tables, shadows, tag);
        await sink.close();
        const { strategy, partitions, rowsRebuilt, rowsKept, liveNewer } = swaps[0]!;
        return { before, after, report: { strategy, partitions, rowsRebuilt, rowsKept, liveNewer } };
      };
      const real = await run(
        realSink,
        realTables,
        new SinkHold(new RedisHoldBackend(ctx.redis, ctx.config.redis.keyPrefix, table), table),
        readReal,
      );
      const modelled = await run(modelSink, modelTables, new SinkHold(new MemoryHoldBackend(), table), async (t) =>
        model.final(ctx.id, t),
      );

      expect(real.before).toEqual(liveFinal);
      expect(real.after).toEqual(c.final);
      expect(real.report).toEqual(c.report);
      expect(modelled).toEqual(real);
      expect(model.tableNames(ctx.id)).toEqual([table]);
    });
  });

  describe('the ClickHouse model alone (what the local 18.16 cannot show)', () => {
    const spec = { key: ['k'], version: 'ver', partition: () => 'all' };
    const tokenFeatures = (f: ServerFeatures): ServerFeatures => ({ ...f, insertDeduplicationToken: true });

    it("drops an insert whose dedup token is among the table's last N, as ClickHouse 22.2+ does", async () => {
      const model = new ClickHouseModel({ dedupWindow: 2 });
      model.createTable('db', 't', spec);
      const sink = new ClickHouseSink({
        settings: ctx.config.clickhouse,
        database: 'db',
        columns: { t: { k: 'String', ver: 'UInt64' } },
        features: tokenFeatures(features),
        client: model.asClient(),
      });
      const batch = (k: string) => [{ k, ver: 1 }];
      const at = (offset: number) => [
        { topic: 'x', partition: 0, fromOffset: String(offset), toOffset: String(offset) },
      ];
      await sink.write('t', batch('a'), at(1));
      await sink.write('t', batch('a'), at(1)); // a retry: same token, dropped
      await sink.write('t', batch('b'), at(2));
      await sink.write('t', batch('c'), at(3)); // the window (2) now holds b, c
      await sink.write('t', batch('a'), at(1)); // a's token was forgotten: lands again
      expect(model.rows('db', 't').map((x) => x.k)).toEqual(['a', 'b', 'c', 'a']);
      await sink.close();
    });

    it('fault hooks: a failing insert is retried by the sink; a slow one whose lease is lost never lands', async () => {
      const clock = new ManualClock();
      const model = new ClickHouseModel();
      model.createTable('db', 't', spec);
      let calls = 0;
      model.beforeInsert = async () => {
        calls += 1;
        if (calls === 1) throw new Error('Code: 241. DB::Exception: Memory limit exceeded');
        if (calls === 3) await clock.sleep(60 * 60_000); // stuck until cut
      };
      const sink = new ClickHouseSink({
        settings: ctx.config.clickhouse,
        database: 'db',
        columns: { t: { k: 'String', ver: 'UInt64' } },
        features,
        client: model.asClient(),
        retry: { retries: 3, baseMs: 1, capMs: 1 },
        attemptTimeoutMs: 10 * 60_000,
      });
      await sink.write('t', [{ k: 'retried', ver: 1 }], []);
      expect(model.rows('db', 't').map((x) => x.k)).toEqual(['retried']);
      expect(calls).toBe(2);

      const backend = new MemoryHoldBackend(clock);
      const hold = new SinkHold(backend, 's', { clock, leaseTtlMs: 120_000 });
      const writing = hold
        .write(() => sink.write('t', [{ k: 'stuck', ver: 1 }], []))
        .catch((err: { code: string }) => err.code);
      await clock.advance(20_000);
      backend.forget(); // the lease is gone: the next renewal (at 30 s) finds out
      await clock.advance(10_000);
      expect(await writing).toBe('SINK_LEASE_LOST');
      await clock.advance(60 * 60_000); // the stuck insert "completes" on the model's side
      expect(model.rows('db', 't').map((x) => x.k)).toEqual(['retried']);
      await sink.close();
    });
  });
});
