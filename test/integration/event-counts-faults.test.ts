import { computeExpected, produceWorkload, type ExpectedAnswer } from '../../src/generator';
import { createKafka } from '../../src/kafka';
import { createTestContext, type TestContext } from '../helpers/context';
import { spawnSluice, seededRandom, sleep, waitFor, type Child } from '../helpers/processes';
import { compareWithExpected } from '../helpers/reference';

/**
 * Crash safety of the reference stream with real processes: SIGKILL at random
 * moments, a death between the dedup marks and the sink, and a rebalance.
 * After each, a bounded run finishes the topic and ClickHouse, .dlq and .late
 * must equal the generator's answer: nothing lost, nothing counted twice.
 */
describe('reference stream under crashes and rebalances', () => {
  async function setUp(label: string, count: number): Promise<{ ctx: TestContext; topic: string; expected: ExpectedAnswer; env: NodeJS.ProcessEnv }> {
    const ctx = await createTestContext(label);
    const topic = await ctx.createTopic('events', 6);
    await ctx.createTopic('events.dlq', 1);
    await ctx.createTopic('events.late', 1);
    const produced = await produceWorkload({ config: ctx.config, topic, count, seed: 7, keepLog: true });
    const env = { SLUICE_CLICKHOUSE_DATABASE: ctx.id, SLUICE_REDIS_KEY_PREFIX: ctx.config.redis.keyPrefix, SLUICE_LOG_LEVEL: 'warn' };
    return { ctx, topic, expected: computeExpected(produced.log!), env };
  }

  /** The processor arguments every test uses: its own topic and group, a short session so dead members leave quickly. */
  const runArgs = (ctx: TestContext, topic: string, extra: string[] = [], flushIntervalMs = 500) => [
    'run', 'event-counts', '--topic', topic, '--group', ctx.group, '--session-timeout', '6000', '--flush-interval', String(flushIntervalMs), ...extra,
  ];

  async function finishAndCompare(ctx: TestContext, topic: string, env: NodeJS.ProcessEnv, expected: ExpectedAnswer): Promise<void> {
    const bounded = spawnSluice(runArgs(ctx, topic, ['--bounded', '--json']), env);
    const code = await bounded.exited;
    if (code !== 0) throw new Error(`bounded run exited ${code}:\n${bounded.output.join('')}`);
    const report = await compareWithExpected(ctx.clickhouse, createKafka(ctx.config), topic, expected);
    const summary = {
      rowsExpected: report.windowRowsExpected,
      rowsFound: report.windowRowsFound,
      lost: report.lostEvents.length,
      duplicated: report.duplicatedRows,
      deadLettered: report.deadLetters.length,
      late: report.late.length,
    };
    console.log(JSON.stringify(summary));
    expect(report.lostEvents).toEqual([]);
    expect(report.unexpectedEvents).toEqual([]);
    expect(report.duplicatedRows).toBe(0);
    expect(report.windowMismatches).toEqual([]);
    // Side topics are written at least once: a crash after producing them and before the commit repeats them.
    expect(new Set(report.deadLetters.map((r) => r.value?.toString('base64')))).toEqual(new Set(expected.deadLetters.map((d) => d.value)));
    expect(new Set(report.late.map((r) => r.key?.toString()))).toEqual(expected.lateEventIds);
  }

  async function kill(child: Child): Promise<void> {
    child.process.kill('SIGKILL');
    await child.exited;
  }

  it('survives SIGKILL at 5 random moments', async () => {
    const { ctx, topic, expected, env } = await setUp('kill', 60_000);
    try {
      const random = seededRandom(20261125);
      for (let i = 0; i < 5; i++) {
        const child = spawnSluice(runArgs(ctx, topic), env);
        await sleep(2500 + Math.floor(random() * 4000)); // start-up takes about 2 s; kill while it works
        await kill(child);
      }
      await finishAndCompare(ctx, topic, env, expected);
    } finally {
      await ctx.cleanup();
    }
  }, 300_000);

  it('loses nothing when the process dies after writing dedup marks and before the sink has the events', async () => {
    const { ctx, topic, expected, env } = await setUp('markdeath', 20_000);
    try {
      // No checkpoint is due for a long time: records are processed (marks written) but nothing reaches ClickHouse.
      const child = spawnSluice(runArgs(ctx, topic, ['--max-pending-rows', '1000000'], 600_000), env);
      const marks = () => ctx.redis.keys(`${ctx.config.redis.keyPrefix}dedup:*`);
      await waitFor('dedup marks of the first records', async () => (await marks()).length >= 5000, 90_000);
      await kill(child);
      const [raw] = await (await ctx.clickhouse.query({ query: 'SELECT count() AS n FROM events_raw', format: 'JSONEachRow' })).json<{ n: string }>();
      expect(Number(raw!.n)).toBe(0); // the precondition: marked, not sunk
      await finishAndCompare(ctx, topic, env, expected);
    } finally {
      await ctx.cleanup();
    }
  }, 300_000);

  it('gives identical results when a second processor joins and leaves mid-run', async () => {
    const { ctx, topic, expected, env } = await setUp('rebalance', 60_000);
    try {
      const members = async () => (await ctx.admin.describeGroups([ctx.group])).groups[0]?.members.length ?? 0;
      const first = spawnSluice(runArgs(ctx, topic), env);
      await waitFor('the first processor in the group', async () => (await members()) === 1, 60_000);
      await sleep(1000);
      const second = spawnSluice(runArgs(ctx, topic), env);
      await waitFor('the second processor in the group', async () => (await members()) === 2, 60_000);
      await sleep(3000);
      second.process.kill('SIGTERM'); // leaves cleanly: flushes, commits, leaves the group
      expect(await second.exited).toBe(0);
      await sleep(2000);
      first.process.kill('SIGTERM');
      expect(await first.exited).toBe(0);
      await finishAndCompare(ctx, topic, env, expected);
    } finally {
      await ctx.cleanup();
    }
  }, 300_000);
});
