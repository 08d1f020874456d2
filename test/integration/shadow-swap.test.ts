import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { RedisHoldBackend, SinkHeldError, SinkHold, type SinkHoldOptions } from '../../src/sink/hold';
import { ClickHouseSink, detectServerFeatures, type ServerFeatures } from '../../src/sink/clickhouse';
import { createShadowTables, dropShadowTables, SqlShadowTables } from '../../src/replay/shadow';
import { swapShadows, type ShadowTable, type ShadowTables } from '../../src/replay/swap';
import { createTestContext, type TestContext } from '../helpers/context';
import { sleep } from '../../src/clock';

/**
 * The two pieces of a shadow replay on the real services: the Redis hold
 * that keeps live inserts out of the swap, and the ClickHouse swap itself
 * (REPLACE PARTITION for one partition, RENAME of the whole table for
 * several, since 18.16 has no EXCHANGE TABLES).
 */
describe('shadow replay building blocks', () => {
  let ctx: TestContext;
  let features: ServerFeatures;
  beforeAll(async () => {
    ctx = await createTestContext('swap');
    features = await detectServerFeatures(ctx.clickhouse);
  });
  afterAll(async () => ctx.cleanup());

  const holdOf = (stream: string, options: SinkHoldOptions = {}) =>
    new SinkHold(new RedisHoldBackend(ctx.redis, ctx.config.redis.keyPrefix, stream), stream, options);

  describe('SinkHold', () => {
    it('waits for a running write, refuses new ones while held, and lets them through after release', async () => {
      const hold = holdOf('held-stream');
      const events: string[] = [];
      let finishWrite!: () => void;
      const writing = hold.write(async () => {
        events.push('write started');
        await new Promise<void>((r) => (finishWrite = r));
        events.push('write finished');
      });
      await sleep(50);
      const holding = hold.hold(5000).then((held) => {
        events.push('held');
        return held;
      });
      await sleep(300);
      expect(events).toEqual(['write started']); // the hold waits for the write in flight
      finishWrite();
      await writing;
      const held = await holding;
      expect(events).toEqual(['write started', 'write finished', 'held']);

      let ran = false;
      await expect(hold.write(async () => (ran = true))).rejects.toBeInstanceOf(SinkHeldError);
      expect(ran).toBe(false);
      await expect(holdOf('held-stream').hold(200)).rejects.toThrow(/another replay holds/);

      await held.release();
      await hold.write(async () => (ran = true));
      expect(ran).toBe(true);
    });

    it("gives up after its timeout when a write never ends, releasing the hold; a dead writer's lease expires", async () => {
      const backend = new RedisHoldBackend(ctx.redis, ctx.config.redis.keyPrefix, 'stuck-stream');
      const hold = new SinkHold(backend, 'stuck-stream');
      await backend.enterLease('a-writer-that-died', 800); // mid-insert: its lease is never renewed nor dropped
      await expect(hold.hold(300)).rejects.toThrow(/did not finish within 300 ms/);
      await hold.write(async () => undefined); // released: writes go on
      await sleep(900);
      const held = await hold.hold(1000); // the dead writer's lease expired
      await held.release();
    });
  });

  describe('SinkHold, past its TTLs', () => {
    const W = 'lease_target';
    beforeEach(async () => {
      await ctx.clickhouse.command({ query: `DROP TABLE IF EXISTS ${ctx.id}.${W}` });
      await ctx.clickhouse.command({
        query: `CREATE TABLE ${ctx.id}.${W} (k String, v UInt64) ENGINE = MergeTree ORDER BY k`,
      });
    });
    const landed = async () =>
      (
        await (
          await ctx.clickhouse.query({ query: `SELECT k FROM ${ctx.id}.${W} ORDER BY k`, format: 'JSONEachRow' })
        ).json<{ k: string }>()
      ).map((r) => r.k);
    const proxiedSink = (port: number) =>
      new ClickHouseSink({
        settings: { ...ctx.config.clickhouse, url: `http://127.0.0.1:${port}` },
        database: ctx.id,
        columns: { [W]: { k: 'String', v: 'UInt64' } },
        features,
        retry: { retries: 0 },
      });

    it('keeps the hold while a swap runs longer than the hold TTL, and confirms it only while it stands', async () => {
      const hold = holdOf('long-swap', { holdTtlMs: 600 });
      const held = await hold.hold(5000);
      await sleep(1500); // a long copy: 2.5 hold TTLs
      let ran = false;
      await expect(hold.write(async () => (ran = true))).rejects.toBeInstanceOf(SinkHeldError);
      expect(ran).toBe(false);
      await held.confirm();
      await ctx.redis.del(`${ctx.config.redis.keyPrefix}hold:long-swap`); // lost (e.g. a Redis failover without it)
      await expect(held.confirm()).rejects.toMatchObject({ code: 'SINK_HOLD_LOST' });
      expect(await ctx.redis.exists(`${ctx.config.redis.keyPrefix}hold:long-swap`)).toBe(0); // never re-created
      await held.release();
    });

    it('a live insert slower than its lease TTL keeps its lease: a holder waits for it', async () => {
      const proxy = await startRequestDelayProxy(ctx.config.clickhouse.url, 2000);
      try {
        const sink = proxiedSink(proxy.port);
        const hold = holdOf('slow-insert', { leaseTtlMs: 800 });
        const writing = hold.write(() => sink.write(W, [{ k: 'slow', v: 1 }], []));
        await sleep(1000); // past the lease TTL, the insert still in flight
        const held = await hold.hold(5000);
        // The hold was granted only once the insert had landed. (Which of the two callers hears first is
        // not the point: the writer's lease release and the holder's poll answer race on a loaded machine.)
        expect(await landed()).toEqual(['slow']);
        await writing;
        await held.release();
        await sink.close();
      } finally {
        await proxy.close();
      }
    });

    it('a live insert whose lease is lost is aborted, retriably, and its rows never land', async () => {
      const proxy = await startRequestDelayProxy(ctx.config.clickhouse.url, 2000);
      try {
        const sink = proxiedSink(proxy.port);
        const hold = holdOf('lost-lease', { leaseTtlMs: 800 });
        const writing = hold.write(() => sink.write(W, [{ k: 'lost', v: 1 }], []));
        const outcome = writing.then(
          () => 'landed',
          (err: { retriable?: boolean; code?: string }) => `${err.code}:${err.retriable}`,
        );
        await sleep(300);
        await ctx.redis.del(`${ctx.config.redis.keyPrefix}hold:lost-lease:writers`); // the lease is gone (e.g. a Redis failover lost it)
        expect(await outcome).toBe('SINK_LEASE_LOST:true');
        await sleep(2500); // the delayed request would have reached ClickHouse by now
        expect(await landed()).toEqual([]);
        expect(sink.stats().breaker).toBe('closed'); // not taken for a ClickHouse failure
        await sink.close();
      } finally {
        await proxy.close();
      }
    });
  });

  describe('swapShadows on ClickHouse', () => {
    const T = 'swap_target';
    const q = (query: string) => ctx.clickhouse.command({ query });
    const content = async (table: string) =>
      (
        await (
          await ctx.clickhouse.query({
            query: `SELECT d, k, v FROM ${ctx.id}.${table} FINAL ORDER BY d, k`,
            format: 'JSONEachRow',
          })
        ).json<{ d: string; k: string; v: string }>()
      ).map((r) => `${r.d}/${r.k}=${r.v}`);
    const swap = (tables: ShadowTables, shadow: ShadowTable, tag: string, stream = 'swap-stream') =>
      swapShadows(tables, holdOf(stream), [shadow], tag, { holdTimeoutMs: 5000 });
    let sql: SqlShadowTables;

    beforeEach(async () => {
      sql = new SqlShadowTables(ctx.clickhouse, ctx.id);
      await q(`DROP TABLE IF EXISTS ${ctx.id}.${T}`);
      await q(
        `CREATE TABLE ${ctx.id}.${T} (d Date, k String, v UInt64, ver UInt64) ENGINE = ReplacingMergeTree(ver) PARTITION BY toYYYYMMDD(d) ORDER BY (d, k)`,
      );
      await q(
        `INSERT INTO ${ctx.id}.${T} VALUES ('2026-01-01','a',1,1),('2026-01-01','b',2,1),('2026-01-02','c',3,1),('2026-01-03','e',5,1)`,
      );
    });

    it('one partition: REPLACE PARTITION keeps the live rows the rebuild did not produce and leaves other partitions alone', async () => {
      const [shadow] = await createShadowTables(ctx.clickhouse, ctx.id, [T], 'one');
      await q(`INSERT INTO ${ctx.id}.${shadow!.rebuilt} VALUES ('2026-01-01','a',10,2)`);
      const { swaps } = await swap(sql, shadow!, 'one');
      expect(swaps[0]).toMatchObject({
        strategy: 'replace-partition',
        partitions: ['20260101'],
        rowsRebuilt: 1,
        rowsKept: 1,
        liveNewer: 0,
      });
      expect(await content(T)).toEqual(['2026-01-01/a=10', '2026-01-01/b=2', '2026-01-02/c=3', '2026-01-03/e=5']);
      await dropShadowTables(ctx.clickhouse, ctx.id, [shadow!], 'one');
    });

    it('one partition: a live row newer than its rebuilt row is kept; on equal versions the rebuilt row wins', async () => {
      await q(`INSERT INTO ${ctx.id}.${T} VALUES ('2026-01-01','f',6,7)`);
      const [shadow] = await createShadowTables(ctx.clickhouse, ctx.id, [T], 'newer');
      // a: rebuilt newer (2 > 1); b: equal (1 = 1), rebuilt wins; f: live newer (7 > 3).
      await q(
        `INSERT INTO ${ctx.id}.${shadow!.rebuilt} VALUES ('2026-01-01','a',10,2),('2026-01-01','b',20,1),('2026-01-01','f',60,3)`,
      );
      const { swaps } = await swap(sql, shadow!, 'newer');
      expect(swaps[0]).toMatchObject({ strategy: 'replace-partition', rowsRebuilt: 3, rowsKept: 1, liveNewer: 1 });
      expect(await content(T)).toEqual([
        '2026-01-01/a=10',
        '2026-01-01/b=20',
        '2026-01-01/f=6',
        '2026-01-02/c=3',
        '2026-01-03/e=5',
      ]);
      await dropShadowTables(ctx.clickhouse, ctx.id, [shadow!], 'newer');
    });

    it('several partitions: a live row newer than its rebuilt row is kept', async () => {
      await q(`INSERT INTO ${ctx.id}.${T} VALUES ('2026-01-02','c',33,9)`);
      const [shadow] = await createShadowTables(ctx.clickhouse, ctx.id, [T], 'newer2');
      await q(`INSERT INTO ${ctx.id}.${shadow!.rebuilt} VALUES ('2026-01-01','b',20,2),('2026-01-02','c',30,2)`);
      const { swaps } = await swap(sql, shadow!, 'newer2');
      expect(swaps[0]).toMatchObject({ strategy: 'rename-tables', rowsRebuilt: 2, rowsKept: 3, liveNewer: 1 });
      expect(await content(T)).toEqual(['2026-01-01/a=1', '2026-01-01/b=20', '2026-01-02/c=33', '2026-01-03/e=5']);
      await dropShadowTables(ctx.clickhouse, ctx.id, [shadow!], 'newer2');
    });

    it('several partitions: the whole table is staged and renamed in, with every untouched row kept', async () => {
      const [shadow] = await createShadowTables(ctx.clickhouse, ctx.id, [T], 'many');
      await q(
        `INSERT INTO ${ctx.id}.${shadow!.rebuilt} VALUES ('2026-01-01','b',20,2),('2026-01-02','c',30,2),('2026-01-02','d',40,2)`,
      );
      await q(`CREATE VIEW ${ctx.id}.swap_view AS SELECT sum(v) AS total FROM ${ctx.id}.${T} FINAL`);
      const { swaps } = await swap(sql, shadow!, 'many');
      expect(swaps[0]).toMatchObject({
        strategy: 'rename-tables',
        partitions: ['20260101', '20260102'],
        rowsRebuilt: 3,
        rowsKept: 2,
      });
      expect(await content(T)).toEqual([
        '2026-01-01/a=1',
        '2026-01-01/b=20',
        '2026-01-02/c=30',
        '2026-01-02/d=40',
        '2026-01-03/e=5',
      ]);
      // Views resolve the table by name: they read the swapped-in table.
      const [view] = await (
        await ctx.clickhouse.query({ query: `SELECT total FROM ${ctx.id}.swap_view`, format: 'JSONEachRow' })
      ).json<{ total: string }>();
      expect(Number(view!.total)).toBe(1 + 20 + 30 + 40 + 5);
      await dropShadowTables(ctx.clickhouse, ctx.id, [shadow!], 'many');
      await q(`DROP TABLE ${ctx.id}.swap_view`);
      const left = await (
        await ctx.clickhouse.query({
          query: `SELECT name FROM system.tables WHERE database = '${ctx.id}' AND name LIKE 'swap%' ORDER BY name`,
          format: 'JSONEachRow',
        })
      ).json<{ name: string }>();
      expect(left.map((r) => r.name)).toEqual(['swap_target']);
    });

    it('a copy longer than the hold TTL keeps live writes out until the swap is done; every live row is there after it', async () => {
      const [shadow] = await createShadowTables(ctx.clickhouse, ctx.id, [T], 'slow');
      await q(`INSERT INTO ${ctx.id}.${shadow!.rebuilt} VALUES ('2026-01-01','a',10,2)`);
      const slowCopy: ShadowTables = Object.assign(Object.create(sql) as SqlShadowTables, {
        stageMerged: async (...args: Parameters<ShadowTables['stageMerged']>) => {
          await sleep(2000); // 3 hold TTLs
          return sql.stageMerged(...args);
        },
      });
      const hold = holdOf('slow-copy', { holdTtlMs: 600 });
      const swapping = swapShadows(slowCopy, hold, [shadow!], 'slow', { holdTimeoutMs: 5000 }).then((r) => ({
        end: Date.now(),
        heldMs: r.heldMs,
      }));
      // A live writer, as the runtime: inserts into the swapped partition under a lease, retries while held.
      const accepted: { key: string; began: number }[] = [];
      let writing = true;
      const writer = (async () => {
        for (let i = 0; writing; i++) {
          const key = `live${String(i).padStart(3, '0')}`;
          for (;;) {
            const began = Date.now();
            try {
              await hold.write(() => q(`INSERT INTO ${ctx.id}.${T} VALUES ('2026-01-01','${key}',${i},1)`));
              accepted.push({ key, began });
              break;
            } catch (err) {
              if (!(err instanceof SinkHeldError)) throw err;
              await sleep(50);
            }
          }
          await sleep(50);
        }
      })();
      const { end, heldMs } = await swapping;
      await sleep(500);
      writing = false;
      await writer;
      expect(heldMs).toBeGreaterThan(2000);
      // No write begun while the hold stood got in (100 ms allowed for the release to reach this side).
      expect(accepted.filter((a) => a.began >= end - heldMs && a.began < end - 100)).toEqual([]);
      expect(accepted.filter((a) => a.began >= end).length).toBeGreaterThan(0); // the writer went on after it
      const rows = await content(T);
      for (const { key } of accepted) expect(rows).toContain(`2026-01-01/${key}=${Number(key.slice(4))}`);
      expect(rows).toContain('2026-01-01/a=10');
      await dropShadowTables(ctx.clickhouse, ctx.id, [shadow!], 'slow');
    });

    it('stops without touching the live table when the hold is lost before its swap statement', async () => {
      const [shadow] = await createShadowTables(ctx.clickhouse, ctx.id, [T], 'lost');
      await q(`INSERT INTO ${ctx.id}.${shadow!.rebuilt} VALUES ('2026-01-01','a',10,2)`);
      const losing: ShadowTables = Object.assign(Object.create(sql) as SqlShadowTables, {
        stageMerged: async (...args: Parameters<ShadowTables['stageMerged']>) => {
          await ctx.redis.del(`${ctx.config.redis.keyPrefix}hold:lost-hold`);
          return sql.stageMerged(...args);
        },
      });
      const before = await content(T);
      await expect(
        swapShadows(losing, holdOf('lost-hold'), [shadow!], 'lost', { holdTimeoutMs: 5000 }),
      ).rejects.toMatchObject({
        code: 'SHADOW_SWAP_ABORTED',
        message: expect.stringMatching(/hold .* was lost.*left unchanged: swap_target/),
      });
      expect(await content(T)).toEqual(before);
      await dropShadowTables(ctx.clickhouse, ctx.id, [shadow!], 'lost');
    });

    it('stops without dropping the row when an insert lands in the live partition after its copy began', async () => {
      const [shadow] = await createShadowTables(ctx.clickhouse, ctx.id, [T], 'slip');
      await q(`INSERT INTO ${ctx.id}.${shadow!.rebuilt} VALUES ('2026-01-01','a',10,2)`);
      const leaky: ShadowTables = Object.assign(Object.create(sql) as SqlShadowTables, {
        stageMerged: async (...args: Parameters<ShadowTables['stageMerged']>) => {
          const staged = await sql.stageMerged(...args);
          await q(`INSERT INTO ${ctx.id}.${T} VALUES ('2026-01-01','slipped',9,1)`); // a write that took no lease
          return staged;
        },
      });
      await expect(swapShadows(leaky, holdOf('slip'), [shadow!], 'slip', { holdTimeoutMs: 5000 })).rejects.toThrow(
        /inserted into swap_target after its staging copy began/,
      );
      expect(await content(T)).toEqual([
        '2026-01-01/a=1',
        '2026-01-01/b=2',
        '2026-01-01/slipped=9',
        '2026-01-02/c=3',
        '2026-01-03/e=5',
      ]);
      await dropShadowTables(ctx.clickhouse, ctx.id, [shadow!], 'slip');
    });
  });
});

/**
 * A TCP proxy that holds back what the client sends (an insert's request) by
 * `delayMs`, so the server has not received the insert while it waits; when
 * the client gives up (closes), the held bytes are dropped and the upstream
 * connection is cut, as a network would do to a request still in flight.
 */
async function startRequestDelayProxy(url: string, delayMs: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const upstream = new URL(url);
  const server: Server = createServer((client) => {
    const target = createConnection({ host: upstream.hostname, port: Number(upstream.port || 8123) });
    for (const s of [client, target]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.on('data', (chunk: Buffer) => {
      setTimeout(() => {
        if (!client.destroyed && !target.destroyed) target.write(chunk);
      }, delayMs);
    });
    target.pipe(client);
    client.on('close', () => target.destroy());
    target.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
