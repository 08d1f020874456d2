/**
 * Throughput of the window engine alone (no Kafka, no services): 1M synthetic
 * reference events through 1-minute tumbling windows per (event_type,
 * campaign_id) with count, distinct users and sum of amount.
 *
 *   npx tsx bench/window-engine.ts [events]
 *
 * Prints one JSON line per measurement. Events are generated before the clock
 * starts, so only the engine is measured. Not a test: timed numbers live here.
 */
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

const n = Number(process.argv[2] ?? 1_000_000);
const events = generate(n);
benchPartitionWindows(events);
benchOperator(events, 6);
