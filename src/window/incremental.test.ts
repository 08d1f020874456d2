import fc from 'fast-check';
import { hopping, session, tumbling, type WindowAssigner } from './assigners';
import type { WindowDefinition } from './definition';
import { CHAIN_LIMITS, ENCODING, type ChainedWindows } from './incremental';
import { specDefinition, type SpecEvent } from './spec-fixtures';
import { PartitionWindows, type WindowsCheckpoint } from './partition-windows';

type Ev = SpecEvent;

const definitionFor = (assigner: WindowAssigner, allowedLatenessMs = 0) =>
  specDefinition(assigner, allowedLatenessMs, 10);
type Def = ReturnType<typeof definitionFor>;
type Windows = Def extends WindowDefinition<Ev, infer K, infer A> ? PartitionWindows<Ev, K, A> : never;

/** A saved link as the state store gives it back. */
interface Saved {
  head: unknown;
  parts: string[];
}

async function saved(checkpoint: WindowsCheckpoint): Promise<Saved> {
  return { head: JSON.parse(JSON.stringify(checkpoint.head)), parts: await checkpoint.parts };
}

/** The chain restore reads for the last of `links`: from the last base on. */
function chainOf(links: Saved[]): ChainedWindows {
  let from = links.length - 1;
  while ((links[from]!.head as { kind: string }).kind !== 'base') from--;
  return { links: links.slice(from).map((l) => ({ windows: l.head, parts: l.parts })) };
}

/** The whole state, order aside: what restore must rebuild. */
function stateOf(w: Windows): unknown {
  const s = w.snapshot();
  return {
    ...s,
    windows: [...s.windows].sort((a, b) => a.start - b.start || (a.key < b.key ? -1 : 1) || a.end - b.end),
  };
}

const ev = (key: string, value: number, user = `u${value % 3}`): Ev => ({ key, value, user });

