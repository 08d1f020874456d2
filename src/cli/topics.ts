import type { Command } from 'commander';
import { loadConfig } from '../config';
import { createKafka } from '../kafka';
import { applyPlan, formatPlan, loadTopicDeclarations, planTopics, TopicDriftError } from '../topics';
import { printLine } from './output';

interface TopicOptions {
  dir: string;
  prefix: string;
}

async function withAdmin<T>(
  fn: (admin: ReturnType<ReturnType<typeof createKafka>['admin']>) => Promise<T>,
): Promise<T> {
  const admin = createKafka(loadConfig(), { retries: 2 }).admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

export function registerTopicsCommands(program: Command): void {
  const topics = program
    .command('topics')
    .description('topics as code: declarations in topics/*.yaml applied to the cluster')
    .addHelpText(
      'after',
      '\nOne file per topic family: the topic, its partitions, replication, retention, and companions (.dlq, .retry.N, .late).',
    );

  topics
    .command('apply')
    .description(
      'create missing topics, raise partition counts, set configs that differ; report drift it will not change',
    )
    .option('--dry-run', 'print the plan, change nothing')
    .option('--dir <dir>', 'directory of declarations', 'topics')
    .option('--prefix <prefix>', 'prepend to every topic name (e.g. per environment or per test)', '')
    .option('--fail-on-drift', 'exit 1 if any drift is found (for CI)')
    .addHelpText('after', '\nExamples:\n  sluice topics apply --dry-run\n  sluice topics apply --prefix staging.')
    .action(async (opts: TopicOptions & { dryRun?: boolean; failOnDrift?: boolean }) => {
      const specs = loadTopicDeclarations(opts.dir, opts.prefix);
      await withAdmin(async (admin) => {
        const plan = await planTopics(admin, specs);
        if (!opts.dryRun) await applyPlan(admin, plan);
        for (const line of formatPlan(plan, Boolean(opts.dryRun))) printLine(line);
        if (opts.failOnDrift && plan.drift.length > 0) {
          throw new TopicDriftError(
            `${plan.drift.length} topic setting(s) drifted from the declarations (listed above)`,
          );
        }
      });
    });

  topics
    .command('list')
    .description('the declared topics and what the cluster has: partitions, replication, status')
    .option('--dir <dir>', 'directory of declarations', 'topics')
    .option('--prefix <prefix>', 'prepend to every topic name', '')
    .action(async (opts: TopicOptions) => {
      const specs = loadTopicDeclarations(opts.dir, opts.prefix);
      await withAdmin(async (admin) => {
        const plan = await planTopics(admin, specs);
        const existing = new Set(await admin.listTopics());
        const present = specs.filter((s) => existing.has(s.name)).map((s) => s.name);
        const metadata = present.length > 0 ? await admin.fetchTopicMetadata(present) : [];
        const actual = new Map(metadata.map((t) => [t.name, t]));
        printLine(['TOPIC', 'ROLE', 'PARTITIONS', 'REPLICATION', 'STATUS'].join('\t'));
        for (const spec of specs) {
          const t = actual.get(spec.name);
          const status = !t
            ? 'missing'
            : plan.drift.some((d) => d.topic === spec.name)
              ? 'drift'
              : plan.actions.some((a) => a.topic === spec.name)
                ? 'differs'
                : 'ok';
          const partitions = t ? `${t.partitions.length}/${spec.partitions}` : `-/${spec.partitions}`;
          const replication = t
            ? `${Math.max(0, ...t.partitions.map((p) => p.replicas.length))}/${spec.replicationFactor}`
            : `-/${spec.replicationFactor}`;
          printLine([spec.name, spec.role, partitions, replication, status].join('\t'));
        }
      });
    });
}
