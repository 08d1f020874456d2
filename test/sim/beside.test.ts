import { DLQ_HEADERS, headerString } from '../../src/dlq';
import { EVENT_COUNTS_PARTIAL } from '../../streams/event-counts/tables';
import { DATABASE, TOPIC, type SimProcess, type World } from './world';
import { event, finish, produceAt, savingStateMostOfTheTime, START, world } from './edge-world';

/**
 * Probes of the rows-only flush written beside a committing checkpoint (runner.maybeFlushBeside), from
 * a review that broke its first version: each spec pins one way it broke a promise, on the simulation's
 * models.
 */

/** Every one of the 1500 records (all of a refused type) is in .dlq, none twice. */
function expectEachRecordDeadLetteredOnce(w: World): void {
  const dlq = w.kafka.topics.get(`${TOPIC}.dlq`)?.[0] ?? [];
  const raw = dlq
    .filter((d) => headerString(d.headers, 'sluice.dlq.kind') !== 'window-partial')
    .map((d) => headerString(d.headers, DLQ_HEADERS.sourceOffset));
  const twice = raw.filter((o, i) => raw.indexOf(o) !== i);
  expect({ records: new Set(raw).size, twice }).toEqual({ records: 1500, twice: [] });
}

/** The runner's beside flush in flight, if any (private; read for fault injection only). */
const besideOf = (p: SimProcess): Promise<void> | undefined =>
  (p.runner as unknown as { flushingBeside?: Promise<void> }).flushingBeside;

const GROUP = 'sluice.event-counts';

describe('flush beside a committing checkpoint (first review probes)', () => {
  /**
   * One partition, an event every 100 ms, every event of a type ClickHouse refuses (its raw row and its
   * window partial are dead letters), a checkpoint as soon as a row waits, and each save of window state
   * taking 2 s: a rows-only flush runs beside most commits. Once, a beside flush writes events_raw (its
   * rows refused: their dead letters are deferred to the partition) and then fails retriably on the
   * partials table. Before the fix its rows went to the next checkpoint with no record of the tables it
   * had finished, which wrote events_raw again: refused again, a second dead letter of the same record
   * (1198, 1199). The flush is now retried with its own progress.
   */
  it('a beside flush that fails after a table whose rows were refused: each refused record is in .dlq once', async () => {
    const { w, p } = await savingStateMostOfTheTime(2000, { refused: true });
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
    expectEachRecordDeadLetteredOnce(w);
  });
});

describe('flush beside: a failure retrying cannot fix (first review probes)', () => {
  /**
   * As above, events of an accepted type. Once, a beside flush is refused for good (a non-retriable
   * ClickHouse error: here ACCESS_DENIED, as while a grant is being changed). The stream fails (done
   * rejects). Before the fix the runner dropped that flush while its timer went on: 3.4 s later a commit
   * passed the records whose rows were in it (598, 599), and whoever restarted the stream never wrote
   * them. The flush is now kept and tried again before any later checkpoint, as a failed commit is.
   */
  it('a beside flush refused for good: no offset is committed past records whose rows never reached ClickHouse', async () => {
    const { w, p } = await savingStateMostOfTheTime(2000);
    const inner = w.clickhouse.beforeInsert!;
    let failedAt: number | undefined;
    w.clickhouse.beforeInsert = async (table, rows) => {
      if (failedAt === undefined && besideOf(p) && w.scheduler.now() >= START + 60_000) {
        failedAt = w.scheduler.now();
        throw Object.assign(new Error('Code: 497. DB::Exception: sim: Not enough privileges. (ACCESS_DENIED)'), {
          code: '497',
        });
      }
      await inner(table, rows);
    };
    await w.scheduler.runUntil(START + 90_000);
    expect(failedAt).toBeDefined();
    expect(await Promise.race([p.done, Promise.resolve('running')])).toBeInstanceOf(Error);
    const committed = Number(w.kafka.committed(GROUP).get(0)?.offset ?? 0);
    const written = new Set(w.clickhouse.final(DATABASE, 'events_raw').map((r) => Number(r.kafka_offset)));
    const missing: number[] = [];
    for (let o = 0; o < committed; o++) if (!written.has(o)) missing.push(o);
    expect({ committed: committed > 0, missing }).toEqual({ committed: true, missing: [] });
  });
});

