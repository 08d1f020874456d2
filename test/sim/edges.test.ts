import { LATE_HEADERS, headerString } from '../../src/dlq';
import { EVENT_COUNTS_PARTIAL } from '../../streams/event-counts/tables';
import { snapshotsOf } from '../../src/state';
import { DATABASE, KEY_PREFIX, TOPIC, World, stream } from './world';
import { event, finish, produceAt, savingStateMostOfTheTime, START, uuid, world } from './edge-world';
import { shadowReplay } from './scenario';
import { encode, SCHEMA_ID } from './workload';

/**
 * Edge paths of the runtime, each as one deterministic scenario on the
 * simulation's models (the seeded runs in sim.test.ts find such paths by
 * chance; these pin them down).
 */

const lateOf = (w: World, partition: number) =>
  (w.kafka.topics.get(`${TOPIC}.late`)?.[0] ?? []).filter(
    (r) => headerString(r.headers, LATE_HEADERS.sourcePartition) === String(partition),
  );
const partialEvents = (w: World, partition: number, windowStart: number) =>
  w.clickhouse
    .final(DATABASE, EVENT_COUNTS_PARTIAL.name)
    .filter((r) => Number(r.source_partition) === partition && Number(r.window_start) * 1000 === windowStart)
    .reduce((n, r) => n + Number(r.events), 0);

