/**
 * How long a commit's window-state checkpoint blocks the event loop, and how
 * many bytes it writes, with a given number of open window partials: the full
 * snapshot (format 1, one JSON text per partition in one turn, as commits
 * saved state before incremental checkpoints) against the incremental one
 * (a delta of what changed, or a base, encoded a slice per turn).
 *
 *   npx tsx bench/checkpoint-block.ts [openPartials=500000] [changedEventsPerCommit=20000] [commits=6]
 *
 * The state is spread over 6 partitions as the reference topic is. Between
 * commits, events land on random open partials (the change a 5 s commit
 * interval sees). While a checkpoint encodes, a feeder keeps adding events in
 * small batches, one per turn, as the consumer does, so encoding is measured
 * against a live hot path. The longest turn is measured twice: the gap
 * between consecutive setImmediate ticks, and perf_hooks'
 * monitorEventLoopDelay max. Not a test: timed numbers live here.
 * Prints one JSON line per measurement.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { count, distinct, sum, tumbling, windowsOver, PartitionWindows } from '../src/window';

interface Ev {
  key: number;
  user: string;
  amount: number;
  t: number;
}

const PARTITIONS = 6;
const WINDOW_MS = 60_000;
const OPEN_WINDOWS = 5;

const definition = windowsOver<Ev>()({
  assigner: tumbling(WINDOW_MS),
  groupBy: { key: (e) => String(e.key), fields: (e) => ({ key: `k${e.key}` }) },
  aggregate: { events: count(), users: distinct((e) => e.user), amount: sum((e) => e.amount) },
  // Nothing closes during the bench: the open state stays the size asked for.
  allowedLatenessMs: 24 * 3600_000,
});

const [openArg, changeArg, commitsArg] = process.argv.slice(2);
const open = Number(openArg ?? 500_000);
const changedEvents = Number(changeArg ?? 20_000);
const commits = Number(commitsArg ?? 6);
const keysPerPartition = Math.ceil(open / PARTITIONS / OPEN_WINDOWS);

let seed = 42;
const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
const event = (): Ev => ({
  key: Math.floor(random() * keysPerPartition),
  user: `user-${Math.floor(random() * 100_000)}`,
  amount: Math.round(random() * 10_000) / 100,
  t: Math.floor(random() * OPEN_WINDOWS) * WINDOW_MS + Math.floor(random() * WINDOW_MS),
});

function build(): PartitionWindows<Ev, { key: string }, typeof definition extends { _spec?: infer A } ? A : never>[] {
  const partitions = Array.from({ length: PARTITIONS }, () => new PartitionWindows(definition));
  for (const windows of partitions)
    for (let w = 0; w < OPEN_WINDOWS; w++)
      for (let k = 0; k < keysPerPartition; k++)
        windows.add({ key: k, user: `user-${k % 1000}`, amount: 1, t: w * WINDOW_MS + 1 }, w * WINDOW_MS + 1, 0);
  return partitions as never;
}

function change(partitions: PartitionWindows<Ev, never, never>[], n: number): void {
  for (let i = 0; i < n; i++) {
    const e = event();
    partitions[i % PARTITIONS]!.add(e as never, e.t, 0);
  }
}

/** Measures the longest turn while `work` runs, with a feeder adding `perTurn` events per turn. */
async function measured<T>(
  partitions: PartitionWindows<Ev, never, never>[],
  work: () => Promise<T>,
): Promise<{ result: T; maxTurnMs: number; loopDelayMaxMs: number; ms: number }> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  let running = true;
  let last = performance.now();
  let maxTurnMs = 0;
  const tick = () => {
    const now = performance.now();
    if (now - last > maxTurnMs) maxTurnMs = now - last;
    last = now;
    // The consumer's share of the loop: a small batch per turn.
    change(partitions, 50);
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  await new Promise((r) => setImmediate(r));
  const t0 = performance.now();
  last = t0;
  const result = await work();
  const ms = performance.now() - t0;
  running = false;
  await new Promise((r) => setImmediate(r));
  histogram.disable();
  return { result, maxTurnMs, loopDelayMaxMs: histogram.max / 1e6, ms };
}

const round = (x: number) => +x.toFixed(1);

async function main(): Promise<void> {
  const partitions = build() as unknown as PartitionWindows<Ev, never, never>[];
  const openNow = partitions.reduce((n, w) => n + w.openWindowCount(), 0);
  const incremental = typeof (partitions[0] as { checkpoint?: unknown }).checkpoint === 'function';
  for (let c = 0; c < commits; c++) {
    change(partitions, changedEvents);
    if (c === 0 || !incremental) {
      // The full snapshot: every partition's JSON text in the one turn that takes the checkpoint.
      const m = await measured(partitions, async () => {
        const t0 = performance.now();
        let bytes = 0;
        for (const w of partitions) bytes += w.snapshotJson().length;
        return { bytes, syncMs: performance.now() - t0 };
      });
      console.log(
        JSON.stringify({
          bench: 'checkpoint.full',
          openPartials: openNow,
          changedEvents,
          bytes: m.result.bytes,
          blockMs: round(m.result.syncMs),
          maxTurnMs: round(m.maxTurnMs),
          loopDelayMaxMs: round(m.loopDelayMaxMs),
        }),
      );
      if (!incremental) continue;
    }
    const m = await measured(partitions, async () => {
      const t0 = performance.now();
      const taken = partitions.map((w) =>
        (
          w as unknown as { checkpoint(base?: boolean): { base: boolean; head: unknown; parts: Promise<string[]> } }
        ).checkpoint(),
      );
      const captureMs = performance.now() - t0;
      const parts = await Promise.all(taken.map((t) => t.parts));
      let bytes = 0;
      for (let i = 0; i < taken.length; i++)
        bytes += JSON.stringify(taken[i]!.head).length + parts[i]!.reduce((n, p) => n + p.length, 0);
      return { kind: taken.some((t) => t.base) ? 'base' : 'delta', bytes, parts: parts.flat().length, captureMs };
    });
    console.log(
      JSON.stringify({
        bench: `checkpoint.incremental.${m.result.kind}`,
        openPartials: openNow,
        changedEvents,
        bytes: m.result.bytes,
        parts: m.result.parts,
        captureMs: round(m.result.captureMs),
        encodeMs: round(m.ms),
        maxTurnMs: round(m.maxTurnMs),
        loopDelayMaxMs: round(m.loopDelayMaxMs),
      }),
    );
  }
}

void main();
