import { waitFor } from '../helpers/processes';
import { SeededRandom } from '../../src/generator/random';
import { sleep } from '../../src/clock';
import { countsOf, expectExactAnswer } from '../helpers/reference';
import {
  finishAndCompare,
  lagOf,
  processorArgs,
  ProcessorPool,
  produceSegments,
  SegmentedWorkload,
  setUpScenario,
  waitForNoLag,
  type Scenario,
} from './harness';
import { recordScenario } from './results';
import { SCALE, sizes } from './scale';

/**
 * Crash safety of the reference stream with real processes on the shared
 * stack (nothing here stops a service): SIGKILLs at random moments with two
 * processors in the group, a death between the dedup marks and the sink, and
 * a rebalance storm. Input keeps arriving throughout. After each, a bounded
 * run finishes the topic and ClickHouse, .dlq and .late must equal the
 * generator's answer: nothing lost, nothing counted twice.
 */
describe(`reference stream under processor faults (${SCALE} scale)`, () => {
  /** Kill/storm schedules are seeded: a failure names its seed, and SLUICE_FAULTS_SEED replays it. */
  const seed = Number(process.env.SLUICE_FAULTS_SEED ?? 20261125);
  /**
   * A chaos run: the workload arrives in segments while `act` does its damage
   * `acts` times at seeded random moments to the processors (`initial` of them
   * at first), then the survivors catch up, leave with SIGTERM (each must exit
   * 0), a bounded run finishes, and the answer must be exact. `figures` adds
   * the scenario's own figures to its table row.
   */
  async function runChaos(
    label: string,
    options: {
      scenario: string;
      events: number;
      segments: number;
      acts: number;
      minGapMs: number;
      maxGapMs: number;
      initial: number;
      seed: number;
    },
    act: (pool: ProcessorPool, random: () => number, s: Scenario) => Promise<void>,
    figures: () => Record<string, number | string | boolean>,
  ): Promise<void> {
    const { events, segments, acts, minGapMs, maxGapMs } = options;
    const s = await setUpScenario(label);
    const pool = new ProcessorPool(processorArgs(s), s.env);
    const started = Date.now();
    try {
      const seeded = new SeededRandom(options.seed);
      const random = () => seeded.next();
      const workload = new SegmentedWorkload(s.ctx.config, s.topic, options.seed % 1000);
      // Production is spread over about the time the damage takes, so every act lands on a live stream.
      const gapMs = Math.round((acts * (minGapMs + maxGapMs)) / 2 / segments);
      const production = produceSegments(workload, { events, segments, gapMs });
      production.catch(() => undefined); // awaited below; a failure surfaces there
      for (let i = 0; i < options.initial; i++) pool.spawn();
      for (let i = 0; i < acts; i++) {
        await sleep(minGapMs + Math.floor(random() * (maxGapMs - minGapMs)));
        await act(pool, random, s);
      }
      await production;
      const recoveredAfterMs = await waitForNoLag(s, sizes.timeoutMs / 2, pool);
      const exits = await pool.stopAll();
      const expected = workload.expected();
      const report = await finishAndCompare(s, expected);
      const cleanExits = exits.every((c) => c === 0);
      recordScenario({
        scenario: options.scenario,
        ...countsOf(report, expected),
        seconds: (Date.now() - started) / 1000,
        figures: { seed: options.seed, ...figures(), processesStarted: pool.started, recoveredAfterMs, cleanExits },
      });
      expect(cleanExits).toBe(true);
      expectExactAnswer(report);
    } finally {
      pool.killAll();
      await s.ctx.cleanup();
    }
  }

  it(
    `survives ${sizes.kills.kills} SIGKILLs at random moments, two processors in the group, each restarted`,
    async () => {
      const { kills } = sizes.kills;
      let killsWithLag = 0;
      let uncommittedAtKills = 0;
      await runChaos(
        'f_kill',
        { ...sizes.kills, scenario: `SIGKILL x${kills}, 2 processors`, acts: kills, initial: 2, seed },
        async (pool, random, s) => {
          const lag = await lagOf(s.ctx.admin, s.ctx.group, s.topic);
          if (lag > 0) killsWithLag += 1;
          uncommittedAtKills += Math.max(0, lag);
          await pool.kill(random() < 0.5 ? 0 : 1);
          pool.spawn();
        },
        () => ({ kills, killsWithLag, uncommittedAtKills }),
      );
      expect(killsWithLag).toBeGreaterThan(0); // the kills hit a stream with work in hand
    },
    sizes.timeoutMs,
  );

  it(
    `stays exact through a rebalance storm (${sizes.storm.changes} joins and leaves)`,
    async () => {
      const { changes, maxMembers } = sizes.storm;
      let joins = 0;
      let leaves = 0;
      let largest = 1;
      await runChaos(
        'f_storm',
        { ...sizes.storm, scenario: `rebalance storm, ${changes} changes`, acts: changes, initial: 1, seed: seed + 1 },
        async (pool, random) => {
          const size = pool.members.length;
          if (size <= 1 || (size < maxMembers && random() < 0.5)) {
            pool.spawn();
            joins += 1;
          } else {
            // Leaves cleanly (flushes, commits, leaves the group): a member that has joined, since one still
            // starting up may not handle SIGTERM yet and would die of it, a crash rather than a leave.
            const joined = await pool.joinedMembers();
            pool.terminate(joined[Math.floor(random() * joined.length)]!);
            leaves += 1;
          }
          largest = Math.max(largest, pool.members.length);
        },
        () => ({ joins, leaves, largestGroup: largest }),
      );
    },
    sizes.timeoutMs,
  );

  it(
    'loses nothing when the process dies after writing dedup marks and before the sink has the events',
    async () => {
      const s = await setUpScenario('f_markdeath');
      // No checkpoint is due for a long time: records are processed (marks written) but nothing reaches ClickHouse.
      const pool = new ProcessorPool(processorArgs(s, ['--max-pending-rows', '1000000'], 600_000), s.env);
      const started = Date.now();
      try {
        const workload = new SegmentedWorkload(s.ctx.config, s.topic, 7);
        await workload.produce(20_000);
        pool.spawn();
        const marks = () => s.ctx.redis.keys(`${s.ctx.config.redis.keyPrefix}dedup:*`);
        await waitFor('dedup marks of the first records', async () => (await marks()).length >= 5000, 90_000);
        await pool.kill(0);
        const [raw] = await (
          await s.ctx.clickhouse.query({ query: 'SELECT count() AS n FROM events_raw', format: 'JSONEachRow' })
        ).json<{ n: string }>();
        expect(Number(raw!.n)).toBe(0); // the precondition: marked, not sunk
        const expected = workload.expected();
        const report = await finishAndCompare(s, expected);
        recordScenario({
          scenario: 'SIGKILL between dedup marks and sink',
          ...countsOf(report, expected),
          seconds: (Date.now() - started) / 1000,
          figures: {},
        });
        expectExactAnswer(report);
      } finally {
        pool.killAll();
        await s.ctx.cleanup();
      }
    },
    sizes.timeoutMs,
  );
});