describe('incremental window checkpoints', () => {
  const limits = { ...CHAIN_LIMITS };
  const encoding = { ...ENCODING };
  afterEach(() => {
    Object.assign(CHAIN_LIMITS, limits);
    Object.assign(ENCODING, encoding);
  });

  it('writes a base first, then deltas of what changed, and restores base + deltas', async () => {
    const def = definitionFor(tumbling(10));
    const w: Windows = new PartitionWindows(def);
    for (let t = 0; t < 50; t++) w.add(ev(`k${t % 7}`, t), t, 0);
    const base = w.checkpoint();
    expect(base.base).toBe(true);
    const links = [await saved(base)];
    w.add(ev('k1', 100), 41, 0); // one window changed
    w.add(ev('new', 1), 45, 0); // one opened
    w.closeUpTo(20); // the first two windows closed
    const delta = w.checkpoint();
    expect(delta.base).toBe(false);
    links.push(await saved(delta));
    const parts =
      delta.head.kind === 'delta' ? links[1]!.parts.map((p) => JSON.parse(p) as { r: number[]; w: unknown[] }) : [];
    expect(parts.flatMap((p) => p.w)).toHaveLength(2);
    expect(parts.flatMap((p) => p.r)).toHaveLength(14);
    const restored: Windows = PartitionWindows.restore(def, chainOf(links));
    expect(stateOf(restored)).toEqual(stateOf(w));
    expect(restored.closeAll()).toEqual(w.closeAll());
  });

  it('saves each window as it was at the capture, though it changes while the parts are encoded', async () => {
    ENCODING.partBytes = 200;
    ENCODING.turnBytes = 200;
    for (const assigner of [tumbling(10), hopping(10, 5), session(4)]) {
      const def = definitionFor(assigner, 5);
      const w: Windows = new PartitionWindows(def);
      for (let t = 0; t < 60; t++) w.add(ev(`k${t % 5}`, t), t, t - 20);
      const links = [await saved(w.checkpoint())];
      for (let t = 30; t < 70; t++) w.add(ev(`k${t % 4}`, t), t, t - 20);
      const atCapture = stateOf(w);
      const delta = w.checkpoint();
      // While it is encoded: windows change, sessions merge, windows close and early results clear `changed`.
      for (let t = 20; t < 90; t += 3) w.add(ev(`k${t % 6}`, -t), t, t - 12);
      w.emitEarly(100);
      w.closeUpTo(60);
      links.push(await saved(delta));
      expect(stateOf(PartitionWindows.restore(def, chainOf(links)))).toEqual(atCapture);
      // And the next delta carries what changed meanwhile.
      links.push(await saved(w.checkpoint()));
      expect(stateOf(PartitionWindows.restore(def, chainOf(links)))).toEqual(stateOf(w));
    }
  });

  it('writes a new base once the chain is long or large', async () => {
    CHAIN_LIMITS.deltas = 2;
    CHAIN_LIMITS.ratio = 100;
    const def = definitionFor(tumbling(10));
    const w: Windows = new PartitionWindows(def);
    w.add(ev('a', 1), 1, 0);
    const kinds: boolean[] = [];
    for (let i = 0; i < 5; i++) {
      w.add(ev('a', i), 1, 0);
      const c = w.checkpoint();
      await c.parts;
      kinds.push(c.base);
    }
    expect(kinds).toEqual([true, false, false, true, false]);
    CHAIN_LIMITS.deltas = 100;
    CHAIN_LIMITS.ratio = 0.5;
    // Every window changed: the deltas soon outweigh half the base.
    const big: Windows = new PartitionWindows(def);
    for (let k = 0; k < 20; k++) big.add(ev(`k${k}`, k), 1, 0);
    const bases: boolean[] = [];
    for (let i = 0; i < 4; i++) {
      for (let k = 0; k < 20; k++) big.add(ev(`k${k}`, i), 1, 0);
      const c = big.checkpoint();
      await c.parts;
      bases.push(c.base);
    }
    expect(bases).toEqual([true, false, true, false]);
  });

  it('restored from a chain, goes on with deltas on it; restored from format 1, starts with a base', async () => {
    CHAIN_LIMITS.ratio = 100;
    const def = definitionFor(tumbling(10));
    const w: Windows = new PartitionWindows(def);
    w.add(ev('a', 1), 1, 0);
    const links = [await saved(w.checkpoint())];
    w.add(ev('b', 2), 2, 0);
    links.push(await saved(w.checkpoint()));
    const restored: Windows = PartitionWindows.restore(def, chainOf(links));
    restored.add(ev('c', 3), 3, 0);
    const next = restored.checkpoint();
    expect(next.base).toBe(false);
    // Ids go on from the chain's: the new window does not take a saved one's.
    links.push(await saved(next));
    expect(stateOf(PartitionWindows.restore(def, chainOf(links)))).toEqual(stateOf(restored));
    const fromFormat1: Windows = PartitionWindows.restore(def, JSON.parse(JSON.stringify(w.snapshot())));
    expect(fromFormat1.checkpoint().base).toBe(true);
  });

  it('refuses a chain that does not start with a base, or of another definition', async () => {
    const def = definitionFor(tumbling(10));
    const w: Windows = new PartitionWindows(def);
    w.add(ev('a', 1), 1, 0);
    const base = await saved(w.checkpoint());
    w.add(ev('a', 1), 1, 0);
    const delta = await saved(w.checkpoint());
    const link = (l: Saved) => ({ windows: l.head, parts: l.parts });
    expect(() => PartitionWindows.restore(def, { links: [link(delta)] })).toThrow(/delta where a base belongs/);
    expect(() => PartitionWindows.restore(definitionFor(tumbling(20)), { links: [link(base)] })).toThrow(
      /different window definition/,
    );
    expect(() => PartitionWindows.restore(def, { links: [{ windows: base.head, parts: ['{'] }] })).toThrow(/not JSON/);
  });
});

