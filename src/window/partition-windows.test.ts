import { count, distinct, max, min, sum } from './aggregations';
import { hopping, session, tumbling, type WindowAssigner } from './assigners';
import { defineWindows, groupByFields } from './definition';
import { WindowDefinitionError, WindowStateError, EventTimeError } from './errors';
import { PartitionWindows } from './partition-windows';
import { mergePartials } from './testing';

interface Ev {
  k: string;
  v: number | null;
  u: string;
}

function definitionFor(assigner: WindowAssigner, allowedLatenessMs: number, earlyEmitIntervalMs?: number) {
  return defineWindows({
    assigner,
    groupBy: groupByFields((e: Ev) => ({ k: e.k })),
    aggregate: {
      n: count(),
      total: sum((e: Ev) => e.v),
      users: distinct((e: Ev) => e.u),
      lo: min((e: Ev) => e.v),
      hi: max((e: Ev) => e.v),
    },
    allowedLatenessMs,
    earlyEmitIntervalMs,
  });
}

const ev = (k: string, v: number | null, u: string): Ev => ({ k, v, u });
const key = (k: string) => JSON.stringify([k]);
const NONE = -Infinity;

describe('tumbling windows', () => {
  it('share one copy of a key and its fields across windows and partitions, unless the fields differ', () => {
    const definition = defineWindows({
      assigner: tumbling(10),
      groupBy: { key: (e: Ev) => e.k.toUpperCase(), fields: (e: Ev) => ({ k: e.k }) },
      aggregate: { n: count() },
      allowedLatenessMs: 0,
    });
    const one = new PartitionWindows(definition);
    const two = new PartitionWindows(definition);
    one.add(ev('a', 1, 'x'), 1, NONE);
    one.add(ev('a', 1, 'x'), 11, NONE);
    two.add(ev('a', 1, 'x'), 1, NONE);
    // Same key, other fields: the group keeps its own.
    two.add(ev('A', 1, 'x'), 11, NONE);
    const [a1, a2] = one.closeAll();
    const [b1, b2] = two.closeAll();
    expect(a1!.fields).toBe(a2!.fields);
    expect(b1!.fields).toBe(a1!.fields);
    expect(b2!.fields).toEqual({ k: 'A' });
    expect([a1, a2, b1, b2].map((w) => [w!.key, w!.aggregates.n])).toEqual([
      ['A', 1],
      ['A', 1],
      ['A', 1],
      ['A', 1],
    ]);
  });

  it('aggregate per window and key, close at end + lateness, and reject later events', () => {
    const w = new PartitionWindows(definitionFor(tumbling(10), 5));
    expect(w.add(ev('a', 1, 'x'), 1, NONE)).toEqual({ kind: 'added', missedWindows: 0 });
    w.add(ev('a', 2, 'y'), 4, 0);
    w.add(ev('b', null, 'x'), 7, 0);
    w.add(ev('a', 5, 'x'), 12, 5);
    expect(w.add(ev('a', 3, 'x'), 9, 8).kind).toBe('added'); // out of order but [0,10) is open until watermark 15
    expect(w.openWindowCount()).toBe(3);
    expect(w.closeUpTo(14)).toEqual([]);
    expect(w.closeUpTo(15)).toEqual([
      {
        windowStart: 0,
        windowEnd: 10,
        key: key('a'),
        fields: { k: 'a' },
        aggregates: { n: 3, total: 6, users: ['x', 'y'], lo: 1, hi: 3 },
        final: true,
      },
      {
        windowStart: 0,
        windowEnd: 10,
        key: key('b'),
        fields: { k: 'b' },
        aggregates: { n: 1, total: 0, users: ['x'], lo: null, hi: null },
        final: true,
      },
    ]);
    expect(w.add(ev('a', 100, 'q'), 3, 15)).toEqual({ kind: 'late', windowStart: 0, windowEnd: 10, watermark: 15 });
    w.add(ev('a', 1, 'z'), 19, 15);
    expect(w.closeAll()).toEqual([
      {
        windowStart: 10,
        windowEnd: 20,
        key: key('a'),
        fields: { k: 'a' },
        aggregates: { n: 2, total: 6, users: ['x', 'z'], lo: 1, hi: 5 },
        final: true,
      },
    ]);
    expect(w.openWindowCount()).toBe(0);
    // after the end of input, events of emitted windows are late; later windows open as usual
    expect(w.watermark).toBe(25); // latest closed end 20 + lateness 5
    expect(w.add(ev('a', 1, 'x'), 19, NONE)).toEqual({ kind: 'late', windowStart: 10, windowEnd: 20, watermark: 25 });
    expect(w.add(ev('a', 1, 'x'), 21, NONE).kind).toBe('added');
  });

  it('classifies lateness exactly at the boundary end + lateness == watermark', () => {
    const def = definitionFor(tumbling(10), 5);
    // [0,10) with lateness 5 closes at watermark 15
    expect(new PartitionWindows(def).add(ev('a', 1, 'x'), 5, 14).kind).toBe('added');
    expect(new PartitionWindows(def).add(ev('a', 1, 'x'), 5, 15)).toEqual({
      kind: 'late',
      windowStart: 0,
      windowEnd: 10,
      watermark: 15,
    });
    const noGrace = definitionFor(tumbling(10), 0);
    expect(new PartitionWindows(noGrace).add(ev('a', 1, 'x'), 9, 9).kind).toBe('added');
    expect(new PartitionWindows(noGrace).add(ev('a', 1, 'x'), 9, 10).kind).toBe('late');
  });

  it('never reopens a window: a lower watermark later does not undo a higher one', () => {
    const w = new PartitionWindows(definitionFor(tumbling(10), 0));
    w.add(ev('a', 1, 'x'), 25, 20); // watermark 20 closes [0,10) and [10,20)
    expect(w.add(ev('a', 1, 'x'), 15, 12).kind).toBe('late'); // 12 < 20 is ignored
    expect(w.watermark).toBe(20);
    expect(w.closeUpTo(5)).toEqual([]);
  });

  it('supports an offset', () => {
    const w = new PartitionWindows(definitionFor(tumbling(10, { offsetMs: 3 }), 0));
    w.add(ev('a', 1, 'x'), 2, NONE);
    w.add(ev('a', 1, 'x'), 3, NONE);
    expect(w.closeAll().map((r) => [r.windowStart, r.windowEnd, r.aggregates.n])).toEqual([
      [-7, 3, 1],
      [3, 13, 1],
    ]);
  });

  it('rejects a non-finite event time', () => {
    const w = new PartitionWindows(definitionFor(tumbling(10), 0));
    expect(() => w.add(ev('a', 1, 'x'), Number.NaN, 0)).toThrow(EventTimeError);
  });
});

