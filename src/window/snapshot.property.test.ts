import fc from 'fast-check';
import { hopping, session, tumbling, windowsOf, type WindowAssigner } from './assigners';
import { specDefinition, type SpecEvent } from './spec-fixtures';
import { PartitionWindows, type WindowResult } from './partition-windows';
import { WindowTestDriver } from './testing';

type Ev = SpecEvent;

const definitionFor = (assigner: WindowAssigner, allowedLatenessMs: number) =>
  specDefinition(assigner, allowedLatenessMs);
type Def = ReturnType<typeof definitionFor>;
type Row = WindowResult<{ key: string }, NonNullable<Def['_results']>>;

type Op =
  | { kind: 'add'; key: string; t: number; value: number; user: string; watermark: number }
  | { kind: 'close'; watermark: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('add' as const),
      key: fc.constantFrom('a', 'b', 'c'),
      t: fc.integer({ min: 0, max: 200 }),
      value: fc.integer({ min: -5, max: 5 }),
      user: fc.constantFrom('u1', 'u2', 'u3', 'u4'),
      // Sometimes lower than before, which the windows must ignore.
      watermark: fc.integer({ min: -20, max: 220 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('close' as const), watermark: fc.integer({ min: -20, max: 220 }) }),
  },
);

const assignerArb = fc.oneof(
  fc.integer({ min: 1, max: 30 }).map((size) => tumbling(size)),
  fc
    .integer({ min: 1, max: 10 })
    .chain((advance) => fc.integer({ min: advance, max: 30 }).map((size) => hopping(size, advance))),
  fc.integer({ min: 1, max: 20 }).map((gap) => session(gap)),
);

/** Everything observable: each add's outcome, each close's rows, and the final closeAll. */
function run(def: Def, ops: Op[], cut: number | undefined): unknown[] {
  let windows = new PartitionWindows(def);
  const log: unknown[] = [];
  ops.forEach((op, i) => {
    if (i === cut) {
      const saved = JSON.stringify(windows.snapshot());
      windows = PartitionWindows.restore(def, JSON.parse(saved));
      // the restored state snapshots to the same JSON
      expect(JSON.stringify(windows.snapshot())).toBe(saved);
    }
    if (op.kind === 'add') log.push(windows.add({ key: op.key, value: op.value, user: op.user }, op.t, op.watermark));
    else log.push(windows.closeUpTo(op.watermark));
  });
  log.push(windows.closeAll());
  return log;
}

