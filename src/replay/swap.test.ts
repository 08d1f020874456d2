import { ClickHouseModel } from '../../test/sim/models/clickhouse';
import { SinkHeldError, SinkHold } from '../sink/hold';
import { MemoryHoldBackend } from '../sink/hold-memory';
import { ManualClock } from '../sink/manual-clock';
import type { Row } from '../sink/clickhouse/token';
import { createShadows, dropShadows, swapShadows, type ShadowTables } from './swap';

/**
 * The swap's control flow on simulated time, over the in-memory ClickHouse
 * model and hold (the model's agreement with ClickHouse itself is checked
 * in test/integration/model-agreement.test.ts): what happens when the hold
 * is lost or a row slips in, at each step.
 */
const DB = 'db';
const day = (d: string) => (r: Row) => String(r.d ?? d).replace(/-/g, '');

function setup() {
  const clock = new ManualClock(0);
  const model = new ClickHouseModel();
  const backend = new MemoryHoldBackend(clock);
  const hold = new SinkHold(backend, 's', { clock, holdTtlMs: 60_000 });
  for (const t of ['a', 'b']) model.createTable(DB, t, { key: ['d', 'k'], version: 'ver', partition: day('') });
  const insert = (table: string, values: Row[]) =>
    model.insert({ table: `${DB}.${table}`, values, format: 'JSONEachRow' });
  const content = (table: string) => model.final(DB, table).map((r) => `${String(r.d)}/${String(r.k)}=${String(r.v)}`);
  return { clock, model, backend, hold, insert, content, tables: model.shadowTables(DB) };
}

/** ShadowTables with hooks around one operation. */
function hooked(
  tables: ShadowTables,
  op: keyof ShadowTables,
  before: (args: unknown[]) => Promise<void>,
  after: () => void = () => undefined,
): ShadowTables {
  const out = { ...tables };
  (out as Record<string, unknown>)[op] = async (...args: unknown[]) => {
    await before(args);
    const result = await (tables[op] as (...a: unknown[]) => Promise<unknown>)(...args);
    after();
    return result;
  };
  return out;
}

