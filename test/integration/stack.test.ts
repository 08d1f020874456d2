import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfig } from '../../src/config';
import { createKafka } from '../../src/kafka';
import { stackStatus } from '../../src/stack';
import { runCli } from '../helpers/cli';
import { createTestContext, type TestContext } from '../helpers/context';
import { readTopic } from '../helpers/topics';

describe('the local stack is made of the real services', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext('stack');
  });
  afterAll(async () => ctx.cleanup());

  it('Kafka answers the admin API with the cluster id written by kafka-storage format, and does not auto-create topics', async () => {
    const cluster = await ctx.admin.describeCluster();
    const meta = readFileSync(resolve(ctx.config.stack.dir, 'kafka', 'data', 'meta.properties'), 'utf8');
    expect(meta).toContain(`cluster.id=${cluster.clusterId}`);
    const broker = String(cluster.brokers[0]!.nodeId);
    const described = await ctx.admin.describeConfigs([
      { type: 'broker', name: broker, configNames: ['auto.create.topics.enable', 'process.roles'] },
    ]);
    const entries = Object.fromEntries(described.get(broker)!.map((e) => [e.name, e.value]));
    expect(entries['auto.create.topics.enable']).toBe('false');
    expect(entries['process.roles']).toBe('broker,controller'); // KRaft, no ZooKeeper
  });

  it('Kafka round-trips records through a topic of this test', async () => {
    const topic = await ctx.createTopic('roundtrip', 3);
    const kafka = createKafka(ctx.config);
    const producer = kafka.producer({ idempotent: true });
    await producer.connect();
    const sent = Array.from({ length: 30 }, (_, i) => `value-${i}`);
    await producer.send({ topic, messages: sent.map((value, i) => ({ key: `k${i}`, value })) });
    await producer.disconnect();
    const offsets = await ctx.admin.fetchTopicOffsets(topic);
    expect(offsets.reduce((sum, p) => sum + Number(p.high), 0)).toBe(sent.length);

    const received = (await readTopic(kafka, topic)).map((r) => r.value!.toString());
    expect(received.sort()).toEqual([...sent].sort());
  });

  it('Redis is a real server with append-only persistence fsynced every second', async () => {
    const info = await ctx.redis.info('server');
    expect(info).toMatch(/redis_version:7\./);
    expect(await ctx.redis.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    expect(await ctx.redis.config('GET', 'appendfsync')).toEqual(['appendfsync', 'everysec']);
  });

  it("ClickHouse answers SELECT version() and keeps its data under the project's stack folder", async () => {
    const version = await (
      await ctx.clickhouse.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' })
    ).json<{ v: string }>();
    expect(version[0]!.v).toMatch(/^\d+\.\d+\./);
    const rows = await (
      await ctx.clickhouse.query({
        query: `SELECT name FROM system.databases WHERE name = '${ctx.id}'`,
        format: 'JSONEachRow',
      })
    ).json<{ name: string }>();
    expect(rows).toEqual([{ name: ctx.id }]);
    const pid = readFileSync(resolve(ctx.config.stack.dir, 'run', 'clickhouse.pid'), 'utf8').trim();
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    expect(cmdline).toContain(resolve(ctx.config.stack.dir, 'clickhouse', 'config.xml'));
  });

  it('`stack up` is idempotent: a second run keeps the same processes', async () => {
    const before = await stackStatus(loadConfig());
    const run = runCli(['stack', 'up']);
    expect(run.status).toBe(0);
    const after = await stackStatus(loadConfig());
    expect(after.map((s) => [s.name, s.pid, s.healthy])).toEqual(before.map((s) => [s.name, s.pid, true]));
  });
});

describe('start-up errors are one line naming the problem', () => {
  it('a port already taken', () => {
    const config = loadConfig();
    const run = runCli(['stack', 'up', 'redis'], {
      SLUICE_STACK_DIR: mkdtempSync(join(tmpdir(), 'sluice-stack-')),
      SLUICE_STACK_REDIS_PORT: String(config.stack.kafkaPort), // Kafka holds it
    });
    expect(run.status).toBe(1);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain(`port ${config.stack.kafkaPort} for redis is already in use`);
    expect(run.stderr).toContain('SLUICE_STACK_REDIS_PORT');
  });

  it('a wrong ClickHouse password', () => {
    const run = runCli(['check'], { SLUICE_CLICKHOUSE_PASSWORD: 'not-the-password' });
    expect(run.status).toBe(1);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/ClickHouse .* rejected user 'sluice'.*SLUICE_CLICKHOUSE_PASSWORD/);
  });

  it('an invalid setting, before touching any service', () => {
    const run = runCli(['check'], { SLUICE_REDIS_URL: 'localhost:6379' });
    expect(run.status).toBe(1);
    expect(run.stderr.trim()).toBe(
      'sluice: invalid setting redis.url (SLUICE_REDIS_URL): expected a URL starting with redis: or rediss://',
    );
  });

  it('the configured services all answer with the right credentials', () => {
    const run = runCli(['check']);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/kafka .*cluster/);
    expect(run.stdout).toMatch(/ClickHouse \d+\./);
  });
});