describe('hopping windows', () => {
  it('count an event in every window that contains it', () => {
    const w = new PartitionWindows(definitionFor(hopping(10, 5), 0));
    w.add(ev('a', 1, 'x'), 3, NONE); // [-5,5) [0,10)
    w.add(ev('a', 2, 'y'), 7, NONE); // [0,10) [5,15)
    w.add(ev('a', 4, 'x'), 12, NONE); // [5,15) [10,20)
    expect(w.openWindowCount()).toBe(4);
    expect(
      w.closeUpTo(10).map((r) => [r.windowStart, r.windowEnd, r.aggregates.n, r.aggregates.total, r.aggregates.users]),
    ).toEqual([
      [-5, 5, 1, 1, ['x']],
      [0, 10, 2, 3, ['x', 'y']],
    ]);
    expect(
      w.closeAll().map((r) => [r.windowStart, r.windowEnd, r.aggregates.n, r.aggregates.total, r.aggregates.users]),
    ).toEqual([
      [5, 15, 2, 6, ['x', 'y']],
      [10, 20, 1, 4, ['x']],
    ]);
  });

  it('an event is late only when all its windows closed; otherwise it joins the open ones and reports the missed count', () => {
    const w = new PartitionWindows(definitionFor(hopping(10, 5), 0));
    // watermark 10: [0,10) is closed, [5,15) is open
    expect(w.add(ev('a', 1, 'x'), 8, 10)).toEqual({ kind: 'added', missedWindows: 1 });
    // t=4 is in [-5,5) and [0,10): both closed; the latest of them is reported
    expect(w.add(ev('a', 1, 'x'), 4, 10)).toEqual({ kind: 'late', windowStart: 0, windowEnd: 10, watermark: 10 });
    expect(w.closeAll().map((r) => [r.windowStart, r.windowEnd, r.aggregates.n])).toEqual([[5, 15, 1]]);
  });
});