describe('swapShadows', () => {
  it('swaps every table and reports per table; a live row newer than its rebuilt row stays', async () => {
    const { hold, insert, content, tables } = setup();
    await insert('a', [
      { d: '2026-01-01', k: 'x', v: 1, ver: 1 },
      { d: '2026-01-01', k: 'y', v: 2, ver: 9 },
    ]);
    await insert('b', [{ d: '2026-01-01', k: 'x', v: 1, ver: 1 }]);
    const shadows = await createShadows(tables, ['a', 'b'], 't1');
    await insert('a__rebuild_t1', [
      { d: '2026-01-01', k: 'x', v: 10, ver: 2 },
      { d: '2026-01-01', k: 'y', v: 20, ver: 2 },
    ]);
    await insert('b__rebuild_t1', [
      { d: '2026-01-01', k: 'x', v: 10, ver: 1 },
      { d: '2026-01-02', k: 'z', v: 30, ver: 1 },
    ]);
    const result = await swapShadows(tables, hold, shadows, 't1', { holdTimeoutMs: 1000 });
    expect(
      result.swaps.map(({ table, strategy, partitions, rowsRebuilt, rowsKept, liveNewer }) => ({
        table,
        strategy,
        partitions,
        rowsRebuilt,
        rowsKept,
        liveNewer,
      })),
    ).toEqual([
      {
        table: 'a',
        strategy: 'replace-partition',
        partitions: ['20260101'],
        rowsRebuilt: 2,
        rowsKept: 1,
        liveNewer: 1,
      },
      {
        table: 'b',
        strategy: 'rename-tables',
        partitions: ['20260101', '20260102'],
        rowsRebuilt: 2,
        rowsKept: 0,
        liveNewer: 0,
      },
    ]);
    expect(content('a')).toEqual(['2026-01-01/x=10', '2026-01-01/y=2']);
    expect(content('b')).toEqual(['2026-01-01/x=10', '2026-01-02/z=30']);
    await dropShadows(tables, shadows, 't1');
  });

  it('a hold lost while staging: nothing is swapped, the error says so', async () => {
    const { clock, backend, hold, insert, content, tables } = setup();
    await insert('a', [{ d: '2026-01-01', k: 'x', v: 1, ver: 1 }]);
    const shadows = await createShadows(tables, ['a', 'b'], 't2');
    await insert('a__rebuild_t2', [{ d: '2026-01-01', k: 'x', v: 10, ver: 2 }]);
    await insert('b__rebuild_t2', [{ d: '2026-01-01', k: 'x', v: 10, ver: 2 }]);
    // A copy of table b long enough for renewals to fail past the hold's margin (Redis away, here: its state gone).
    const slow = hooked(tables, 'stageMerged', async (args) => {
      if (args[1] === 'b') {
        backend.forget();
        await clock.sleep(20_000);
      }
    });
    const swapping = swapShadows(slow, hold, shadows, 't2', { holdTimeoutMs: 1000, clock }).catch(
      (err: Error & { code: string }) => err,
    );
    await clock.advance(30_000);
    const err = (await swapping) as Error & { code: string };
    expect(err.code).toBe('SHADOW_SWAP_ABORTED');
    expect(err.message).toMatch(/SINK_HOLD_LOST|hold .* was lost/);
    expect(err.message).toMatch(/left unchanged: a, b/);
    expect(content('a')).toEqual(['2026-01-01/x=1']);
  });

  it("a hold lost between two tables' swaps: the first stays swapped, the second is untouched, the error names both", async () => {
    const { backend, hold, insert, content, tables } = setup();
    await insert('a', [{ d: '2026-01-01', k: 'x', v: 1, ver: 1 }]);
    await insert('b', [{ d: '2026-01-01', k: 'x', v: 1, ver: 1 }]);
    const shadows = await createShadows(tables, ['a', 'b'], 't3');
    await insert('a__rebuild_t3', [{ d: '2026-01-01', k: 'x', v: 10, ver: 2 }]);
    await insert('b__rebuild_t3', [{ d: '2026-01-01', k: 'x', v: 10, ver: 2 }]);
    let replaced = 0;
    const lossy = hooked(
      tables,
      'replacePartition',
      async () => void (replaced += 1),
      () => backend.forget(), // right after the first swap
    );
    const err = (await swapShadows(lossy, hold, shadows, 't3', { holdTimeoutMs: 1000 }).catch(
      (e: unknown) => e,
    )) as Error & { code: string };
    expect(err.code).toBe('SHADOW_SWAP_ABORTED');
    expect(err.message).toMatch(/swapped in: a; left unchanged: b/);
    expect(content('a')).toEqual(['2026-01-01/x=10']);
    expect(content('b')).toEqual(['2026-01-01/x=1']);
    expect(replaced).toBe(1);
  });

  it('a live insert that slipped in after the copy began (no lease) stops the swap of that table, and the row is kept', async () => {
    const { model, hold, insert, content, tables } = setup();
    await insert('a', [{ d: '2026-01-01', k: 'x', v: 1, ver: 1 }]);
    const shadows = await createShadows(tables, ['a'], 't4');
    await insert('a__rebuild_t4', [{ d: '2026-01-01', k: 'x', v: 10, ver: 2 }]);
    const leaky = hooked(tables, 'stageMerged', async () => {
      await model.insert({
        table: `${DB}.a`,
        values: [{ d: '2026-01-01', k: 'late', v: 7, ver: 1 }],
        format: 'JSONEachRow',
      });
    });
    const err = (await swapShadows(leaky, hold, shadows, 't4', { holdTimeoutMs: 1000 }).catch(
      (e: unknown) => e,
    )) as Error;
    expect(err.message).toMatch(/inserted into a after its staging copy began/);
    expect(content('a')).toEqual(['2026-01-01/late=7', '2026-01-01/x=1']);
  });

  it('a merge of the live table during the copy is not taken for an insert', async () => {
    const { model, hold, insert, content, tables } = setup();
    await insert('a', [{ d: '2026-01-01', k: 'x', v: 1, ver: 1 }]);
    await insert('a', [{ d: '2026-01-01', k: 'x', v: 2, ver: 3 }]);
    const shadows = await createShadows(tables, ['a'], 't5');
    await insert('a__rebuild_t5', [{ d: '2026-01-01', k: 'y', v: 10, ver: 2 }]);
    const merging = hooked(tables, 'stageMerged', async () => model.merge(DB, 'a'));
    await swapShadows(merging, hold, shadows, 't5', { holdTimeoutMs: 1000 });
    expect(content('a')).toEqual(['2026-01-01/x=2', '2026-01-01/y=10']);
  });

  it('live writes wait for the whole swap, however long its copy, and go on after it', async () => {
    const { clock, hold, insert, content, tables } = setup();
    await insert('a', [{ d: '2026-01-01', k: 'x', v: 1, ver: 1 }]);
    const shadows = await createShadows(tables, ['a'], 't6');
    await insert('a__rebuild_t6', [{ d: '2026-01-01', k: 'x', v: 10, ver: 2 }]);
    const slow = hooked(tables, 'stageMerged', () => clock.sleep(30 * 60_000)); // half an hour, 30 hold TTLs
    const swapping = swapShadows(slow, hold, shadows, 't6', { holdTimeoutMs: 1000, clock });
    await clock.advance(1000); // the hold is set
    const refusals: number[] = [];
    const writer = (async () => {
      for (;;) {
        try {
          await hold.write(() => insert('a', [{ d: '2026-01-01', k: 'live', v: 5, ver: 5 }]));
          return clock.now();
        } catch (err) {
          if (!(err instanceof SinkHeldError)) throw err;
          refusals.push(clock.now());
          await clock.sleep(60_000);
        }
      }
    })();
    await clock.advance(31 * 60_000);
    const { heldMs } = await swapping; // the hold was set at 0 and released when the copy and swap ended
    const wroteAt = await writer;
    expect(heldMs).toBe(30 * 60_000);
    expect(refusals).toEqual(Array.from({ length: 30 }, (_, i) => 1000 + i * 60_000));
    expect(wroteAt).toBeGreaterThanOrEqual(heldMs);
    expect(content('a')).toEqual(['2026-01-01/live=5', '2026-01-01/x=10']);
  });
});
