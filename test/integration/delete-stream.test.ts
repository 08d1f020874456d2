import { produceWorkload } from '../../src/generator';
import { startStream } from '../../src/process';
import { createLogger } from '../../src/telemetry';
import eventCounts from '../../streams/event-counts';
import { runCli } from '../helpers/cli';
import { createTestContext, type TestContext } from '../helpers/context';

/**
 * `sluice delete stream` on the real stack: the dry run changes nothing, and --yes removes exactly what
 * the stream owns (its topic and companions, their subjects, its group, its Redis keys, its tables)
 * while decoys with similar names (a topic, a group, a subject, Redis keys and a table) survive.
 */
describe('sluice delete stream', () => {
  let ctx: TestContext;
  let topic: string;
  let decoyTopic: string;
  const decoyGroup = () => `${ctx.group}-decoy`;
  /** Named like a group derived from the stream's, but none of the stream's commands makes it. */
  const dottedDecoyGroup = () => `${ctx.group}.decoy`;

  /** Everything of this context on the services, to compare before and after. */
  async function inventory() {
    const topics = (await ctx.admin.listTopics()).filter((t) => t.startsWith(ctx.id)).sort();
    const groups = (await ctx.admin.listGroups())
      .map((g) => g.groupId)
      .filter((g) => g.startsWith(ctx.id))
      .sort();
    const keys = (await ctx.redis.keys(`${ctx.config.redis.keyPrefix}*`)).sort();
    const tables = (
      await (
        await ctx.clickhouse.query({
          query: `SELECT name FROM system.tables WHERE database = '${ctx.id}'`,
          format: 'JSONEachRow',
        })
      ).json<{ name: string }>()
    )
      .map((r) => r.name)
      .sort();
    const subjects = ((await (await fetch(`${ctx.config.registry.url}/subjects`)).json()) as string[])
      .filter((s) => s.startsWith(ctx.id))
      .sort();
    return { topics, groups, keys, tables, subjects };
  }

  beforeAll(async () => {
    ctx = await createTestContext('delete');
    topic = await ctx.createTopic('events', 2);
    await ctx.createTopic('events.dlq', 1);
    await ctx.createTopic('events.late', 1);
    await ctx.createTopic('events.retry.1', 1);
    // Decoys: names that share the stream's prefixes without being its own.
    decoyTopic = await ctx.createTopic('events-decoy', 1);
    await ctx.createTopic('events.decoy', 1);
    await produceWorkload({ config: ctx.config, topic, count: 300, seed: 7 });
    await produceWorkload({ config: ctx.config, topic: decoyTopic, count: 10, seed: 8 });
    const running = await startStream(
      eventCounts,
      ctx.config,
      { bounded: true, groupId: ctx.group, topic },
      createLogger('warn'),
    );
    await running.done;
    for (const groupId of [decoyGroup(), dottedDecoyGroup()])
      await ctx.admin.setOffsets(groupId, decoyTopic, [{ partition: 0, offset: '1' }]);
    const prefix = ctx.config.redis.keyPrefix;
    await ctx.redis.set(`${prefix}dedup:event-counts-decoy:0:x`, '1');
    await ctx.redis.set(`${prefix}state:event-counts2:0:t:0`, '1');
    await ctx.redis.set(`${prefix}epoch:event-counts-decoy`, '1');
    await ctx.clickhouse.command({ query: `CREATE TABLE ${ctx.id}.decoy (x UInt8) ENGINE = Memory` });
  }, 120_000);
  afterAll(async () => ctx.cleanup(), 60_000);

  it('a dry run prints the plan and changes nothing', async () => {
    const before = await inventory();
    // What the stream made exists, so the plan below has something to name.
    expect(before.topics).toEqual(
      expect.arrayContaining([topic, `${topic}.dlq`, `${topic}.late`, `${topic}.retry.1`, decoyTopic]),
    );
    expect(before.groups).toEqual([ctx.group, decoyGroup(), dottedDecoyGroup()].sort());
    expect(before.subjects).toEqual([`${decoyTopic}-value`, `${topic}-value`].sort());
    expect(before.keys.some((k) => k.includes('dedup:event-counts:'))).toBe(true);
    expect(before.tables).toContain('decoy');

    const args = ['delete', 'stream', 'event-counts', '--topic', topic, '--group', ctx.group];
    const plan = runCli(args, ctx.childEnv());
    expect(plan.status).toBe(0);
    expect(plan.stdout).toContain(
      `kafka topics:     ${[topic, `${topic}.dlq`, `${topic}.late`, `${topic}.retry.1`].sort().join(', ')}`,
    );
    expect(plan.stdout).toContain(`consumer groups:  ${ctx.group}\n`);
    expect(plan.stdout).toContain(`registry:         ${topic}-value\n`);
    // events_raw is declared by the events-raw stream too: kept for it.
    expect(plan.stdout).toMatch(
      /database kept \(also holds decoy, events_raw; events_raw also declared by another stream\)/,
    );
    expect(plan.stdout).toContain('dry run: nothing deleted; add --yes');
    expect(runCli([...args, '--dry-run', '--yes'], ctx.childEnv()).stdout).toContain('dry run: nothing deleted');
    // A source named like a side topic would take another topic's companions and redrive groups with it.
    const sideNamed = runCli(['delete', 'stream', 'event-counts', '--topic', `${topic}.late`, '--yes'], ctx.childEnv());
    expect(sideNamed.status).toBe(1);
    expect(sideNamed.stderr).toContain(`a stream cannot read topic '${topic}.late'`);
    expect(await inventory()).toEqual(before);
  }, 60_000);

  it('--yes removes exactly the stream’s things and leaves the decoys', async () => {
    const before = await inventory();
    const result = runCli(
      ['delete', 'stream', 'event-counts', '--topic', topic, '--group', ctx.group, '--yes'],
      ctx.childEnv(),
    );
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout.trim().split('\n').pop()).toBe('deleted');

    const after = await inventory();
    const owned = (t: string) => t === topic || /\.(dlq|late|retry\.1)$/.test(t.slice(topic.length));
    expect(after.topics).toEqual(before.topics.filter((t) => !(t.startsWith(topic) && owned(t))));
    expect(after.topics).toEqual([`${topic}.decoy`, decoyTopic].sort());
    expect(after.groups).toEqual([decoyGroup(), dottedDecoyGroup()].sort());
    expect(after.subjects).toEqual([`${decoyTopic}-value`]);
    const prefix = ctx.config.redis.keyPrefix;
    expect(after.keys).toEqual(
      [
        `${prefix}dedup:event-counts-decoy:0:x`,
        `${prefix}epoch:event-counts-decoy`,
        `${prefix}state:event-counts2:0:t:0`,
      ].sort(),
    );
    expect(after.tables).toEqual(['decoy', 'events_raw', 'sluice_migrations']);
  }, 60_000);

  it('keeps the topics of a stream that another group reads, even when the topic is named with --topic', async () => {
    const shared = await ctx.createTopic('shared', 1);
    const reader = `${ctx.id}-someone-else`;
    await ctx.admin.setOffsets(reader, shared, [{ partition: 0, offset: '0' }]);
    const plan = runCli(
      ['delete', 'stream', 'event-counts', '--topic', shared, '--group', `${ctx.group}-2`, '--json'],
      ctx.childEnv(),
    );
    expect(plan.stderr).toBe('');
    expect(JSON.parse(plan.stdout)).toMatchObject({ topics: [], otherReaders: [reader], subjects: [], applied: false });

    // A companion someone else reads (an alerting group on .late) is kept on its own; the rest goes.
    const solo = await ctx.createTopic('solo', 1);
    await ctx.createTopic('solo.dlq', 1);
    await ctx.createTopic('solo.late', 1);
    await ctx.admin.setOffsets(reader, `${solo}.late`, [{ partition: 0, offset: '0' }]);
    const partial = runCli(
      ['delete', 'stream', 'event-counts', '--topic', solo, '--group', `${ctx.group}-3`, '--json'],
      ctx.childEnv(),
    );
    expect(partial.stderr).toBe('');
    const found = JSON.parse(partial.stdout) as { topics: string[]; topicsKept: string; otherReaders: string[] };
    expect(found.topics).toEqual([solo, `${solo}.dlq`]);
    expect(found.topicsKept).toBe(`${solo}.late is also read by group ${reader}`);
    expect(found.otherReaders).toEqual([reader]);
    await ctx.admin.deleteGroups([reader]);
  }, 60_000);
});
