import { DLQ_HEADERS, headerString } from '../../src/dlq';
import { EVENT_COUNTS_PARTIAL } from '../../streams/event-counts/tables';
import { DATABASE, TOPIC, World, type SimProcess } from './world';
import { encode, readerSchema, SCHEMA_ID, type SimEvent } from './workload';

/**
 * Review probes of the rows-only flush written beside a committing checkpoint ("flush beside",
 * runner.maybeFlushBeside). Each spec pins one way to break a promise down on the simulation's models.
 */

const START = Date.UTC(2026, 0, 1, 12, 0, 0);
const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const event = (n: number, t: number, type = 'view'): SimEvent => ({
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

function world(partitions: number): World {
  const w = new World(1, START, partitions);
  w.registry.register(SCHEMA_ID, readerSchema);
  return w;
}

function produceAt(w: World, partition: number, atMs: number, e: SimEvent): void {
  w.scheduler.at(w.root, atMs, () => {
    w.kafka.produce(TOPIC, partition, {
      timestamp: w.scheduler.now(),
      key: Buffer.from(e.event_id),
      value: encode(e, SCHEMA_ID),
      headers: {},
    });
  });
}

async function finish(w: World): Promise<void> {
  for (const p of w.processes.filter((q) => q.owner.alive)) await w.drive(w.stop(p));
  const bounded = await w.drive(w.start({ bounded: true }));
  const outcome = await w.drive(bounded.done);
  if (outcome instanceof Error) throw outcome;
}

/** The runner's beside flush in flight, if any (private; read for fault injection only). */
const besideOf = (p: SimProcess): Promise<void> | undefined =>
  (p.runner as unknown as { flushingBeside?: Promise<void> }).flushingBeside;

const GROUP = 'sluice.event-counts';

describe('flush beside a committing checkpoint (review probes)', () => {
  /**
   * One partition, an event every 100 ms, every event of a type ClickHouse refuses (its raw row and its
   * window partial are dead letters), a checkpoint as soon as a row waits, and each save of window state
   * taking 2 s: a rows-only flush runs beside most commits. Once, a beside flush writes events_raw (its
   * rows refused: their dead letters are deferred to the partition) and then fails retriably on the
   * partials table. Its checkpoint goes to `unwritten` with no record of the tables it finished, and the
   * next checkpoint writes events_raw again: refused again, a second dead letter of the same record.
   */
  it('a beside flush that fails after a table whose rows were refused: each refused record is in .dlq once', async () => {
    const w = world(1);
    w.faults.refusedEventTypes.add('refused');
    for (let s = 1; s <= 1500; s++) produceAt(w, 0, s * 100, event(s, START + s * 100, 'refused'));
    w.faults.stateSaveMs = 2000;
    const p = await w.drive(
      w.start({ processing: { maxPendingRows: 1, flushIntervalMs: 100, commitIntervalMs: 1000 } }),
    );
    const inner = w.clickhouse.beforeInsert!;
    let flush: Promise<void> | undefined;
    let refusedRaw = false;
    let injected = false;
    w.clickhouse.beforeInsert = async (table, rows) => {
      const beside = besideOf(p);
      if (beside !== flush) {
        flush = beside;
        refusedRaw = false;
      }
      if (!injected && beside && table === EVENT_COUNTS_PARTIAL.name && refusedRaw) {
        injected = true;
        throw Object.assign(new Error('Code: 210. DB::NetException: Connection refused'), { code: '210' });
      }
      try {
        await inner(table, rows);
      } catch (err) {
        if (beside && table === 'events_raw') refusedRaw = true;
        throw err;
      }
    };
    await w.scheduler.runUntil(START + 160_000);
    await finish(w);
    expect(injected).toBe(true);
    const dlq = w.kafka.topics.get(`${TOPIC}.dlq`)?.[0] ?? [];
    const raw = dlq
      .filter((d) => headerString(d.headers, 'sluice.dlq.kind') !== 'window-partial')
      .map((d) => headerString(d.headers, DLQ_HEADERS.sourceOffset));
    const twice = raw.filter((o, i) => raw.indexOf(o) !== i);
    expect({ records: new Set(raw).size, twice }).toEqual({ records: 1500, twice: [] });
  });
});