describe('session windows', () => {
  it('group events less than gap apart, per key', () => {
    const w = new PartitionWindows(definitionFor(session(10), 0));
    w.add(ev('a', 1, 'x'), 0, NONE); // a: [0,10)
    w.add(ev('a', 2, 'y'), 5, NONE); // a: [0,15)
    w.add(ev('a', 4, 'x'), 30, NONE); // a: [0,15) and [30,40)
    w.add(ev('b', 8, 'z'), 3, NONE); // b: [3,13)
    w.add(ev('a', 16, 'x'), 25, NONE); // [25,35) touches nothing of [0,15) (15 <= 25), overlaps [30,40) -> [25,40)
    expect(w.openWindowCount()).toBe(3);
    expect(w.closeUpTo(14)).toEqual([
      {
        windowStart: 3,
        windowEnd: 13,
        key: key('b'),
        fields: { k: 'b' },
        aggregates: { n: 1, total: 8, users: ['z'], lo: 8, hi: 8 },
        final: true,
      },
    ]);
    expect(
      w
        .closeAll()
        .map((r) => [
          r.fields.k,
          r.windowStart,
          r.windowEnd,
          r.aggregates.n,
          r.aggregates.total,
          r.aggregates.lo,
          r.aggregates.hi,
        ]),
    ).toEqual([
      ['a', 0, 15, 2, 3, 1, 2],
      ['a', 25, 40, 2, 20, 4, 16],
    ]);
  });

  it('events exactly gap apart start a new session (a session is [first, last + gap))', () => {
    const w = new PartitionWindows(definitionFor(session(10), 0));
    w.add(ev('a', 1, 'x'), 0, NONE);
    w.add(ev('a', 1, 'x'), 10, NONE);
    w.add(ev('a', 1, 'x'), 19, NONE); // 9 after 10: same session as 10
    expect(w.closeAll().map((r) => [r.windowStart, r.windowEnd, r.aggregates.n])).toEqual([
      [0, 10, 1],
      [10, 29, 2],
    ]);
  });

  it('a late-but-allowed event that bridges two sessions merges them and their aggregates', () => {
    const w = new PartitionWindows(definitionFor(session(10), 20));
    w.add(ev('a', 1, 'x'), 0, NONE); // [0,10)
    w.add(ev('a', 2, 'y'), 15, NONE); // [15,25): 15 apart, separate
    expect(w.openWindowCount()).toBe(2);
    expect(w.closeUpTo(25)).toEqual([]); // [0,10) stays open until watermark 30
    // t=8 at watermark 25 is behind the watermark but within lateness; [8,18) overlaps both
    expect(w.add(ev('a', 4, 'x'), 8, 25).kind).toBe('added');
    expect(w.openWindowCount()).toBe(1);
    expect(w.closeUpTo(44)).toEqual([]); // merged [0,25) closes at 25 + 20 = 45
    expect(w.closeUpTo(45)).toEqual([
      {
        windowStart: 0,
        windowEnd: 25,
        key: key('a'),
        fields: { k: 'a' },
        aggregates: { n: 3, total: 7, users: ['x', 'y'], lo: 1, hi: 4 },
        final: true,
      },
    ]);
  });

  it('an event bridging three sessions merges all of them', () => {
    const w = new PartitionWindows(definitionFor(session(4), 100));
    for (const t of [0, 6, 12, 18]) w.add(ev('a', t, 'u' + t), t, NONE); // [0,4) [6,10) [12,16) [18,22)
    expect(w.openWindowCount()).toBe(4);
    w.add(ev('a', 1, 'v'), 3, NONE); // [3,7): joins [0,4) and [6,10) -> [0,10)
    w.add(ev('a', 1, 'v'), 9, NONE); // [9,13): joins [0,10) and [12,16) -> [0,16)
    expect(w.closeAll().map((r) => [r.windowStart, r.windowEnd, r.aggregates.n, r.aggregates.total])).toEqual([
      [0, 16, 5, 20],
      [18, 22, 1, 18],
    ]);
  });

  it('classifies lateness at the boundary, and a closed session takes no more events', () => {
    const def = definitionFor(session(10), 20);
    // alone, t=5 would be the session [5,15), closed at watermark 15 + 20 = 35
    expect(new PartitionWindows(def).add(ev('c', 1, 'x'), 5, 34).kind).toBe('added');
    expect(new PartitionWindows(def).add(ev('c', 1, 'x'), 5, 35)).toEqual({
      kind: 'late',
      windowStart: 5,
      windowEnd: 15,
      watermark: 35,
    });

    // [0,10) with no lateness is closed at watermark 10, even before closeUpTo emits it:
    // an event at 5 whose own [5,15) is still open starts a new session instead of joining.
    const w = new PartitionWindows(definitionFor(session(10), 0));
    w.add(ev('a', 1, 'x'), 0, NONE);
    expect(w.add(ev('a', 2, 'y'), 5, 10).kind).toBe('added');
    expect(w.closeAll().map((r) => [r.windowStart, r.windowEnd, r.aggregates.n])).toEqual([
      [0, 10, 1],
      [5, 15, 1],
    ]);
  });
});

