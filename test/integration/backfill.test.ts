import { computeExpected, produceWorkload, type ExpectedAnswer, type WorkloadLogEntry } from '../../src/generator';
import { StreamMonitor } from '../../src/process/monitor';
import type { RunnerStatus } from '../../src/process';
import { runCli } from '../helpers/cli';
import { createTestContext, type TestContext } from '../helpers/context';
import { referenceRows, replayArgs } from '../helpers/replay';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

/**
 * A backfill as an operator does it: events of an earlier day D produced into
 * the topic whose partitions already carry current events (current first, D
 * after, current again). The live stream rightly finds D late; `sluice replay
 * --from D --to D+1` must then compute D's windows from D's events alone, as
 * the generator's answer for D has them, and say how many window rows it wrote
 * and how many of the range's events were late. Both commands run as a user
 * runs them (the `sluice` CLI), on a topic stamped by the broker
 * (LogAppendTime, as `topics/events.yaml` declares): D's records are stamped
 * today, so the replay's start offsets (from record timestamps) must still
 * find them.
 */
describe('backfill of an earlier day, then sluice replay of that day', () => {
  let ctx: TestContext;
  let topic: string;
  let env: NodeJS.ProcessEnv;
  let logs: { before: WorkloadLogEntry[]; day: WorkloadLogEntry[]; after: WorkloadLogEntry[] };
  let expectedDay: ExpectedAnswer;
  // Three days back, at midnight UTC: well clear of the current events whatever the time of day.
  const D = Math.floor((Date.now() - 3 * DAY) / DAY) * DAY;
  const rows = referenceRows(() => ctx.clickhouse);

  beforeAll(async () => {
    ctx = await createTestContext('backfill');
    topic = await ctx.createTopic('events', 3, {
      configEntries: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }],
    });
    await ctx.createTopic('events.dlq', 1);
    await ctx.createTopic('events.late', 1);
    env = ctx.childEnv('warn');
    const now = Date.now();
    const produce = async (seed: number, count: number, startTime: number) =>
      (await produceWorkload({ config: ctx.config, topic, count, seed, startTime, ratePerSecond: 10, keepLog: true }))
        .log!;
    // Current events (5 minutes each, ending before now), with D's 10 minutes between them.
    const before = await produce(191, 3000, now - 40 * MINUTE);
    const day = await produce(192, 6000, D + 60 * MINUTE);
    const after = await produce(193, 3000, now - 30 * MINUTE);
    logs = { before, day, after };
    expectedDay = computeExpected(day);
  }, 120_000);
  afterAll(async () => ctx?.cleanup());

  const cli = (...args: string[]) => {
    const result = runCli(args, env, 180_000);
    if (result.status !== 0) throw new Error(`sluice ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
    return result.stdout;
  };
  const dayWindows = () => rows.windowsIn(D, D + DAY);
  const currentWindows = () => rows.windowsIn(D + DAY, Date.now() + DAY);
  const replay = (...extra: string[]) => cli(...replayArgs(topic, ctx.group, D, D + DAY, '--yes', ...extra));

  let currentBefore: Awaited<ReturnType<typeof currentWindows>>;

  it('the live stream finds the backfilled day late, and its summary and status page warn', async () => {
    const out = cli('run', 'event-counts', '--bounded', '--topic', topic, '--group', ctx.group, '--json');
    const summary = JSON.parse(out) as RunnerStatus['counters'] & { lateShare: number; warnings: string[] };
    // Every distinct event of D (its own late ones among them) is late behind the current events,
    // and so are the late events of the current workloads.
    const expectedLate =
      expectedDay.eventIds.size +
      computeExpected(logs.before).lateEventIds.size +
      computeExpected(logs.after).lateEventIds.size;
    expect(summary.late).toBe(expectedLate);
    expect(summary.lateShare).toBeGreaterThan(0.01);
    expect(summary.warnings).toHaveLength(1);
    expect(summary.warnings[0]).toMatch(/of the events were late .*sluice replay event-counts/);
    expect(await dayWindows()).toEqual([]);
    currentBefore = await currentWindows();
    expect(currentBefore.length).toBeGreaterThan(0);

    // The status page's JSON carries the same warning (the page shows it above its cards).
    const monitor = new StreamMonitor(
      {
        name: 'event-counts',
        status: () =>
          ({
            group: ctx.group,
            topic,
            assigned: [],
            paused: [],
            positions: {},
            checkpointPending: false,
            lastCheckpointAt: Date.now(),
            checkpoints: 1,
            counters: summary,
            watermark: null,
            openWindows: 0,
            pendingRows: 0,
            stopping: false,
          }) satisfies RunnerStatus,
      },
      ctx.config,
      { pollMs: 60_000 },
    );
    try {
      const report = monitor.report();
      expect(report.lateShare).toBeCloseTo(summary.lateShare, 10);
      expect(report.lateWarning).toBe(summary.warnings[0]);
    } finally {
      await monitor.close();
    }
  }, 200_000);

  it("sluice replay of day D writes D's windows from D's events alone, and says what it wrote and what was late", async () => {
    const out = replay();
    expect(out).toMatch(/only events inside the range are replayed/);
    const written = /window rows written: (\d+) \(event_counts_1m_partial\)/.exec(out);
    expect(written).not.toBeNull();
    expect(Number(written![1])).toBeGreaterThan(0);
    expect(out).toMatch(/late events: 0 of \d+ event\(s\) of the range \(0\.0%\)/);
    expect(out).not.toMatch(/warning:/);

    // Window by window, D equals the generator's answer for D's events; the current windows are untouched.
    expect(await dayWindows()).toEqual(expectedDay.windows);
    expect(await currentWindows()).toEqual(currentBefore);

    // The same replay again, as JSON: the figures, and the same rows (a replay rewrites rows by identity).
    const { result } = JSON.parse(replay('--json')) as {
      result: {
        windowRowsWritten: number;
        late: number;
        lateShare: number;
        outsideRange: number;
        decoded: number;
        deduplicated: number;
        warnings: string[];
      };
    };
    const inDay = (e: WorkloadLogEntry) => e.event!.event_time >= D && e.event!.event_time < D + DAY;
    const valid = [...logs.before, ...logs.day, ...logs.after].filter((e) => e.kind !== 'poison');
    expect(result.outsideRange).toBe(valid.filter((e) => !inDay(e)).length);
    // The range's events are D's on-time ones: D's own late events lie before D (the generator puts them 1-2 h back).
    expect(result.decoded - result.deduplicated).toBe(expectedDay.onTimeEventIds.size);
    expect(result).toMatchObject({ windowRowsWritten: Number(written![1]), late: 0, lateShare: 0, warnings: [] });
    expect(await dayWindows()).toEqual(expectedDay.windows);
  }, 400_000);
});