describe('flush beside while Redis loses state (first review probes)', () => {
  /**
   * Every event of a refused type (each record's raw row is a dead letter). While a commit saves window
   * state (2 s), ClickHouse goes down and slows to 500 ms an insert, and Redis crashes and restarts: the
   * save finds Redis restarted (StateLostError) and restoreAll restores the partition. A beside flush
   * still in flight then fails. Before the fix its rows (of the old incarnation) went into the next
   * checkpoint of the new incarnation, whose commit published their refusals as dead letters, while the
   * new incarnation read the same records again and dead-letters them itself (598, 599 twice). The flush
   * is now retried as itself: its refusals are deferred to its own incarnation, which is gone.
   */
  it('a beside flush that fails after restoreAll: each refused record is in .dlq once', async () => {
    const { w, p } = await savingStateMostOfTheTime(2000, { refused: true });
    const runner = p.runner as unknown as {
      pending?: { progress: { rows: boolean; snapshots: boolean } };
    };
    let armedAt: number | undefined;
    let crashedAt: number | undefined;
    w.whenFirst(
      60_000,
      20_000,
      () => runner.pending?.progress.rows === true && !runner.pending.progress.snapshots,
      () => {
        armedAt = w.scheduler.now();
        w.faults.sinkLatencyMs = 500;
        w.faults.sinkDownUntil = w.scheduler.now() + 3000;
        w.scheduler.at(w.root, 3000, () => (w.faults.sinkLatencyMs = 5));
        // Once a beside flush has started (it fails 500 ms later), Redis crashes and restarts.
        const before = besideOf(p);
        w.whenFirst(
          1,
          2000,
          () => besideOf(p) !== undefined && besideOf(p) !== before,
          () => {
            crashedAt = w.scheduler.now();
            w.redis.crash(1000);
            w.scheduler.at(w.root, 100, () => w.redis.restart());
          },
        );
      },
    );
    await w.scheduler.runUntil(START + 160_000);
    await finish(w);
    expect(armedAt).toBeDefined();
    expect(crashedAt).toBeDefined();
    expectEachRecordDeadLetteredOnce(w);
  });
});

/**
 * From 60 s, once a commit saves state with a flush beside it in flight, `fault` strikes; by 150 s the
 * member has read and committed nearly all of the 1500 events, with no checkpoint left failing.
 */
async function readingGoesOnAfter(fault: (w: World, p: SimProcess) => void): Promise<void> {
  const { w, p } = await savingStateMostOfTheTime(2000);
  const runner = p.runner as unknown as { pending?: { progress: { rows: boolean; snapshots: boolean } } };
  let armedAt: number | undefined;
  w.whenFirst(
    60_000,
    20_000,
    () => runner.pending?.progress.rows === true && !runner.pending.progress.snapshots && besideOf(p) !== undefined,
    () => {
      armedAt = w.scheduler.now();
      fault(w, p);
    },
  );
  await w.scheduler.runUntil(START + 150_000);
  expect(armedAt).toBeDefined();
  const committed = Number(w.kafka.committed(GROUP).get(0)?.offset ?? 0);
  expect({ committed: committed >= 1400, checkpointPending: p.runner.status().checkpointPending }).toEqual({
    committed: true,
    checkpointPending: false,
  });
  await finish(w);
}

describe('flush beside, then the partition is restored (second review probes)', () => {
  /**
   * One partition, an event every 100 ms, each save of window state taking 2 s. At 60 s, while a commit
   * (C1) saves state, the beside flush beside it fails (ClickHouse down for 50 ms), and C1's transaction
   * fails too: C1 restores the partition (restoreAgain) and ends without throwing, so checkpointDone
   * clears the schedule's failing flag and afterCheckpoint sets it again for the failed flush. The flush
   * is retried and lands, but the restored incarnation has nothing dirty (it resumes at the committed
   * offset) and no rows: runCheckpoint finds the task idle, calls checkpointSkipped, and nothing ever
   * calls checkpointDone again. schedule.retrying stays true for good, so every batch pauses its
   * partition again (onBatch) and tick never resumes it: with every service healthy the member read
   * nothing more and committed nothing more. Fixed: the flush's retry landing clears the flag.
   */
  it('a failed beside flush retried after its commit restored the partition: reading goes on', async () => {
    // Every fault over by 63 s.
    await readingGoesOnAfter((w) => {
      w.faults.sinkDownUntil = w.scheduler.now() + 50;
      w.kafka.transactionFailure = 1;
      w.scheduler.at(w.root, 2500, () => (w.kafka.transactionFailure = 0));
    });
  });
});

