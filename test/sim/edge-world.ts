import { DLQ_HEADERS, headerString } from '../../src/dlq';
import type { PartitionTransactions, SideRecord } from '../../src/kafka/group';
import { EVENT_COUNTS_PARTIAL } from '../../streams/event-counts/tables';
import { DATABASE, TOPIC, World, type SimProcess } from './world';
import { encode, LATE_SCHEMA_ID, readerSchema, SCHEMA_ID, type SimEvent } from './workload';

/**
 * What the edge specs share: one world per scenario, events produced at set simulated times, and the
 * end every seeded scenario has too.
 */

export const START = Date.UTC(2026, 0, 1, 12, 0, 0);
export const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
export const event = (n: number, t: number, type = 'view'): SimEvent => ({
  event_id: uuid(n),
  event_type: type,
  user_id: `u${n}`,
  campaign_id: 'c1',
  ad_id: null,
  event_time: t,
  amount: null,
  properties: {},
  channel: 'web',
});

export function world(partitions: number): World {
  const w = new World(1, START, partitions);
  w.registry.register(SCHEMA_ID, readerSchema);
  return w;
}

/** Produces `e` to `partition` at simulated time START + atMs (its record timestamp). */
export function produceAt(w: World, partition: number, atMs: number, e: SimEvent): void {
  w.scheduler.at(w.root, atMs, () => {
    w.kafka.produce(TOPIC, partition, {
      timestamp: w.scheduler.now(),
      key: Buffer.from(e.event_id),
      value: encode(e, SCHEMA_ID),
      headers: {},
    });
  });
}

/**
 * Produces event `n` to `partition` at START + atMs, written with LATE_SCHEMA_ID (unknown to the registry
 * until registered), its record and event stamped `stampedAt` (when produced, unless given: a producer's
 * clock ahead).
 */
export function produceLateSchemaAt(w: World, partition: number, atMs: number, n: number, stampedAt?: number): void {
  w.scheduler.at(w.root, atMs, () => {
    const t = stampedAt ?? w.scheduler.now();
    w.kafka.produce(TOPIC, partition, {
      timestamp: t,
      key: Buffer.from(`late-${n}`),
      value: encode(event(n, t), LATE_SCHEMA_ID),
      headers: {},
    });
  });
}

/** Stops every live member and runs a bounded run to the end, as the seeded scenarios end. */
export async function finish(w: World): Promise<void> {
  for (const p of w.processes.filter((q) => q.owner.alive)) await w.drive(w.stop(p));
  const bounded = await w.drive(w.start({ bounded: true }));
  const outcome = await w.drive(bounded.done);
  if (outcome instanceof Error) throw outcome;
}

/**
 * One partition, an event every 100 ms stamped with its time, a checkpoint as soon as a row waits, a
 * commit every second, and each save of window state taking `saveMs`: a commit is saving state most of
 * the time, and rows are flushed beside it. [12:00, 12:01) closes when the record stamped 12:02:00 is
 * read (30 s of out-of-orderness and 30 s of lateness), at t+120 s. With `refused`, ClickHouse refuses
 * every event's rows (each a dead letter).
 */
export async function savingStateMostOfTheTime(
  saveMs: number,
  { refused = false } = {},
): Promise<{ w: World; p: SimProcess }> {
  const w = world(1);
  const type = refused ? 'refused' : 'view';
  if (refused) w.faults.refusedEventTypes.add(type);
  for (let s = 1; s <= 1500; s++) produceAt(w, 0, s * 100, event(s, START + s * 100, type));
  w.faults.stateSaveMs = saveMs;
  const p = await w.drive(w.start({ processing: { maxPendingRows: 1, flushIntervalMs: 100, commitIntervalMs: 1000 } }));
  return { w, p };
}

/** Records in `<topic>.late`. */
export const lateCount = (w: World): number => w.kafka.topics.get(`${TOPIC}.late`)?.[0]?.length ?? 0;

/** The (partition, minute index) key of a window, as `laggingPartitionWorkload` counts them. */
const windowKey = (partition: unknown, windowStartSeconds: unknown): string =>
  `p${String(partition)}@m${(Number(windowStartSeconds) * 1000 - START) / 60_000}`;

/** Per (partition, minute index): events counted in the partials table as FINAL reads it, where they differ from `expected`. */
export function windowDiffs(
  w: World,
  expected: Map<string, number>,
): Record<string, { got: number; expected: number }> {
  const got = new Map<string, number>();
  for (const r of w.clickhouse.final(DATABASE, EVENT_COUNTS_PARTIAL.name)) {
    const k = windowKey(r.source_partition, r.window_start);
    got.set(k, (got.get(k) ?? 0) + Number(r.events));
  }
  const diffs: Record<string, { got: number; expected: number }> = {};
  for (const [k, e] of expected) if ((got.get(k) ?? 0) !== e) diffs[k] = { got: got.get(k) ?? 0, expected: e };
  return diffs;
}

/** The (partition, minute) windows with a row in the partials table now. */
export function windowsWritten(w: World): Set<string> {
  const out = new Set<string>();
  for (const r of w.clickhouse.final(DATABASE, EVENT_COUNTS_PARTIAL.name))
    out.add(windowKey(r.source_partition, r.window_start));
  return out;
}

