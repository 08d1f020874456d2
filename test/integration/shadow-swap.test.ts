import { SinkHeldError, SinkHold } from '../../src/sink/hold';
import { createShadowTables, dropShadowTables, swapIn } from '../../src/replay/shadow';
import { createTestContext, type TestContext } from '../helpers/context';
import { sleep } from '../helpers/processes';

/**
 * The two pieces of a shadow replay on the real services: the Redis hold
 * that keeps live inserts out of the swap, and the ClickHouse swap itself
 * (REPLACE PARTITION for one partition, RENAME of the whole table for
 * several, since 18.16 has no EXCHANGE TABLES).
 */
describe('shadow replay building blocks', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext('swap');
  });
  afterAll(async () => ctx.cleanup());

  describe('SinkHold', () => {
    it('waits for a running write, refuses new ones while held, and lets them through after release', async () => {
      const hold = new SinkHold(ctx.redis, ctx.config.redis.keyPrefix, 'held-stream');
      const events: string[] = [];
      let finishWrite!: () => void;
      const writing = hold.write(async () => {
        events.push('write started');
        await new Promise<void>((r) => (finishWrite = r));
        events.push('write finished');
      });
      await sleep(50);
      const holding = hold.hold(5000, 60_000).then((holder) => {
        events.push('held');
        return holder;
      });
      await sleep(300);
      expect(events).toEqual(['write started']); // the hold waits for the write in flight
      finishWrite();
      await writing;
      const holder = await holding;
      expect(events).toEqual(['write started', 'write finished', 'held']);

      let ran = false;
      await expect(hold.write(async () => (ran = true))).rejects.toBeInstanceOf(SinkHeldError);
      expect(ran).toBe(false);
      await expect(new SinkHold(ctx.redis, ctx.config.redis.keyPrefix, 'held-stream').hold(200, 1000)).rejects.toThrow(/another replay holds/);

      await hold.release(holder);
      await hold.write(async () => (ran = true));
      expect(ran).toBe(true);
    });

    it('gives up after its timeout when a write never ends, releasing the hold; a dead writer\'s lease expires', async () => {
      const hold = new SinkHold(ctx.redis, ctx.config.redis.keyPrefix, 'stuck-stream', { leaseTtlMs: 800 });
      void hold.write(() => new Promise(() => undefined)); // a writer that dies mid-insert: its lease is never dropped
      await sleep(50);
      await expect(hold.hold(300, 60_000)).rejects.toThrow(/did not finish within 300 ms/);
      await hold.write(async () => undefined); // released: writes go on
      await sleep(900);
      const holder = await hold.hold(1000, 60_000); // the stuck lease expired
      await hold.release(holder);
    });
  });

  describe('swapIn', () => {
    const T = 'swap_target';
    const q = (query: string) => ctx.clickhouse.command({ query });
    const content = async (table: string) =>
      (await (await ctx.clickhouse.query({ query: `SELECT d, k, v FROM ${ctx.id}.${table} FINAL ORDER BY d, k`, format: 'JSONEachRow' })).json<{ d: string; k: string; v: string }>())
        .map((r) => `${r.d}/${r.k}=${r.v}`);

    beforeEach(async () => {
      await q(`DROP TABLE IF EXISTS ${ctx.id}.${T}`);
      await q(`CREATE TABLE ${ctx.id}.${T} (d Date, k String, v UInt64, ver UInt64) ENGINE = ReplacingMergeTree(ver) PARTITION BY toYYYYMMDD(d) ORDER BY (d, k)`);
      await q(`INSERT INTO ${ctx.id}.${T} VALUES ('2026-01-01','a',1,1),('2026-01-01','b',2,1),('2026-01-02','c',3,1),('2026-01-03','e',5,1)`);
    });

    it('one partition: REPLACE PARTITION keeps the live rows the rebuild did not produce and leaves other partitions alone', async () => {
      const [shadow] = await createShadowTables(ctx.clickhouse, ctx.id, [T], 'one');
      await q(`INSERT INTO ${ctx.id}.${shadow!.rebuilt} VALUES ('2026-01-01','a',10,2)`);
      const report = await swapIn(ctx.clickhouse, ctx.id, shadow!, 'one', false);
      expect(report).toMatchObject({ strategy: 'replace-partition', partitions: ['20260101'], rowsRebuilt: 1, rowsKept: 1 });
      expect(await content(T)).toEqual(['2026-01-01/a=10', '2026-01-01/b=2', '2026-01-02/c=3', '2026-01-03/e=5']);
      await dropShadowTables(ctx.clickhouse, ctx.id, [shadow!], 'one');
    });

    it('several partitions: the whole table is staged and renamed in, with every untouched row kept', async () => {
      const [shadow] = await createShadowTables(ctx.clickhouse, ctx.id, [T], 'many');
      await q(`INSERT INTO ${ctx.id}.${shadow!.rebuilt} VALUES ('2026-01-01','b',20,2),('2026-01-02','c',30,2),('2026-01-02','d',40,2)`);
      await q(`CREATE VIEW ${ctx.id}.swap_view AS SELECT sum(v) AS total FROM ${ctx.id}.${T} FINAL`);
      const report = await swapIn(ctx.clickhouse, ctx.id, shadow!, 'many', false);
      expect(report).toMatchObject({ strategy: 'rename-tables', partitions: ['20260101', '20260102'], rowsRebuilt: 3, rowsKept: 2 });
      expect(await content(T)).toEqual(['2026-01-01/a=1', '2026-01-01/b=20', '2026-01-02/c=30', '2026-01-02/d=40', '2026-01-03/e=5']);
      // Views resolve the table by name: they read the swapped-in table.
      const [view] = await (await ctx.clickhouse.query({ query: `SELECT total FROM ${ctx.id}.swap_view`, format: 'JSONEachRow' })).json<{ total: string }>();
      expect(Number(view!.total)).toBe(1 + 20 + 30 + 40 + 5);
      await dropShadowTables(ctx.clickhouse, ctx.id, [shadow!], 'many');
      const left = await (await ctx.clickhouse.query({ query: `SELECT name FROM system.tables WHERE database = '${ctx.id}' ORDER BY name`, format: 'JSONEachRow' })).json<{ name: string }>();
      expect(left.map((r) => r.name)).toEqual(['swap_target', 'swap_view']);
    });
  });
});
