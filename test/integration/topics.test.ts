import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli';
import { createTestContext, type TestContext } from '../helpers/context';
import { applyPlan, loadTopicDeclarations, planTopics } from '../../src/topics';

/**
 * Topics as code against the real broker. Every topic is created under this
 * context's prefix, so the shared `events` topic is never touched.
 */
describe('topics apply', () => {
  let ctx: TestContext;
  let dir: string;
  let prefix: string;
  const reference = readFileSync(join(__dirname, '..', '..', 'topics', 'events.yaml'), 'utf8');
  const declare = (yaml: string) => writeFileSync(join(dir, 'events.yaml'), yaml);

  beforeAll(async () => {
    ctx = await createTestContext('topics');
    prefix = `${ctx.id}.`;
    dir = mkdtempSync(join(tmpdir(), 'sluice-topics-'));
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await ctx.cleanup();
  });

  const describe_ = async (topic: string) => {
    const [meta] = await ctx.admin.fetchTopicMetadata([topic]);
    const configs = await ctx.admin.describeConfigs([{ type: 'topic', name: topic }]);
    const config = Object.fromEntries(configs.get(topic)!.map((e) => [e.name, e.value]));
    return { partitions: meta!.partitions.length, replication: meta!.partitions[0]!.replicas.length, config };
  };
  const ours = async () => (await ctx.admin.listTopics()).filter((t) => t.startsWith(prefix)).sort();

  it('dry run prints the plan and changes nothing', () => {
    declare(reference);
    const run = runCli(['topics', 'apply', '--dry-run', '--dir', dir, '--prefix', prefix]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`+ create ${prefix}events: partitions 6`);
    expect(run.stdout).toContain('dry run: would create 5');
    return expect(ours()).resolves.toEqual([]);
  });

  it('creates the topic and its companions with the declared settings', async () => {
    const run = runCli(['topics', 'apply', '--dir', dir, '--prefix', prefix]);
    expect(run.status).toBe(0);
    expect(await ours()).toEqual(
      ['events', 'events.dlq', 'events.late', 'events.retry.1', 'events.retry.2'].map((t) => prefix + t).sort(),
    );
    const main = await describe_(`${prefix}events`);
    expect(main.partitions).toBe(6);
    expect(main.replication).toBe(1);
    expect(main.config['retention.ms']).toBe(String(7 * 86_400_000));
    expect(main.config['cleanup.policy']).toBe('delete');
    expect(main.config['compression.type']).toBe('producer');
    expect(main.config['max.message.bytes']).toBe('1048588');
    const dlq = await describe_(`${prefix}events.dlq`);
    expect(dlq.partitions).toBe(6);
    expect(dlq.config['retention.ms']).toBe(String(30 * 86_400_000));
    expect((await describe_(`${prefix}events.retry.2`)).config['retention.ms']).toBe(String(86_400_000));
    expect((await describe_(`${prefix}events.late`)).config['retention.ms']).toBe(String(14 * 86_400_000));
  });

  it('lists the declared topics with what the cluster has', () => {
    const run = runCli(['topics', 'list', '--dir', dir, '--prefix', prefix]);
    expect(run.status).toBe(0);
    const rows = run.stdout
      .trim()
      .split('\n')
      .map((l) => l.split('\t'));
    expect(rows[0]).toEqual(['TOPIC', 'ROLE', 'PARTITIONS', 'REPLICATION', 'STATUS']);
    expect(rows).toContainEqual([`${prefix}events`, 'topic', '6/6', '1/1', 'ok']);
    expect(rows).toContainEqual([`${prefix}events.retry.2`, 'retry', '6/6', '1/1', 'ok']);
    expect(rows).toHaveLength(6);
  });

  it('a second apply changes nothing', async () => {
    const plan = await planTopics(ctx.admin, loadTopicDeclarations(dir, prefix));
    expect(plan.actions).toEqual([]);
    expect(plan.drift).toEqual([]);
    expect(plan.unchanged).toHaveLength(5);
    const run = runCli(['topics', 'apply', '--dir', dir, '--prefix', prefix]);
    expect(run.stdout).toContain('created 0, changed 0, drift 0, up to date 5');
  });

  it('raises partitions and changes configs that differ, then is idempotent again', async () => {
    declare(reference.replace('partitions: 6', 'partitions: 8').replace('retention: 7d', 'retention: 2d'));
    const specs = loadTopicDeclarations(dir, prefix);
    const plan = await planTopics(ctx.admin, specs);
    expect(plan.actions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'addPartitions', topic: `${prefix}events`, from: 6, to: 8 }),
        expect.objectContaining({
          kind: 'alterConfig',
          topic: `${prefix}events`,
          changes: [{ name: 'retention.ms', from: String(7 * 86_400_000), to: String(2 * 86_400_000) }],
        }),
      ]),
    );
    // Companions inherit the partition count, so they grow too.
    expect(plan.actions.filter((a) => a.kind === 'addPartitions')).toHaveLength(5);
    await applyPlan(ctx.admin, plan);
    const main = await describe_(`${prefix}events`);
    expect(main.partitions).toBe(8);
    expect(main.config['retention.ms']).toBe(String(2 * 86_400_000));
    // The other declared configs survived the full-set AlterConfigs.
    expect(main.config['max.message.bytes']).toBe('1048588');
    expect((await describe_(`${prefix}events.late`)).partitions).toBe(8);
    const again = await planTopics(ctx.admin, specs);
    expect(again.actions).toEqual([]);
  });

  it('reports, and does not change, fewer partitions or another replication factor', async () => {
    declare(
      reference.replace('partitions: 6', 'partitions: 4').replace('replicationFactor: 1', 'replicationFactor: 3'),
    );
    const run = runCli(['topics', 'apply', '--dir', dir, '--prefix', prefix, '--fail-on-drift']);
    expect(run.status).toBe(1);
    expect(run.stdout).toContain(`! drift ${prefix}events: partitions declared 4, actual 8`);
    expect(run.stdout).toContain(`! drift ${prefix}events: replicationFactor declared 3, actual 1`);
    expect(run.stderr).toContain('drifted from the declarations');
    expect((await describe_(`${prefix}events`)).partitions).toBe(8);
  });

  it('names the file and field of a bad declaration', () => {
    declare(reference.replace('retention: 7d', 'retention: seven days'));
    const run = runCli(['topics', 'apply', '--dry-run', '--dir', dir, '--prefix', prefix]);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/events\.yaml: retention: expected a duration/);
  });
});
