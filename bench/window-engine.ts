/**
 * Throughput of the window engine alone (no Kafka, no services): 1M synthetic
 * reference events through 1-minute tumbling windows per (event_type,
 * campaign_id) with count, distinct users and sum of amount.
 *
 *   npx tsx bench/window-engine.ts [events]
 *   node --expose-gc --import tsx bench/window-engine.ts --memory 100000 500000
 *
 * Prints one JSON line per measurement. Events are generated before the clock
 * starts, so only the engine is measured. Not a test: timed numbers live here.
 *
 * `--memory N...`: the open state of one processor of the steady latency run
 * (bench/README.md, "Many open windows"), N partials at a time: 6 partitions,
 * two 1-minute windows open, the reference generator's mix (event types
 * weighted 55/25/10/5/5, 20 % without campaign, 10,000 users, amounts on
 * purchases), N/50 campaigns, so about 5 events per partial. Every event's
 * strings are fresh copies, as the Avro decoder makes them. Reports heap used
 * per partial after a forced GC and the CPU time of `add` per event (events
 * are generated in batches outside the timed part).
 * Then the watermark passes the first minute: `closeMs` is the synchronous work of closing its partials
 * (about half) in every partition, `longestCloseMs` the longest single partition's.
 */
import { DEFAULT_EVENT_TYPES } from '../src/generator';
import { SeededRandom } from '../src/generator/random';
import { count, distinct, sum, tumbling, windowsOver, PartitionWindows, WindowOperator } from '../src/window';

interface BenchEvent {
  event_type: string;
  campaign_id: string | null;
  user_id: string;
  amount: number | null;
  event_time: number;
}

const EVENT_TYPES = ['view', 'click', 'purchase', 'signup', 'share', 'scroll'];
const OUT_OF_ORDER_MS = 30_000;

function generate(n: number): BenchEvent[] {
  // Seeded, so every run measures the same events.
  const seeded = new SeededRandom(42);
  const random = () => seeded.next();
  const campaigns = Array.from({ length: 50 }, (_, i) => (i === 0 ? null : `campaign-${i}`));
  const start = Date.UTC(2026, 0, 1);
  // 1M events over 2 hours of event time (~140 events/s), shuffled within the out-of-order spread.
  const span = 2 * 3600_000;
  const events: BenchEvent[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const eventType = EVENT_TYPES[Math.floor(random() * EVENT_TYPES.length)]!;
    events[i] = {
      event_type: eventType,
      campaign_id: campaigns[Math.floor(random() * campaigns.length)]!,
      user_id: `user-${Math.floor(random() * 100_000)}`,
      amount: eventType === 'purchase' ? Math.round(random() * 10_000) / 100 : null,
      event_time: start + Math.floor((i / n) * span) - Math.floor(random() * OUT_OF_ORDER_MS),
    };
  }
  return events;
}

const definition = windowsOver<BenchEvent>()({
  assigner: tumbling(60_000),
  groupBy: {
    key: (e) => `${e.event_type}\u0000${e.campaign_id ?? ''}`,
    fields: (e) => ({ event_type: e.event_type, campaign_id: e.campaign_id ?? '' }),
  },
  aggregate: {
    events: count(),
    users: distinct((e) => e.user_id),
    amount: sum((e) => e.amount),
  },
  allowedLatenessMs: 10_000,
});

function benchPartitionWindows(events: BenchEvent[]): void {
  const windows = new PartitionWindows(definition);
  let maxTime = -Infinity;
  let rows = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    if (e.event_time > maxTime) maxTime = e.event_time;
    windows.add(e, e.event_time, maxTime - OUT_OF_ORDER_MS);
    // Close once per 1000-record batch, as the runtime does after each batch.
    if (i % 1000 === 999) rows += windows.closeUpTo(maxTime - OUT_OF_ORDER_MS).length;
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  // What a checkpoint costs with the state open at the end: snapshot + JSON, and the way back.
  const s0 = process.hrtime.bigint();
  const json = JSON.stringify(windows.snapshot());
  const s1 = process.hrtime.bigint();
  PartitionWindows.restore(definition, JSON.parse(json));
  const s2 = process.hrtime.bigint();
  console.log(
    JSON.stringify({
      bench: 'window.PartitionWindows.snapshot',
      openWindows: windows.openWindowCount(),
      bytes: json.length,
      snapshotMs: +(Number(s1 - s0) / 1e6).toFixed(2),
      restoreMs: +(Number(s2 - s1) / 1e6).toFixed(2),
    }),
  );
  rows += windows.closeAll().length;
  console.log(
    JSON.stringify({
      bench: 'window.PartitionWindows.add',
      events: events.length,
      seconds: +seconds.toFixed(3),
      eventsPerSecond: Math.round(events.length / seconds),
      windowRows: rows,
    }),
  );
}