type Op =
  | { kind: 'add'; key: string; t: number; value: number; watermark: number }
  | { kind: 'close'; watermark: number }
  | { kind: 'early' }
  /** Take a checkpoint; its parts are saved only after the next `save` (ops in between change the windows meanwhile). */
  | { kind: 'checkpoint' }
  | { kind: 'save' }
  /** Restore from the chain of the last saved checkpoint. */
  | { kind: 'restore' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('add' as const),
      key: fc.constantFrom('a', 'b', 'c'),
      t: fc.integer({ min: 0, max: 200 }),
      value: fc.integer({ min: -5, max: 5 }),
      watermark: fc.integer({ min: -20, max: 220 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('close' as const), watermark: fc.integer({ min: -20, max: 220 }) }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'early' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'checkpoint' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'save' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'restore' as const }) },
);

const assignerArb = fc.oneof(
  fc.integer({ min: 1, max: 30 }).map((size) => tumbling(size)),
  fc
    .integer({ min: 1, max: 10 })
    .chain((advance) => fc.integer({ min: advance, max: 30 }).map((size) => hopping(size, advance))),
  fc.integer({ min: 1, max: 20 }).map((gap) => session(gap)),
);

/**
 * Everything observable of a run: each add's outcome, each close's and early emission's rows, the
 * final closeAll. Checkpoints are taken and saved a few ops later (the windows change while they
 * are encoded). A restore goes back to the last saved checkpoint, whose state must be exactly the
 * one at its capture, and processes the ops since again without logging them (as the runtime
 * reprocesses the records after its restore point). Without checkpoints (`plain`) nothing is restored.
 */
async function run(def: Def, ops: Op[], plain: boolean): Promise<unknown[]> {
  let windows: Windows = new PartitionWindows(def);
  const links: (Saved & { state: unknown; at: number })[] = [];
  let taken: { checkpoint: WindowsCheckpoint; state: unknown; at: number } | undefined;
  const log: unknown[] = [];
  const save = async () => {
    if (taken) links.push({ ...(await saved(taken.checkpoint)), state: taken.state, at: taken.at });
    taken = undefined;
  };
  const apply = (op: Op, i: number): unknown => {
    if (op.kind === 'add')
      return windows.add({ key: op.key, value: op.value, user: `u${op.value % 3}` }, op.t, op.watermark);
    if (op.kind === 'close') return windows.closeUpTo(op.watermark);
    // Always due: when early emission last ran is not part of the state.
    if (op.kind === 'early') return windows.emitEarly(1000 * (i + 1));
    return undefined;
  };
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    if (op.kind === 'add' || op.kind === 'close' || op.kind === 'early') log.push(apply(op, i));
    else if (plain) continue;
    else if (op.kind === 'checkpoint') {
      await save();
      taken = { state: stateOf(windows), checkpoint: windows.checkpoint(), at: i };
    } else if (op.kind === 'save') await save();
    else {
      await save();
      const last = links[links.length - 1];
      if (!last) continue;
      windows = PartitionWindows.restore(def, chainOf(links));
      expect(stateOf(windows)).toEqual(last.state);
      for (let j = last.at + 1; j < i; j++) apply(ops[j]!, j);
    }
  }
  log.push(windows.closeAll());
  return log;
}

describe('incremental checkpoints (property)', () => {
  const encoding = { ...ENCODING };
  const limits = { ...CHAIN_LIMITS };
  afterAll(() => {
    Object.assign(ENCODING, encoding);
    Object.assign(CHAIN_LIMITS, limits);
  });

  it('checkpoint, restore and go on at random points gives what a run never checkpointed gives', async () => {
    await fc.assert(
      fc.asyncProperty(
        assignerArb,
        fc.integer({ min: 0, max: 10 }),
        fc.array(opArb, { maxLength: 80 }),
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 1, max: 4 }),
        async (assigner, lateness, ops, sliceBytes, deltas) => {
          // Small slices: a capture spans many turns and the ops between checkpoint and save change windows it has not encoded.
          ENCODING.partBytes = sliceBytes;
          ENCODING.turnBytes = sliceBytes;
          CHAIN_LIMITS.deltas = deltas;
          const def = definitionFor(assigner, lateness);
          expect(await run(def, ops, false)).toEqual(await run(def, ops, true));
        },
      ),
      { numRuns: 300 },
    );
  });
});