/**
 * Three partitions, an event every `everyMs` each for `seconds`. Partitions 0 and 1 are on time. Partition
 * 2 is 45 s behind in event time, and every tenth of its events is 50 s further back (95 s behind its
 * record: within 30 s of disorder plus 30 s of lateness, so never late in a failure-free run). Returns the
 * expected events per (partition, minute): a lagging partition released at another's watermark by mistake
 * turns its stragglers late.
 */
export function laggingPartitionWorkload(w: World, { everyMs = 100, seconds = 300 } = {}): Map<string, number> {
  const expected = new Map<string, number>();
  const count = (p: number, t: number) => {
    const k = `p${p}@m${Math.floor((t - START) / 60_000)}`;
    expected.set(k, (expected.get(k) ?? 0) + 1);
  };
  let n = 0;
  for (let s = 1; s <= (seconds * 1000) / everyMs; s++) {
    const at = s * everyMs;
    for (const p of [0, 1]) {
      produceAt(w, p, at, event(++n, START + at));
      count(p, START + at);
    }
    const t2 = START + at - 45_000 - (s % 10 === 0 ? 50_000 : 0);
    if (t2 >= START) {
      produceAt(w, 2, at, event(++n, t2));
      count(2, t2);
    }
  }
  return expected;
}

/**
 * Two partitions, an event every 100 ms each for 180 s stamped with its time, and a record of a schema
 * the registry never learns every second on each (360 dead letters): nearly every checkpoint has a
 * verdict to record. Returns the events expected per (partition, minute index).
 */
export function twoPartitionsWithUnknownSchemas(w: World): Map<string, number> {
  const expected = new Map<string, number>();
  let n = 0;
  for (let s = 1; s <= 1800; s++) {
    const t = START + s * 100;
    for (const p of [0, 1]) {
      produceAt(w, p, s * 100, event(++n, t));
      const k = `p${p}@m${Math.floor((t - START) / 60_000)}`;
      expected.set(k, (expected.get(k) ?? 0) + 1);
    }
  }
  for (let i = 1; i <= 180; i++) for (const p of [0, 1]) produceLateSchemaAt(w, p, i * 1000 + 50, 10_000 + 2 * i + p);
  return expected;
}

/** The dead letters in `<topic>.dlq` as `partition@offset` of their source, and those published more than once. */
export function deadLetterSources(w: World): { distinct: number; twice: string[] } {
  const dlq = (w.kafka.topics.get(`${TOPIC}.dlq`) ?? []).flat();
  const keys = dlq.map(
    (d) =>
      `${headerString(d.headers, DLQ_HEADERS.sourcePartition)}@${headerString(d.headers, DLQ_HEADERS.sourceOffset)}`,
  );
  return { distinct: new Set(keys).size, twice: keys.filter((k, i) => keys.indexOf(k) !== i) };
}

/** What the runner's pending checkpoint holds when a partition commit is asked for. */
export interface PendingCheckpoint {
  /** It carries rows of closed windows. */
  closing: boolean;
  /** Its rows are written: a commit asked for now is its regular commit, not a verdict commit. */
  rowsWritten: boolean;
  verdicts: number;
  offsets: number;
}

/**
 * Puts `intercept` in front of the process's partition commits: it gets each commit's arguments, what the
 * pending checkpoint holds, and the real commit to call (or not) before it resolves or throws.
 */
export function interceptCommits(
  proc: SimProcess,
  intercept: (
    call: { partition: number; records: SideRecord[] },
    pending: PendingCheckpoint,
    commit: () => Promise<void>,
  ) => Promise<void>,
): void {
  const runner = proc.runner as unknown as {
    transactions: PartitionTransactions;
    pending?: {
      checkpoint: { rows: Map<string, { rows: unknown[] }>; verdicts: unknown[]; offsets: unknown[] };
      progress: { rows: boolean };
    };
  };
  const transactions = runner.transactions;
  const commit = transactions.commit.bind(transactions);
  transactions.commit = (partition, records, offset) => {
    const pending = runner.pending;
    return intercept(
      { partition, records },
      {
        closing: (pending?.checkpoint.rows.get(EVENT_COUNTS_PARTIAL.name)?.rows.length ?? 0) > 0,
        rowsWritten: pending?.progress.rows ?? false,
        verdicts: pending?.checkpoint.verdicts.length ?? 0,
        offsets: pending?.checkpoint.offsets.length ?? 0,
      },
      () => commit(partition, records, offset),
    );
  };
}

/** Whether `<topic>.dlq` holds dead letters of window partials, and those published more than once. */
export function windowPartialDeadLetters(w: World): { some: boolean; twice: string[] } {
  const dlq = w.kafka.topics.get(`${TOPIC}.dlq`)?.[0] ?? [];
  const partials = dlq
    .filter((d) => headerString(d.headers, 'sluice.dlq.kind') === 'window-partial')
    .map(
      (d) =>
        `${headerString(d.headers, DLQ_HEADERS.sourcePartition)} ${headerString(d.headers, 'sluice.dlq.window.start')} ${d.key?.toString()}`,
    );
  return { some: partials.length > 0, twice: partials.filter((k, i) => partials.indexOf(k) !== i) };
}