describe('edge paths of the runtime, on simulated time', () => {
  it('an event judged late after an idle release, then a crash before the commit, ends in .late or in its window, never both', async () => {
    for (const eAt of [120_100, 120_700, 121_500, 123_000]) {
      const w = world(2);
      // Partition 0 moves on in event time; partition 1 has one event of [12:00, 12:01), then is idle
      // (its window is released at the stream watermark), then gets a second event of that window.
      for (let s = 1; s <= 180; s++) produceAt(w, 0, s * 1000, event(1000 + s, START + s * 1000));
      produceAt(w, 1, 1000, event(1, START + 1000));
      produceAt(w, 1, eAt, event(2, START + 50_000));
      const p1 = await w.drive(w.start());
      // SIGKILL right after the member processed the second event, before anything committed it.
      w.whenFirst(
        eAt,
        10_000,
        () =>
          p1.runner.status().positions[1] === '2' &&
          Number(w.kafka.committed('sluice.event-counts').get(1)?.offset ?? 0) < 2,
        () => {
          w.kill(p1);
          void w.start();
        },
      );
      await w.scheduler.runUntil(START + 240_000);
      await finish(w);
      const late = lateOf(w, 1).length;
      const counted = partialEvents(w, 1, START);
      expect({
        eAt,
        verdict: late === 1 ? 'late' : counted === 2 ? 'counted' : `neither or both (late ${late}, counted ${counted})`,
      }).toEqual({
        eAt,
        verdict: late === 1 && counted === 1 ? 'late' : late === 0 && counted === 2 ? 'counted' : 'invalid',
      });
    }
  });

  /**
   * As in the first edge path: partition 1's window [12:00, 12:01) is released at the stream watermark
   * (partition 1 idle) at about 12:02:00, and its second event, arriving at eAt, is late. Right after the
   * commit of the late event (its late event published with it), Redis crashes and loses its last second:
   * the snapshot that commit names is gone, and the one before it (taken before the release, when the commit
   * follows the release within one commit interval) is restored; `during` happens while the member re-reads
   * from it (`extra` on-time records after the late event make that re-read take a while).
   */
  async function releaseThenRedisLoss(eAt: number, during: string, extra: number): Promise<string> {
    const w = world(2);
    const GROUP = `sluice.${stream.name}`;
    for (let s = 1; s <= 180; s++) produceAt(w, 0, s * 1000, event(1000 + s, START + s * 1000));
    produceAt(w, 1, 1000, event(1, START + 1000));
    produceAt(w, 1, eAt, event(2, START + 50_000));
    for (let k = 0; k < extra; k++) produceAt(w, 1, eAt + 100 + k, event(5000 + k, START + 150_000 + k));
    const first = await w.drive(w.start());
    w.whenFirst(
      eAt,
      20_000,
      () => Number(w.kafka.committed(GROUP).get(1)?.offset ?? 0) >= 2,
      () => {
        w.redis.crash(1000);
        w.scheduler.at(w.root, 300, () => {
          w.redis.restart();
          if (during === 'a second member joins') void w.start();
          if (during === 'the member is killed')
            w.whenFirst(
              1,
              30_000,
              () => first.runner.status().positions[1] !== undefined,
              () => {
                w.kill(first);
                void w.start();
              },
            );
          if (during === 'Redis crashes again')
            w.scheduler.at(w.root, 2500, () => {
              w.redis.crash(1000);
              w.scheduler.at(w.root, 300, () => w.redis.restart());
            });
        });
      },
    );
    await w.scheduler.runUntil(START + 240_000);
    await finish(w);
    const late = lateOf(w, 1).length;
    const counted = partialEvents(w, 1, START);
    return late === 1 && counted === 1
      ? 'late'
      : late === 0 && counted === 2
        ? 'counted'
        : `late ${late}, counted ${counted}`;
  }

  // Before idle releases were recorded in the commit: 'late 1, counted 2' for 12:02:00.1, 12:02:00.7 and
  // 12:02:01.5. The older snapshot predated the release, and the re-read (the partition is not idle then)
  // judged the event on time, while its late event had been published with the commit. The commit now
  // names the release, and the re-read applies it at its offset.
  it('an event judged late after an idle release and committed, then Redis loses its last second: the re-read from the older snapshot does not count it in its window too', async () => {
    const verdicts: string[] = [];
    for (const eAt of [120_100, 120_700, 121_500, 123_000])
      verdicts.push(await releaseThenRedisLoss(eAt, 'nothing', 0));
    // The event was late every time (the release happened: the case is exercised, not avoided), never also counted.
    expect(verdicts).toEqual(['late', 'late', 'late', 'late']);
  });

  it.each(['a second member joins', 'the member is killed', 'Redis crashes again'])(
    'the same, and while the partition re-reads %s: never both, never neither',
    async (during) => {
      const verdicts: string[] = [];
      for (const eAt of [120_100, 120_700, 121_500]) verdicts.push(await releaseThenRedisLoss(eAt, during, 300));
      expect(verdicts.filter((v) => v !== 'late' && v !== 'counted')).toEqual([]);
      expect(verdicts).toContain('late');
    },
  );

  // Before rows were written beside a commit's state phase, they waited for it: 1.3, 0.8 and 0.6 s here.
  it('the rows of a minute closing while a commit saves window state are written at once, not after that commit', async () => {
    const delays: (number | string)[] = [];
    for (const saveMs of [1500, 3000, 5000]) {
      const { w } = await savingStateMostOfTheTime(saveMs);
      let visibleAt: number | undefined;
      w.whenFirst(
        START + 120_000 - w.scheduler.now(),
        10_000,
        () => partialEvents(w, 0, START) === 599, // stamped 0.1 s to 59.9 s
        () => (visibleAt = w.scheduler.now()),
      );
      await w.scheduler.runUntil(START + 131_000);
      const delay = visibleAt === undefined ? Infinity : visibleAt - (START + 120_000);
      delays.push(delay < 500 ? 'prompt' : delay);
    }
    expect(delays).toEqual(['prompt', 'prompt', 'prompt']);
  });

  it('rows written beside a commit that ClickHouse refuses for a while are written by the next checkpoint: every window exact', async () => {
    const outcomes: string[] = [];
    for (const outageAt of [30_050, 45_420, 61_730, 88_910, 120_040]) {
      const { w } = await savingStateMostOfTheTime(2000);
      w.scheduler.at(w.root, START + outageAt - w.scheduler.now(), () => {
        w.faults.sinkDownUntil = w.scheduler.now() + 1500;
      });
      await w.scheduler.runUntil(START + 160_000);
      await finish(w);
      const minutes = [0, 1, 2].map((m) => partialEvents(w, 0, START + m * 60_000));
      outcomes.push(`${minutes.join('/')} late ${lateOf(w, 0).length}`);
    }
    // 1500 events stamped 0.1 s to 150.0 s: 599 in the first minute, 600 in the second, 301 in the third.
    expect(outcomes).toEqual(outcomes.map(() => '599/600/301 late 0'));
  });

  it('with a commit interval under a second (0: a commit at every flush), Redis losing its last second leaves a snapshot to restore', async () => {
    const outcomes: { crashAt: number; outcome: string }[] = [];
    for (const crashAt of [30_037, 30_411, 30_777]) {
      const w = world(1);
      for (let s = 1; s <= 600; s++) produceAt(w, 0, s * 100, event(s, START + s * 100));
      // `--commit-interval 0` is a documented value; commits then land every flush (here 100 ms).
      const p = await w.drive(w.start({ processing: { commitIntervalMs: 0, flushIntervalMs: 100 } }));
      w.scheduler.at(w.root, crashAt, () => {
        w.redis.crash(1000);
        w.scheduler.at(w.root, 300, () => w.redis.restart());
      });
      await w.scheduler.runUntil(START + 70_000);
      const outcome = await Promise.race([p.done, Promise.resolve('running')]);
      outcomes.push({ crashAt, outcome: outcome instanceof Error ? outcome.message : String(outcome) });
    }
    // Before the fallback was chosen by age (REDIS_LOSS_WINDOW_MS), both snapshots the last commit named were
    // written within the last second, both were lost, and the member stopped with StateMissingError ("window
    // state of events/0 for committed offset … is missing from Redis and no older snapshot is left").
    expect(outcomes).toEqual(outcomes.map(({ crashAt }) => ({ crashAt, outcome: 'running' })));
  });

  it('after a rebalance hands a partition over, Redis losing its last second leaves a snapshot to restore', async () => {
    const outcomes: { crashAfter: number; outcome: string }[] = [];
    for (const crashAfter of [300, 500, 700, 900]) {
      const w = world(1);
      for (let s = 1; s <= 600; s++) produceAt(w, 0, s * 100, event(s, START + s * 100));
      const processing = { commitIntervalMs: 0, flushIntervalMs: 100 };
      const p1 = await w.drive(w.start({ processing }));
      await w.scheduler.runUntil(START + 20_000);
      const p2 = await w.drive(w.start({ processing }));
      await w.scheduler.runUntil(START + 30_000);
      // p1 leaves: its last commit (the rebalance commit) names its newest snapshot, p2 restores that one at once.
      await w.drive(w.stop(p1));
      w.scheduler.at(w.root, crashAfter, () => {
        w.redis.crash(1000);
        w.scheduler.at(w.root, 300, () => w.redis.restart());
      });
      await w.scheduler.runUntil(START + 70_000);
      const outcome = await Promise.race([p2.done, Promise.resolve('running')]);
      outcomes.push({ crashAfter, outcome: outcome instanceof Error ? outcome.message : String(outcome) });
    }
    expect(outcomes).toEqual(outcomes.map(({ crashAfter }) => ({ crashAfter, outcome: 'running' })));
  });

  it('a bounded run whose final commit meets a Redis restart processes those partitions again and finishes, exact', async () => {
    const w = world(2);
    for (let i = 0; i < 40; i++)
      w.kafka.produce(TOPIC, i % 2, {
        timestamp: START,
        key: Buffer.from(uuid(i)),
        value: encode(event(i, START - 60_000 + i * 1000), SCHEMA_ID),
        headers: {},
      });
    const bounded = await w.drive(w.start({ bounded: true }));
    let restarted = false;
    const watch = () => {
      if (bounded.runner.status().stopping && !restarted) {
        w.redis.crash(0);
        w.redis.restart();
        restarted = true;
      }
      if (!restarted) w.scheduler.at(w.root, 1, watch);
    };
    w.scheduler.at(w.root, 1, watch);
    const outcome = await w.drive(bounded.done, 60_000); // before: it retried the same step forever
    expect(outcome).not.toBeInstanceOf(Error);
    expect(restarted).toBe(true);
    expect([...w.kafka.committed('sluice.event-counts')].map(([p, c]) => [p, c.offset])).toEqual([
      [0, '20'],
      [1, '20'],
    ]);
    expect(partialEvents(w, 0, START - 60_000) + partialEvents(w, 1, START - 60_000)).toBe(40); // 11:59:00..11:59:39
    expect(partialEvents(w, 0, START - 120_000)).toBe(0);
  });

  it('a live run after a bounded run of the same group counts the on-time events of windows the bounded run closed at its end', async () => {
    const w = world(1);
    // The bounded run reads up to 12:00:40 in event time: [12:00, 12:01) is open at its end, and it closes it anyway.
    for (let s = 0; s < 40; s++)
      w.kafka.produce(TOPIC, 0, {
        timestamp: START + s * 1000,
        key: Buffer.from(uuid(s)),
        value: encode(event(s, START + s * 1000), SCHEMA_ID),
        headers: {},
      });
    const bounded = await w.drive(w.start({ bounded: true }));
    expect(await w.drive(bounded.done)).not.toBeInstanceOf(Error);
    expect(partialEvents(w, 0, START)).toBe(40);
    // More events of that window arrive, on time for the stream (its watermark is at 12:00:09).
    for (let s = 40; s < 60; s++) produceAt(w, 0, 60_000 + s * 10, event(s, START + s * 1000));
    await w.drive(w.start());
    await w.scheduler.runUntil(START + 90_000);
    await finish(w);
    expect(lateOf(w, 0)).toHaveLength(0); // before: all 20 went to .late, the bounded run having committed the window closed
    expect(partialEvents(w, 0, START)).toBe(60);
  });

  it('records deleted past the committed offset (retention) are passed over: every partition reaches its end', async () => {
    const w = world(2);
    const produce = (from: number, to: number) => {
      for (let i = from; i < to; i++)
        w.kafka.produce(TOPIC, i % 2, {
          timestamp: START,
          key: Buffer.from(uuid(i)),
          value: encode(event(i, START - 60_000 + (i % 40) * 1000), SCHEMA_ID),
          headers: {},
        });
    };
    produce(0, 40);
    const first = await w.drive(w.start({ bounded: true, closeWindowsAtEnd: false }));
    expect(await w.drive(first.done)).not.toBeInstanceOf(Error);
    produce(40, 80);
    // Partition 0 was committed at 20; retention deletes its offsets 20..29 before the group reads them.
    w.kafka.deleteRecords(TOPIC, 0, 30);
    const second = await w.drive(w.start({ bounded: true }));
    expect(await w.drive(second.done, 60_000)).not.toBeInstanceOf(Error); // before: it sought back for ever
    expect([...w.kafka.committed('sluice.event-counts')].map(([p, c]) => [p, c.offset])).toEqual([
      [0, '40'],
      [1, '40'],
    ]);
    // Partition 0 counts its 10 first records and the 10 left of the second 20; partition 1 all 40.
    expect(partialEvents(w, 0, START - 60_000)).toBe(30);
    expect(partialEvents(w, 1, START - 60_000)).toBe(40);
  });

  it('a shadow replay planned while the live stream has written a window but not yet committed its last records keeps the live row', async () => {
    const w = world(1);
    // Window [12:00, 12:01) holds 59 events recorded in order, and one more recorded at 12:02:00.5, right
    // before the event that closes it (watermark 12:01:30.6 >= end + lateness): the live stream writes
    // its row at the next flush, and commits the late event's offset only at the next commit.
    for (let s = 1; s < 120; s++) produceAt(w, 0, s * 1000, event(s, START + s * 1000));
    produceAt(w, 0, 120_500, event(500, START + 50_500));
    produceAt(w, 0, 120_600, event(501, START + 120_600));
    await w.drive(w.start());
    const lateOffset = 119;
    let planned: { committed: number; outcome?: string } | undefined;
    const committed = () => Number(w.kafka.committed('sluice.event-counts').get(0)?.offset ?? 0);
    w.whenFirst(
      120_500,
      9_500,
      () => partialEvents(w, 0, START) === 60 && committed() <= lateOffset,
      () => {
        planned = { committed: committed() };
        void shadowReplay(w, START, 1).then((outcome) => (planned!.outcome = outcome));
      },
    );
    await w.scheduler.runUntil(START + 400_000);
    expect(planned?.committed).toBeLessThanOrEqual(lateOffset);
    expect(planned?.outcome).toMatch(/^shadow replay of \[12:00, \+1 min\): .*event_counts_1m_partial/);
    // The replay read the window up to the committed offset, without its late event: the live row,
    // written after that commit's snapshot, is newer and wins the swap (before: the replay's partial did).
    expect(partialEvents(w, 0, START)).toBe(60);
  });
  it('a commit that lands while a partition re-reads after an older snapshot keeps the committed offset: after it, no side record twice, windows exact', async () => {
    const w = world(1);
    const GROUP = `sluice.${stream.name}`;
    // 150 bursts a second apart, 50 records each: one undecodable (a dead letter); from the 130th on, one
    // event of [12:00, 12:01), closed by then (late); the rest on time. A commit every 5 s covers about
    // 250 records, more than a fetch returns (200): a re-read from the commit before takes several batches.
    const onTime = new Map<number, number>();
    let n = 0;
    for (let k = 1; k <= 150; k++) {
      const burst: { value: Buffer; key: Buffer }[] = [];
      for (let j = 0; j < 50; j++) {
        n += 1;
        if (j === 10) {
          burst.push({ key: Buffer.from(uuid(n)), value: Buffer.from('not an event') });
          continue;
        }
        const late = j === 20 && k >= 130;
        const t = late ? START + 1000 + k : START + k * 1000 - 50 + j;
        if (!late) {
          const minute = Math.floor((t - START) / 60_000) * 60_000 + START;
          onTime.set(minute, (onTime.get(minute) ?? 0) + 1);
        }
        burst.push({ key: Buffer.from(uuid(n)), value: encode(event(n, t), SCHEMA_ID) });
      }
      w.scheduler.at(w.root, k * 1000, () => {
        for (const r of burst) w.kafka.produce(TOPIC, 0, { timestamp: w.scheduler.now(), ...r, headers: {} });
      });
    }
    const p1 = await w.drive(w.start());
    const committed = () => w.kafka.committed(GROUP).get(0);
    // After the first commit from 12:02:15 on: Redis loses the snapshot it names (the one before survives),
    // and the member dies. Its successor restores the older snapshot and reads the records since again.
    let seen: string | undefined;
    let lost: { offset: bigint; snapshot: string } | undefined;
    let midway: { at: bigint; committedAfter?: bigint } | undefined;
    let p2: Awaited<ReturnType<World['start']>> | undefined;
    const watchCommit = () => {
      const c = committed();
      if (seen === undefined) seen = c?.metadata ?? '';
      else if (c && c.metadata !== seen) {
        const [newest, older] = snapshotsOf(c.metadata, 0)!;
        expect(older).toBeDefined();
        const key = w.redis.keys(KEY_PREFIX).find((k) => k.includes(':state:') && k.endsWith(`:${TOPIC}:0`))!;
        w.redis.run('hdel', [key, newest!]);
        lost = { offset: BigInt(c.offset), snapshot: newest! };
        w.kill(p1);
        void w.start().then((p) => {
          p2 = p;
          w.scheduler.at(w.root, 1, watchReread);
        });
        return;
      }
      w.scheduler.at(w.root, 1, watchCommit);
    };
    // SIGTERM in the middle of the re-read: the member's last commit lands there, below the committed offset.
    const watchReread = () => {
      const at = p2!.runner.status().positions[0];
      if (at !== undefined && BigInt(at) < lost!.offset) {
        midway = { at: BigInt(at) };
        void w.stop(p2!).then(() => {
          midway!.committedAfter = BigInt(committed()!.offset);
          void w.start();
        });
        return;
      }
      if (w.scheduler.now() < START + 170_000) w.scheduler.at(w.root, 1, watchReread);
    };
    w.scheduler.at(w.root, 135_000, watchCommit);
    await w.scheduler.runUntil(START + 200_000);
    await finish(w);

    expect(lost).toBeDefined();
    expect(midway?.at).toBeDefined();
    // Before: the commit moved Kafka's offset back to where the re-read was, and the next owner published
    // the dead letters and late events of the records between a second time.
    expect(midway!.committedAfter).toBe(lost!.offset);
    const late = lateOf(w, 0).map((r) => headerString(r.headers, LATE_HEADERS.sourceOffset));
    expect(late).toHaveLength(21); // bursts 130..150
    expect(new Set(late).size).toBe(21);
    expect(w.kafka.topics.get(`${TOPIC}.dlq`)?.[0]?.length).toBe(150);
    for (const [minute, events] of onTime)
      expect({ minute, events: partialEvents(w, 0, minute) }).toEqual({ minute, events });
  });
});