describe('snapshot -> restore -> continue (property)', () => {
  it('gives the same results as an uninterrupted run, for every assigner', () => {
    fc.assert(
      fc.property(
        assignerArb,
        fc.integer({ min: 0, max: 10 }),
        fc.array(opArb, { maxLength: 60 }),
        fc.nat(),
        (assigner, lateness, ops, cutSeed) => {
          const def = definitionFor(assigner, lateness);
          const cut = ops.length === 0 ? 0 : cutSeed % (ops.length + 1);
          expect(run(def, ops, cut)).toEqual(run(def, ops, undefined));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('gives the same results through the operator and driver with several partitions', () => {
    const stepArb = fc.oneof(
      {
        weight: 5,
        arbitrary: fc.record({
          partition: fc.integer({ min: 0, max: 2 }),
          key: fc.constantFrom('a', 'b'),
          t: fc.integer({ min: 0, max: 300 }),
          value: fc.integer({ min: 0, max: 9 }),
        }),
      },
      { weight: 1, arbitrary: fc.record({ advance: fc.integer({ min: 0, max: 50 }) }) },
    );
    fc.assert(
      fc.property(assignerArb, fc.array(stepArb, { maxLength: 80 }), fc.nat(), (assigner, steps, cutSeed) => {
        const def = definitionFor(assigner, 5);
        const cut = cutSeed % (steps.length + 1);
        const drive = (restartAt: number | undefined) => {
          // The idle timeout is never reached, so the restart cannot change which partitions hold the watermark.
          const driver = new WindowTestDriver(def, { outOfOrdernessMs: 20, idleTimeoutMs: 1e9, partitions: [0, 1, 2] });
          steps.forEach((step, i) => {
            if (i === restartAt) driver.restart();
            if ('advance' in step) driver.advanceTime(step.advance);
            else driver.pipe(step.partition, { key: step.key, value: step.value, user: `u${step.value % 3}` }, step.t);
          });
          driver.endOfInput();
          return { output: driver.readOutput(), late: driver.readLate() };
        };
        expect(drive(cut)).toEqual(drive(undefined));
      }),
      { numRuns: 200 },
    );
  });
});

describe('fixed windows against a naive model (property)', () => {
  it('emit exactly the aggregates of the events each window accepted', () => {
    const fixedArb = fc.oneof(
      fc.integer({ min: 1, max: 30 }).map((size) => tumbling(size)),
      fc
        .integer({ min: 1, max: 10 })
        .chain((advance) => fc.integer({ min: advance, max: 30 }).map((size) => hopping(size, advance))),
    );
    fc.assert(
      fc.property(
        fixedArb,
        fc.integer({ min: 0, max: 10 }),
        fc.array(opArb, { maxLength: 60 }),
        (assigner, lateness, ops) => {
          const def = definitionFor(assigner, lateness);
          const windows = new PartitionWindows(def);
          const emitted: Row[] = [];
          // The model: a flat list of (window, event) memberships, closed by a scan.
          let watermark = -Infinity;
          const members: { start: number; end: number; e: Ev; emitted: boolean }[] = [];
          // When each (window, key) opened: rows of a window come out in that order.
          const opened = new Map<string, number>();
          const expected: Row[] = [];
          const modelClose = () => {
            const due = members.filter((m) => !m.emitted && m.end + lateness <= watermark);
            const groups = new Map<string, Ev[]>();
            for (const m of due) {
              m.emitted = true;
              const id = `${m.start}|${m.end}|${m.e.key}`;
              groups.set(id, [...(groups.get(id) ?? []), m.e]);
            }
            const rows = [...groups.entries()].map(([id, events]) => {
              const [start, end, key] = id.split('|') as [string, string, string];
              const values = events.map((e) => e.value);
              return {
                windowStart: Number(start),
                windowEnd: Number(end),
                key,
                fields: { key },
                aggregates: {
                  n: events.length,
                  total: values.reduce((a, b) => a + b, 0),
                  users: [...new Set(events.map((e) => e.user))].sort(),
                  lo: Math.min(...values),
                  hi: Math.max(...values),
                },
                final: true,
              };
            });
            const openedAt = (r: Row) => opened.get(`${r.windowStart}|${r.windowEnd}|${r.key}`)!;
            rows.sort(
              (x, y) => x.windowEnd - y.windowEnd || x.windowStart - y.windowStart || openedAt(x) - openedAt(y),
            );
            expected.push(...rows);
          };
          for (const op of ops) {
            watermark = Math.max(watermark, op.watermark);
            if (op.kind === 'close') {
              emitted.push(...windows.closeUpTo(op.watermark));
              modelClose();
              continue;
            }
            const e = { key: op.key, value: op.value, user: op.user };
            const outcome = windows.add(e, op.t, op.watermark);
            const open = windowsOf(assigner, op.t).filter((w) => w.end + lateness > watermark);
            expect(outcome.kind).toBe(open.length === 0 ? 'late' : 'added');
            for (const w of open) {
              const id = `${w.start}|${w.end}|${e.key}`;
              if (!opened.has(id)) opened.set(id, opened.size);
              members.push({ ...w, e, emitted: false });
            }
          }
          emitted.push(...windows.closeAll());
          watermark = Infinity;
          modelClose();
          expect(emitted).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('session windows against a naive model (property)', () => {
  it('with nothing late, a key’s sessions split exactly where consecutive events are gap or more apart', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.array(
          fc.record({
            key: fc.constantFrom('a', 'b'),
            t: fc.integer({ min: 0, max: 300 }),
            value: fc.integer({ min: 0, max: 9 }),
          }),
          { maxLength: 80 },
        ),
        (gap, events) => {
          const def = definitionFor(session(gap), 0);
          const windows = new PartitionWindows(def);
          for (const e of events) windows.add({ key: e.key, value: e.value, user: 'u' }, e.t, -Infinity);
          const got = windows
            .closeAll()
            .map((r) => [r.key, r.windowStart, r.windowEnd, r.aggregates.n, r.aggregates.total]);
          const expected: [string, number, number, number, number][] = [];
          for (const key of ['a', 'b']) {
            const sorted = events.filter((e) => e.key === key).sort((x, y) => x.t - y.t);
            let current: [string, number, number, number, number] | undefined;
            for (const e of sorted) {
              if (current && e.t - (current[2] - gap) < gap) {
                current[2] = e.t + gap;
                current[3] += 1;
                current[4] += e.value;
              } else {
                current = [key, e.t, e.t + gap, 1, e.value];
                expected.push(current);
              }
            }
          }
          expected.sort((x, y) => x[2] - y[2] || x[1] - y[1] || (x[0] < y[0] ? -1 : 1));
          expect(got).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
  });
});