describe('flush beside, then the member is expelled (second review probes)', () => {
  /**
   * As above, with faults the seeded scenarios also inject and no Kafka transaction failure: at 60 s,
   * while a commit saves state and a beside flush is in flight, ClickHouse goes down for 15 s (the flush
   * fails and keeps failing) and the coordinator does not hear the member for 12 s (it is expelled and
   * joins again, restoring its partition: a new incarnation with nothing dirty). When ClickHouse is back
   * the flush's retry lands, the task is idle, runCheckpoint only skips, and schedule.failing is never
   * cleared: the member stayed paused for good. Fixed as above.
   */
  it('a failed beside flush retried after the member was expelled and joined again: reading goes on', async () => {
    // Every fault over by 75 s.
    await readingGoesOnAfter((w, p) => {
      w.faults.sinkDownUntil = w.scheduler.now() + 15_000;
      w.kafka.consumers.get(p.owner)!.silentUntil = w.scheduler.now() + 12_000;
    });
  });
});

describe('flush beside at the end of a bounded run (second review probes)', () => {
  /**
   * A bounded run over 1500 events already in the topic (ClickHouse answering in 300 ms), a checkpoint as soon as a row waits, each save
   * of window state taking 2 s. It reaches its end while a commit (C1) saves state with a beside flush in
   * flight (finishBounded: stopping). Then ClickHouse refuses for 400 ms (the flush fails: failing set) and
   * Redis restarts without losing a write (C1's save finds it restarted: StateLostError while stopping, so
   * the partition goes to lostWhileStopping and nothing clears failing). flushAll retries the flush (it
   * lands), commits the rest (StateLostError again, lost again), finds the task idle and returns;
   * goBackToLost sets stopping false and restores the partition at its committed offset (nothing dirty).
   * schedule.failing is still set: every batch pauses again and the run never reaches its end, so done
   * never settled (a bounded replay or `npm start` hung with every service healthy). Fixed: a commit
   * dropped while stopping clears the flag, as restoreAll does.
   */
  it('a beside flush failing as a bounded run ends, with Redis restarting: the run still finishes', async () => {
    const w = world(1);
    for (let s = 1; s <= 1500; s++) produceAt(w, 0, 1, event(s, START + s * 100));
    await w.scheduler.runUntil(START + 1000);
    w.faults.stateSaveMs = 2000;
    w.faults.sinkLatencyMs = 300; // (with 1500 events, the end comes while a commit saves state, a flush beside it)
    const p = await w.drive(
      w.start({ bounded: true, processing: { maxPendingRows: 1, flushIntervalMs: 100, commitIntervalMs: 1000 } }),
    );
    const runner = p.runner as unknown as {
      stopping: boolean;
      pending?: { progress: { rows: boolean; snapshots: boolean } };
    };
    let armedAt: number | undefined;
    w.whenFirst(
      0,
      600_000,
      () =>
        runner.stopping &&
        runner.pending?.progress.rows === true &&
        !runner.pending.progress.snapshots &&
        besideOf(p) !== undefined,
      () => {
        armedAt = w.scheduler.now();
        w.faults.sinkDownUntil = w.scheduler.now() + 400;
        w.redis.crash(0);
        w.scheduler.at(w.root, 100, () => w.redis.restart());
      },
    );
    const outcome = await w
      .drive(
        p.done.then((d) => (d instanceof Error ? d.message : 'finished')),
        900_000,
      )
      .catch((err: Error) => err.message);
    expect(armedAt).toBeDefined();
    expect(outcome).toBe('finished');
    expect(Number(w.kafka.committed(GROUP).get(0)?.offset ?? 0)).toBe(1500);
  });
});
