import { computeExpected, produceWorkload, type WorkloadLogEntry } from '../../src/generator';
import { startStream } from '../../src/process';
import { createLogger } from '../../src/telemetry';
import eventCounts from '../../streams/event-counts';
import { runCli } from '../helpers/cli';
import { createTestContext, type TestContext } from '../helpers/context';
import { spawnSluice, waitFor } from '../helpers/processes';

interface LagJson {
  group: string;
  topic: string;
  totalLag: string;
  watermark: number | null;
  partitions: { partition: number; committed: string | null; end: string; lag: string; watermark: number | null }[];
}

/**
 * `sluice lag`, `sluice groups` and `sluice offsets` on the real stack: after
 * a bounded run and more records produced behind it, the lag per partition is
 * the new records, the watermark is what the generator's log says (max event
 * time per partition − out-of-orderness), and offsets move only with --yes and
 * never under a live member.
 */
describe('sluice lag, groups and offsets', () => {
  let ctx: TestContext;
  let topic: string;
  let log: WorkloadLogEntry[];
  let env: NodeJS.ProcessEnv;
  const ends = async () => new Map((await ctx.admin.fetchTopicOffsets(topic)).map((o) => [o.partition, o.high]));
  const committed = async () =>
    new Map((await ctx.admin.fetchOffsets(ctx.group, [topic]))[0]!.partitions.map((p) => [p.partition, p.offset]));

  beforeAll(async () => {
    ctx = await createTestContext('lag');
    topic = await ctx.createTopic('events', 3);
    await ctx.createTopic('events.dlq', 1);
    await ctx.createTopic('events.late', 1);
    log = (await produceWorkload({ config: ctx.config, topic, count: 3000, seed: 5, keepLog: true })).log!;
    expect(computeExpected(log).records).toBe(3000);
    const running = await startStream(
      eventCounts,
      ctx.config,
      { bounded: true, groupId: ctx.group, topic },
      createLogger('warn'),
    );
    await running.done;
    // Records the group has not processed yet.
    await produceWorkload({ config: ctx.config, topic, count: 500, seed: 6 });
    env = ctx.childEnv('warn');
  }, 120_000);
  afterAll(async () => ctx.cleanup());

  it('lag: committed, end and lag per partition, and the watermark from the saved window state', async () => {
    const result = runCli(['lag', 'event-counts', '--group', ctx.group, '--topic', topic, '--json'], env);
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout) as LagJson;
    const [end, done] = [await ends(), await committed()];
    // Independent answers: Kafka's offsets, and the log's max event time per partition (every decodable valid event moves it).
    const maxEventTime = new Map<number, number>();
    for (const e of log)
      if (e.kind !== 'poison' && e.event && e.partition !== undefined)
        maxEventTime.set(e.partition, Math.max(maxEventTime.get(e.partition) ?? 0, e.event.event_time));
    let total = 0n;
    for (const p of report.partitions) {
      expect(p.end).toBe(end.get(p.partition));
      expect(p.committed).toBe(done.get(p.partition));
      expect(BigInt(p.lag)).toBe(BigInt(p.end) - BigInt(p.committed!));
      expect(BigInt(p.lag)).toBeGreaterThan(0n);
      expect(p.watermark).toBe(maxEventTime.get(p.partition)! - eventCounts.windowed!.outOfOrdernessMs);
      total += BigInt(p.lag);
    }
    expect(report.partitions).toHaveLength(3);
    expect(report.totalLag).toBe(total.toString());
    expect(total).toBe(500n);
    expect(report.watermark).toBe(Math.min(...report.partitions.map((p) => p.watermark!)));

    const text = runCli(['lag', 'event-counts', '--group', ctx.group, '--topic', topic], env);
    expect(text.status).toBe(0);
    expect(text.stdout).toContain(`lag ${total}`);
    expect(runCli(['lag'], env).status).toBe(2);
  }, 60_000);

  it('groups lists the group; offsets --set is a dry run without --yes, applies with it, and refuses under a live member', async () => {
    const groups = JSON.parse(runCli(['groups', '--json'], env).stdout) as {
      groupId: string;
      state: string;
      members: unknown[];
    }[];
    expect(groups.find((g) => g.groupId === ctx.group)).toMatchObject({ state: 'Empty', members: [] });

    const before = await committed();
    const dry = runCli(['offsets', ctx.group, '--topic', topic, '--set', '--to-earliest', '--json'], env);
    expect(dry.status).toBe(0);
    const plan = JSON.parse(dry.stdout) as {
      applied: boolean;
      topics: { partitions: { partition: number; next: string }[] }[];
    };
    expect(plan.applied).toBe(false);
    expect(plan.topics[0]!.partitions.map((p) => p.next)).toEqual(['0', '0', '0']);
    expect(await committed()).toEqual(before);

    expect(runCli(['offsets', ctx.group, '--topic', topic, '--set'], env).status).toBe(2);
    const shifted = runCli(['offsets', ctx.group, '--topic', topic, '--set', '--shift-by', '-10', '--yes'], env);
    expect(shifted.status).toBe(0);
    const after = await committed();
    for (const [p, o] of before) expect(after.get(p)).toBe((BigInt(o) - 10n).toString());

    const live = spawnSluice(
      ['run', 'event-counts', '--topic', topic, '--group', ctx.group, '--session-timeout', '6000'],
      env,
    );
    try {
      await waitFor(
        'the live member to join',
        async () => (await ctx.admin.describeGroups([ctx.group]))[0]!.members.length > 0,
        30_000,
      );
      const refused = runCli(['offsets', ctx.group, '--topic', topic, '--set', '--to-latest', '--yes'], env);
      expect(refused.status).toBe(1);
      expect(refused.stderr).toMatch(/live member/);
    } finally {
      live.process.kill('SIGTERM');
      expect(await live.exited).toBe(0);
    }
    // The live run finished the topic; --to-latest was not applied by the refused command, the run itself got there.
    const end = await ends();
    for (const [p, o] of await committed()) expect(o).toBe(end.get(p));
  }, 90_000);
});