describe('the order windows close in', () => {
  // Keys opened in an order unlike their sorted one, a window opened before an earlier one, events on
  // either side of a checkpoint.
  const keys = ['m', 'b', 'z', 'a', 'q', 'B', 'é', ''];
  const events = [25, 3, 14, 31, 8].flatMap((t) => keys.map((k) => [ev(k, 1, `u${t}`), t + (k.length % 2)] as const));
  const order = (rows: { windowStart: number; windowEnd: number; key: string }[]) =>
    rows.map((r) => `${r.windowEnd}/${r.windowStart}/${r.key}`);

  it.each([
    ['tumbling', tumbling(10)],
    ['hopping', hopping(20, 10)],
    ['session', session(5)],
  ] as const)('is by end, then start, and the same after a restore for %s windows', (_name, assigner) => {
    const definition = definitionFor(assigner, 0);
    const live = new PartitionWindows(definition);
    for (const [e, t] of events) live.add(e, t, NONE);
    const closed = live.closeUpTo(1000);
    expect(closed.length).toBeGreaterThan(keys.length);
    const bounds = closed.map((r) => [r.windowEnd, r.windowStart]);
    expect(bounds).toEqual([...bounds].sort((x, y) => x[0]! - y[0]! || x[1]! - y[1]!));
    // Restored from a snapshot taken half-way, then given the rest: the same rows in the same order.
    const half = events.length / 2;
    const first = new PartitionWindows(definition);
    for (const [e, t] of events.slice(0, half)) first.add(e, t, NONE);
    const resumed = PartitionWindows.restore(definition, JSON.parse(JSON.stringify(first.snapshot())));
    for (const [e, t] of events.slice(half)) resumed.add(e, t, NONE);
    const again = resumed.closeUpTo(1000);
    expect(order(again)).toEqual(order(closed));
    expect(again).toEqual(closed);
  });
});

describe('early emissions', () => {
  it('emit changed open windows at most once per interval, marked non-final', () => {
    const w = new PartitionWindows(definitionFor(tumbling(10), 0, 1000));
    w.add(ev('a', 1, 'x'), 1, NONE);
    expect(w.emitEarly(0).map((r) => [r.windowStart, r.aggregates.n, r.final])).toEqual([[0, 1, false]]);
    w.add(ev('a', 1, 'x'), 2, NONE);
    expect(w.emitEarly(999)).toEqual([]); // interval not elapsed
    expect(w.emitEarly(1000).map((r) => [r.windowStart, r.aggregates.n, r.final])).toEqual([[0, 2, false]]);
    expect(w.emitEarly(2000)).toEqual([]); // nothing changed
    expect(w.closeUpTo(10).map((r) => [r.aggregates.n, r.final])).toEqual([[2, true]]);
  });

  it('emit nothing without an interval', () => {
    const w = new PartitionWindows(definitionFor(tumbling(10), 0));
    w.add(ev('a', 1, 'x'), 1, NONE);
    expect(w.emitEarly(1_000_000)).toEqual([]);
  });
});

