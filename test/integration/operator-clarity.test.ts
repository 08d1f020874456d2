import { hostname } from 'node:os';
import pino from 'pino';
import { produceWorkload } from '../../src/generator';
import { hashApiKey, startIngestServer } from '../../src/ingest';
import { createClickHouse } from '../../src/sink/clickhouse/client';
import { runCli } from '../helpers/cli';
import { createTestContext, type TestContext } from '../helpers/context';
import { spawnSluice, waitFor, type Child } from '../helpers/processes';
import { metricValue, observabilityUrl } from '../helpers/telemetry';

interface GroupJson {
  groupId: string;
  state: string;
  members: { memberId: string; clientId: string; host: string }[];
  lag: { topic: string; lag: number }[];
}

/**
 * What an operator meets first, on the real stack: a wrong topic fails before anything is created,
 * `sluice groups` tells the members of a group apart and shows their lag, the metrics say which
 * stream, group and process they come from, and `sluice check` covers every service.
 */
describe('operator clarity', () => {
  let ctx: TestContext;
  let topic: string;
  let child: Child | undefined;

  beforeAll(async () => {
    ctx = await createTestContext('opsclarity');
    topic = await ctx.createTopic('events', 2);
    await ctx.createTopic('events.dlq', 1);
    await ctx.createTopic('events.late', 1);
    await produceWorkload({ config: ctx.config, topic, count: 200, seed: 19 });
  }, 60_000);

  afterAll(async () => {
    if (child && child.process.exitCode === null) {
      child.process.kill('SIGTERM');
      await child.exited;
    }
    await ctx.cleanup();
  }, 60_000);

  it('run --topic with a missing topic fails in one line naming it, and creates no database and no group', async () => {
    const database = `${ctx.id}_nope`;
    const missing = ctx.topic('nope');
    const result = runCli(['run', 'event-counts', '--topic', missing, '--group', `${ctx.id}.nope`], {
      ...ctx.childEnv('warn'),
      SLUICE_CLICKHOUSE_DATABASE: database,
    });
    expect(result.status).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`topic '${missing}' does not exist`);
    expect(lines[0]).toContain('--topic');
    expect(result.stderr).not.toMatch(/does not host this topic-partition/);

    const root = createClickHouse(ctx.config.clickhouse);
    try {
      const rows = await (
        await root.query({ query: 'SHOW DATABASES', format: 'JSONEachRow' })
      ).json<{ name: string }>();
      expect(rows.map((r) => r.name)).not.toContain(database);
    } finally {
      await root.close();
    }
    const groups = (await ctx.admin.listGroups()).map((g) => g.groupId);
    expect(groups).not.toContain(`${ctx.id}.nope`);
    expect((await ctx.admin.listTopics()).includes(missing)).toBe(false);
  }, 60_000);

  it('run --topic whose side topics are missing fails in one line naming them, before anything is created', async () => {
    const database = `${ctx.id}_noside`;
    // The source exists, with a dead letter to write; its .late is there, its .dlq is not.
    const bare = await ctx.createTopic('bare', 1);
    await ctx.createTopic('bare.late', 1);
    await produceWorkload({ config: ctx.config, topic: bare, count: 50, seed: 23 });
    const result = runCli(['run', 'event-counts', '--bounded', '--topic', bare, '--group', `${ctx.id}.noside`], {
      ...ctx.childEnv('warn'),
      SLUICE_CLICKHOUSE_DATABASE: database,
    });
    expect(result.status).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`side topics '${bare}.dlq' of '${bare}' do not exist`);
    expect(lines[0]).not.toContain(`${bare}.late`);
    const groups = (await ctx.admin.listGroups()).map((g) => g.groupId);
    expect(groups).not.toContain(`${ctx.id}.noside`);
  }, 60_000);

  it('groups names each member by stream, host and pid, with the lag; metrics carry stream, group and process', async () => {
    child = spawnSluice(
      ['run', 'event-counts', '--topic', topic, '--group', ctx.group, '--http-port', '0'],
      ctx.childEnv('info'),
    );
    const pid = child.process.pid!;
    const clientId = `sluice-event-counts@${hostname()}#${pid}`;
    let group: GroupJson | undefined;
    await waitFor('the processor to join its group and commit', async () => {
      const result = runCli(['groups', '--prefix', ctx.id, '--json']);
      group = (JSON.parse(result.stdout) as GroupJson[]).find((g) => g.groupId === ctx.group);
      return group?.state === 'Stable' && group.members.length === 1 && group.lag.length > 0;
    });
    expect(group!.members[0]!.clientId).toBe(clientId);
    expect(group!.lag).toEqual([{ topic, lag: expect.any(Number) }]);

    const text = runCli(['groups', '--prefix', ctx.id, '--state', 'stable']);
    expect(text.status).toBe(0);
    expect(text.stdout).toContain(`${ctx.group}  Stable  1 member(s)  ${topic} lag `);
    expect(text.stdout).toMatch(new RegExp(`^  ${clientId.replace(/[.#]/g, '\\$&')}  host \\S+  \\S+$`, 'm'));
    // The filter is exact: no other group of the shared stack shows up, and a state that does not match hides it.
    expect(text.stdout.split('\n').filter((l) => l && !l.startsWith(' '))).toHaveLength(1);
    expect(runCli(['groups', '--prefix', ctx.id, '--state', 'empty']).stdout.trim()).toBe('no consumer groups match');

    const url = await observabilityUrl(child);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const own = { stream: 'event-counts', group: ctx.group, process: `${hostname()}#${pid}` };
    expect(metricValue(metrics, 'nodejs_heap_size_used_bytes', own)).toBeGreaterThan(0);
    expect(metricValue(metrics, 'nodejs_eventloop_lag_seconds', own)).toBeGreaterThanOrEqual(0);
    // The stream's own series carry the group and process too, beside their own labels.
    expect(metricValue(metrics, 'sluice_records_in_total', own)).toBeGreaterThanOrEqual(0);

    child.process.kill('SIGTERM');
    expect(await child.exited).toBe(0);
  }, 120_000);

  it("the ingest API's metrics carry its topic and process, with the process metrics", async () => {
    const ingestTopic = await ctx.createTopic('ingest', 1);
    await ctx.createTopic('ingest.dlq', 1);
    const server = await startIngestServer(ctx.config, {
      logger: pino({ level: 'silent' }),
      settings: { port: 0, topic: ingestTopic, apiKeys: [hashApiKey('k')], rateLimitPerSecond: 1000 },
    });
    try {
      const metrics = await (await fetch(`${server.adminUrl}/metrics`)).text();
      const own = { service: 'ingest', topic: ingestTopic, process: `${hostname()}#${process.pid}` };
      expect(metricValue(metrics, 'nodejs_heap_size_used_bytes', own)).toBeGreaterThan(0);
      expect(metricValue(metrics, 'nodejs_eventloop_lag_seconds', own)).toBeGreaterThanOrEqual(0);
    } finally {
      await server.close();
    }
  }, 60_000);

  it('check reports the schema registry beside Kafka, Redis and ClickHouse', () => {
    const result = runCli(['check']);
    expect(result.status).toBe(0);
    const services = result.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/)[0]);
    expect(services).toEqual(['kafka', 'redis', 'clickhouse', 'registry']);
    expect(result.stdout).toMatch(/^registry +http:\/\/\S+: \d+ subject\(s\)$/m);
  });
});