function benchOperator(events: BenchEvent[], partitions: number): void {
  const operator = new WindowOperator(definition, { outOfOrdernessMs: OUT_OF_ORDER_MS, idleTimeoutMs: 60_000 });
  for (let p = 0; p < partitions; p++) operator.assign(p, undefined, 0);
  let rows = 0;
  const count = (emissions: { windows: unknown[] }[]) => emissions.reduce((n, e) => n + e.windows.length, 0);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    operator.add(i % partitions, e, e.event_time, 0);
    if (i % 1000 === 999) rows += count(operator.close(0));
  }
  rows += count(operator.closeAll());
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(
    JSON.stringify({
      bench: 'window.WindowOperator.add',
      partitions,
      events: events.length,
      seconds: +seconds.toFixed(3),
      eventsPerSecond: Math.round(events.length / seconds),
      windowRows: rows,
    }),
  );
}

/** A fresh heap copy of `s` (a decoded field is one; a literal or a cached template result would be shared). */
const fresh = (s: string): string => (s.length === 0 ? s : `${s} `.slice(0, -1));

function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (!collect)
    throw new Error('--memory needs node --expose-gc (node --expose-gc --import tsx bench/window-engine.ts)');
  for (let i = 0; i < 3; i++) collect();
}

function benchMemory(partials: number): void {
  const PARTITIONS = 6;
  const start = Date.UTC(2026, 0, 1);
  const campaigns = Math.max(1, Math.round(partials / 50));
  const seeded = new SeededRandom(7);
  const int = (n: number) => Math.floor(seeded.next() * n);
  const typeOf = () => {
    let r = int(100); // the weights sum to 100
    for (const t of DEFAULT_EVENT_TYPES) if ((r -= t.weight) < 0) return t;
    return DEFAULT_EVENT_TYPES[0]!;
  };
  const batch = (n: number): BenchEvent[] => {
    const out: BenchEvent[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const type = typeOf();
      out[i] = {
        event_type: fresh(type.name),
        campaign_id: seeded.next() < 0.2 ? null : `campaign-${int(campaigns)}`,
        user_id: `user-${int(10_000)}`,
        amount: type.hasAmount ? (100 + int(49_901)) / 100 : null,
        event_time: start + int(2 * 60_000),
      };
    }
    return out;
  };
  gc();
  const before = process.memoryUsage().heapUsed;
  const windows = Array.from({ length: PARTITIONS }, () => new PartitionWindows(definition));
  const open = () => windows.reduce((n, w) => n + w.openWindowCount(), 0);
  let events = 0;
  let cpuMicros = 0;
  // Batches shrink near the target so the state ends within a few partials of it.
  for (let left = partials; left > 0; left = partials - open()) {
    const todo = batch(Math.min(5_000, Math.max(1, left)));
    const t0 = process.cpuUsage();
    for (let i = 0; i < todo.length; i++) {
      const e = todo[i]!;
      // Nothing closes: the watermark stays before the first window.
      windows[(events + i) % PARTITIONS]!.add(e, e.event_time, start - 1);
    }
    events += todo.length;
    const t = process.cpuUsage(t0);
    cpuMicros += t.user + t.system;
  }
  gc();
  const after = process.memoryUsage();
  const openPartials = open();
  // The watermark passes the first minute's end plus lateness: about half the partials close at once, one
  // synchronous call per partition (the processor makes them all in one turn of its event loop).
  let closeMs = 0;
  let longestCloseMs = 0;
  let closedRows = 0;
  for (const w of windows) {
    const t0 = performance.now();
    closedRows += w.closeUpTo(start + 119_999).length;
    const ms = performance.now() - t0;
    closeMs += ms;
    longestCloseMs = Math.max(longestCloseMs, ms);
  }
  console.log(
    JSON.stringify({
      bench: 'window.memory',
      partials: openPartials,
      campaigns,
      events,
      eventsPerPartial: +(events / openPartials).toFixed(2),
      heapBytesPerPartial: Math.round((after.heapUsed - before) / openPartials),
      heapUsedMb: +(after.heapUsed / 2 ** 20).toFixed(1),
      rssMb: +(after.rss / 2 ** 20).toFixed(1),
      cpuNsPerEvent: Math.round((cpuMicros * 1000) / events),
      closedRows,
      closeMs: Math.round(closeMs),
      longestCloseMs: Math.round(longestCloseMs),
    }),
  );
}

const memoryAt = process.argv.indexOf('--memory');
if (memoryAt >= 0) {
  for (const n of process.argv.slice(memoryAt + 1)) benchMemory(Number(n));
} else {
  const n = Number(process.argv[2] ?? 1_000_000);
  const events = generate(n);
  benchPartitionWindows(events);
  benchOperator(events, 6);
}