describe('snapshots', () => {
  it('round-trip exactly through JSON and continue identically', () => {
    for (const assigner of [tumbling(10), hopping(10, 5), session(10)]) {
      const def = definitionFor(assigner, 5, 100);
      const w = new PartitionWindows(def);
      w.add(ev('a', 1, 'x'), 1, NONE);
      w.add(ev('b', null, 'y'), 14, 3);
      w.add(ev('a', 7, 'z'), 12, 3);
      w.emitEarly(0);
      w.add(ev('b', 2, 'y'), 16, 4);
      const snap = JSON.parse(JSON.stringify(w.snapshot()));
      const restored = PartitionWindows.restore(def, snap);
      expect(restored.snapshot()).toEqual(snap);
      expect(restored.watermark).toBe(4);
      expect(restored.openWindowCount()).toBe(w.openWindowCount());
      for (const x of [w, restored]) x.add(ev('a', 3, 'q'), 11, 9);
      expect(restored.emitEarly(500)).toEqual(w.emitEarly(500));
      expect(restored.closeUpTo(20)).toEqual(w.closeUpTo(20));
      expect(restored.closeAll()).toEqual(w.closeAll());
    }
  });

  it('encode the watermark before any, and keep emitted windows closed after a bounded run', () => {
    const def = definitionFor(tumbling(10), 0);
    const fresh = new PartitionWindows(def);
    expect(fresh.snapshot()).toEqual({ format: 1, definition: def.fingerprint, watermark: null, windows: [] });
    fresh.add(ev('a', 1, 'x'), 5, NONE);
    fresh.closeAll();
    const next = PartitionWindows.restore(def, JSON.parse(JSON.stringify(fresh.snapshot())));
    expect(next.watermark).toBe(10);
    expect(next.add(ev('a', 1, 'x'), 9, NONE).kind).toBe('late');
    expect(next.add(ev('a', 1, 'x'), 10, NONE).kind).toBe('added');
  });

  it('refuse state of a different definition or a malformed one', () => {
    const w = new PartitionWindows(definitionFor(tumbling(10), 0));
    w.add(ev('a', 1, 'x'), 1, NONE);
    const snap = JSON.parse(JSON.stringify(w.snapshot()));
    expect(() => PartitionWindows.restore(definitionFor(tumbling(20), 0), snap)).toThrow(WindowStateError);
    expect(() => PartitionWindows.restore(definitionFor(tumbling(20), 0), snap)).toThrow(/different window definition/);
    // lateness is not part of the identity: changing it between deployments is allowed
    expect(PartitionWindows.restore(definitionFor(tumbling(10), 60), snap).openWindowCount()).toBe(1);
    const def = definitionFor(tumbling(10), 0);
    expect(() =>
      PartitionWindows.restore(def, { ...snap, windows: [{ ...snap.windows[0], start: 3, end: 13 }] }),
    ).toThrow(/does not fit/);
    expect(() => PartitionWindows.restore(def, { ...snap, windows: [{ ...snap.windows[0], states: [1] }] })).toThrow(
      /malformed/,
    );
    expect(() => PartitionWindows.restore(def, { ...snap, watermark: 'soon' })).toThrow(/watermark/);
    expect(() => PartitionWindows.restore(def, 'x')).toThrow(WindowStateError);
  });
});

describe('partials across partitions', () => {
  it('exact distinct merged across partitions equals the distinct of the union', () => {
    const def = definitionFor(tumbling(100), 0);
    const partitions = [new PartitionWindows(def), new PartitionWindows(def), new PartitionWindows(def)];
    const expected = new Map<string, Set<string>>();
    const counts = new Map<string, number>();
    // a deterministic spread of users over partitions, keys and windows
    for (let i = 0; i < 3000; i++) {
      const k = i % 5 === 0 ? 'a' : 'b';
      const t = (i * 7) % 300;
      const u = `u${(i * 31) % 250}`;
      partitions[i % 3]!.add(ev(k, 1, u), t, NONE);
      const id = `${Math.floor(t / 100) * 100}|${k}`;
      expected.set(id, (expected.get(id) ?? new Set()).add(u));
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    const partials = partitions.flatMap((p) => p.closeAll());
    // every (window, key) has a partial from each of the three partitions, none holding all its users
    expect(partials).toHaveLength(3 * expected.size);
    for (const partial of partials)
      expect(partial.aggregates.users.length).toBeLessThan(
        expected.get(`${partial.windowStart}|${partial.fields.k}`)!.size,
      );
    const merged = mergePartials(def, partials);
    expect(merged).toHaveLength(expected.size);
    for (const row of merged) {
      const id = `${row.windowStart}|${row.fields.k}`;
      expect(row.aggregates.users).toEqual([...expected.get(id)!].sort());
      expect(row.aggregates.n).toBe(counts.get(id));
    }
  });
});

describe('definitions', () => {
  it('make lateness explicit and validate the rest', () => {
    const base = { assigner: tumbling(10), groupBy: groupByFields((e: Ev) => ({ k: e.k })), aggregate: { n: count() } };
    expect(() => defineWindows({ ...base } as unknown as Parameters<typeof defineWindows>[0])).toThrow(
      /allowedLatenessMs/,
    );
    expect(() => defineWindows({ ...base, allowedLatenessMs: -1 })).toThrow(WindowDefinitionError);
    expect(() => defineWindows({ ...base, allowedLatenessMs: 0, aggregate: {} })).toThrow(/at least one aggregation/);
    expect(() => defineWindows({ ...base, allowedLatenessMs: 0, aggregate: { 'bad name': count() } })).toThrow(
      /aggregation name/,
    );
    expect(() => defineWindows({ ...base, allowedLatenessMs: 0, earlyEmitIntervalMs: 0 })).toThrow(
      /earlyEmitIntervalMs/,
    );
    expect(defineWindows({ ...base, allowedLatenessMs: 0 }).fingerprint).toBe('tumbling(size=10ms,offset=0ms);n=count');
  });
});
