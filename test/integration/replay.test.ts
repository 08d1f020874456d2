import { DEFAULT_START_TIME, type ExpectedAnswer, type WorkloadLogEntry } from '../../src/generator';
import { describeGroup } from '../../src/replay';
import { runCli } from '../helpers/cli';
import type { TestContext } from '../helpers/context';
import { spawnSluice, waitFor } from '../helpers/processes';
import {
  buggyFirstPass,
  expectedWindowsIn,
  referenceRows,
  replayArgs as replayRangeArgs,
  trueAmounts,
} from '../helpers/replay';

const MINUTE = 60_000;

/**
 * `sluice replay` on the real stack. A buggy version of the reference stream
 * (it doubles amounts, in raw rows and window rows) processes the whole
 * topic; the fixed stream is then replayed over an event-time range. Inside
 * the range ClickHouse must equal the generator's answer; outside it every
 * row must be exactly as the buggy run left it. The dry run and the refusal
 * with a live member must change nothing.
 */
describe('sluice replay, in place', () => {
  let ctx: TestContext;
  let topic: string;
  let expected: ExpectedAnswer;
  let log: WorkloadLogEntry[];
  let env: NodeJS.ProcessEnv;
  // The requested range is not window-aligned on purpose: the replay widens it to [T1', T2').
  const T1 = DEFAULT_START_TIME + 10 * MINUTE + 20_000;
  const T2 = DEFAULT_START_TIME + 20 * MINUTE + 5_000;
  const from = DEFAULT_START_TIME + 10 * MINUTE;
  const to = DEFAULT_START_TIME + 21 * MINUTE;

  beforeAll(async () => {
    ({ ctx, topic, log, expected, env } = await buggyFirstPass('replay', 11));
  }, 120_000);
  afterAll(async () => ctx.cleanup());

  const { partials, raw, windowsIn } = referenceRows(() => ctx.clickhouse);
  const outsideWindows = (all: Record<string, unknown>[]) =>
    all.filter((r) => !(Number(r.ws) >= from && Number(r.we) <= to));
  const outsideRaw = (all: Record<string, unknown>[]) =>
    all.filter((r) => !(Number(r.event_time_ms) >= from && Number(r.event_time_ms) < to));
  const committed = async () => JSON.stringify(await ctx.admin.fetchOffsets(ctx.group, [topic]));
  const replayArgs = (...extra: string[]) => replayRangeArgs(topic, ctx.group, T1, T2, ...extra);

  const windowsInRange = () => windowsIn(from, to);
  const expectedInRange = () => expectedWindowsIn(expected, from, to);

  it('refuses while the live group has a member, naming it, and changes nothing', async () => {
    const before = await committed();
    const live = spawnSluice(
      ['run', 'event-counts', '--topic', topic, '--group', ctx.group, '--session-timeout', '6000'],
      env,
    );
    try {
      await waitFor(
        'the live member to join',
        async () => (await describeGroup(ctx.admin, ctx.group)).members.length > 0,
        30_000,
      );
      const [member] = (await describeGroup(ctx.admin, ctx.group)).members;
      const result = runCli(replayArgs('--yes'), env);
      expect(result.status).toBe(1);
      expect(result.stderr).toContain(member!.memberId);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      live.process.kill('SIGTERM');
      expect(await live.exited).toBe(0);
      // The next specs replay this group: wait until the broker has it empty (a leave can lag under load).
      await waitFor(
        'the live member to leave',
        async () => (await describeGroup(ctx.admin, ctx.group)).members.length === 0,
        30_000,
      );
    }
    expect(await committed()).toBe(before);
  }, 60_000);

  it('dry run prints the plan and changes nothing', async () => {
    const [windowsBefore, rawBefore, offsetsBefore] = [await partials(), await raw(), await committed()];
    const result = runCli(replayArgs('--json'), env);
    expect(result.status).toBe(0);
    const { dryRun, plan } = JSON.parse(result.stdout) as {
      dryRun: boolean;
      plan: {
        range: { from: number; to: number };
        partitions: { start: string; end: string }[];
        tables: { table: string; rowsInRange: number }[];
        windows: { count: number };
      };
    };
    expect(dryRun).toBe(true);
    expect(plan.range).toEqual({ from, to });
    expect(plan.windows.count).toBe(11);
    expect(plan.partitions).toHaveLength(6);
    const highs = await ctx.admin.fetchTopicOffsets(topic);
    expect(plan.partitions.map((p) => p.end).sort()).toEqual(highs.map((h) => h.high).sort());
    const partialRowsInRange = windowsBefore.length - outsideWindows(windowsBefore).length;
    expect(plan.tables.find((t) => t.table === 'event_counts_1m_partial')!.rowsInRange).toBe(partialRowsInRange);
    expect(plan.tables.find((t) => t.table === 'events_raw')!.rowsInRange).toBe(
      rawBefore.length - outsideRaw(rawBefore).length,
    );
    expect(await partials()).toEqual(windowsBefore);
    expect(await raw()).toEqual(rawBefore);
    expect(await committed()).toBe(offsetsBefore);
    expect((await describeGroup(ctx.admin, `${ctx.group}.replay`)).members).toEqual([]);

    // Offsets as bounds, shifted (and clamped at the first retained offset) like kafka-consumer-groups --shift-by.
    const byOffsets = runCli(
      [
        'replay',
        'event-counts',
        '--topic',
        topic,
        '--group',
        ctx.group,
        '--from',
        '0:5,1:7',
        '--to',
        '1:100',
        '--shift-by',
        '-3',
        '--json',
      ],
      env,
    );
    expect(byOffsets.status).toBe(0);
    const offsetPlan = (
      JSON.parse(byOffsets.stdout) as {
        plan: { partitions: { partition: number; start: string; end: string }[]; warnings: string[]; range: unknown };
      }
    ).plan;
    expect(offsetPlan.range).toEqual({ from: null, to: null });
    expect(offsetPlan.partitions.map((p) => p.start)).toEqual(['2', '4', '0', '0', '0', '0']);
    expect(offsetPlan.partitions[1]!.end).toBe('100');
    expect(offsetPlan.partitions[2]!.end).toBe(highs.find((h) => h.partition === 2)!.high);
    expect(offsetPlan.warnings.join(' ')).toMatch(/windows already open at those offsets/);
    expect(runCli(['replay', 'event-counts', '--topic', topic, '--group', ctx.group], env).status).toBe(2);
    expect(await committed()).toBe(offsetsBefore);
  }, 60_000);

  it('restores exactly the correct rows inside the range and leaves every row outside it untouched', async () => {
    const [windowsBefore, rawBefore, offsetsBefore] = [await partials(), await raw(), await committed()];
    // The bug is visible before the replay (the test can fail): same windows, doubled amounts.
    const buggyRows = await windowsInRange();
    expect(buggyRows.map((w) => w.events)).toEqual(expectedInRange().map((w) => w.events));
    expect(buggyRows).not.toEqual(expectedInRange());

    const result = runCli(replayArgs('--yes', '--json'), env);
    if (result.status !== 0) throw new Error(`replay exited ${result.status}: ${result.stderr}`);
    const { result: summary } = JSON.parse(result.stdout) as {
      result: { recordsIn: number; rowsWritten: Record<string, number> };
    };
    expect(summary.recordsIn).toBe(expected.records);

    // Inside: the generator's answer, window by window, and every raw event with its true amount.
    expect(await windowsInRange()).toEqual(expectedInRange());
    const truth = trueAmounts(log);
    const rawAfter = await raw();
    const inside = rawAfter.filter((r) => !outsideRaw([r]).length);
    const expectedIds = [...expected.eventIds].filter((id) => {
      const t = log.find((e) => e.eventId === id)!.event!.event_time;
      return t >= from && t < to;
    });
    expect(inside.map((r) => r.event_id).sort()).toEqual(expectedIds.sort());
    for (const r of inside) expect(r.amount === null ? null : Number(r.amount)).toBe(truth.get(String(r.event_id)));

    // Outside: exactly as before (buggy amounts, same versions), and the live group did not move.
    expect(outsideWindows(await partials())).toEqual(outsideWindows(windowsBefore));
    expect(outsideRaw(rawAfter)).toEqual(outsideRaw(rawBefore));
    expect(await committed()).toBe(offsetsBefore);
    // The replay's own group and Redis keys are gone.
    expect((await ctx.admin.listGroups()).map((g) => g.groupId)).not.toContain(`${ctx.group}.replay`);
    const epochKeys = (await ctx.redis.keys(`${ctx.config.redis.keyPrefix}*`)).filter((k) =>
      /:(dedup|state):event-counts:\d{13}:/.test(k),
    );
    expect(epochKeys).toEqual([]);
  }, 120_000);
});
