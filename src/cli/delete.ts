import type { Command } from 'commander';
import { loadConfig } from '../config';
import { createKafka, withAdmin } from '../kafka';
import { deleteStreamFootprint, findStreamFootprint, formatFootprint } from '../lifecycle';
import { groupIdOf, listStreams, loadStream, refuseSideTopicSource, type StreamDefinition } from '../process';
import { createRedis } from '../redis';
import { RegistryClient } from '../schema';
import { createClickHouse } from '../sink/clickhouse/client';
import { assertIdentifier } from '../sink/clickhouse/migrations';
import { printLine } from './output';

interface DeleteFlags {
  topic?: string;
  group?: string;
  yes?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

/** The tables and views a stream declares. */
const tablesOf = (definition: StreamDefinition<unknown>): string[] => [
  ...new Set(
    [definition.raw?.table, definition.windowed?.table, ...definition.tables.map((t) => t.name)].filter(
      (t): t is string => t !== undefined,
    ),
  ),
];

export function registerDeleteCommands(program: Command): void {
  const del = program.command('delete').description('delete what a stream owns (a dry run unless --yes)');
  del
    .command('stream <name>')
    .description(
      "delete a stream's topics, consumer groups, Redis keys, registry subjects and ClickHouse tables; prints the plan, acts only with --yes",
    )
    .option('--topic <name>', "the topic it read instead of its own (as given to 'sluice run --topic')")
    .option('--group <id>', 'its consumer group (default sluice.<stream>)')
    .option('--yes', 'really delete')
    .option('--dry-run', 'print the plan only (the default)')
    .option('--json', 'print the plan as JSON')
    .addHelpText(
      'after',
      `
Owned by a stream: its source topic and companions (<topic>.dlq, .late, .retry.N; not topics that merely
share the prefix), their registry subjects (<topic>-value/-key), its group and the replay, shadow and
redrive groups derived from it (exact names), its Redis keys (dedup marks, window state, epoch, replay
hold) under the configured key prefix, and its tables in the configured ClickHouse database (the whole
database when nothing else is in it). Topics read by another stream under streams/, or by any other
group with offsets on them, are kept, and so are tables another stream declares too. Refused while a
listed group has live members.

Examples:
  sluice delete stream event-counts
  sluice delete stream event-counts --topic staging.events --group staging.counts --yes

Exit codes: 0 ok (or plan shown), 1 failure or refused, 2 usage error.`,
    )
    .action(async (name: string, opts: DeleteFlags) => {
      const config = loadConfig();
      const definition = loadStream(name);
      const topic = opts.topic ?? definition.source.topic;
      // Such a source shares its side topics and redrive groups with the topic it is named after: deleting
      // "its" companions would delete that topic's.
      refuseSideTopicSource(topic);
      // Declared streams reading the same topic (by their own topic: this command cannot know another's --topic;
      // groups with offsets on the topic are found on Kafka) and the tables they declare.
      const others = listStreams()
        .filter((other) => other !== definition.name)
        .map((other) => loadStream(other));

      const database = assertIdentifier('database', config.clickhouse.database);
      const redis = createRedis(config);
      const clickhouse = createClickHouse(config.clickhouse);
      try {
        await redis.connect();
        await withAdmin(createKafka(config, { retries: 2 }), async (admin) => {
          const services = { admin, redis, clickhouse, registry: new RegistryClient(config.registry.url) };
          const footprint = await findStreamFootprint(
            {
              stream: definition.name,
              topic,
              group: opts.group ?? groupIdOf(definition),
              tables: tablesOf(definition),
              tablesOfOthers: others.flatMap(tablesOf),
              otherStreamSources: others.map((other) => ({ stream: other.name, topic: other.source.topic })),
              keyPrefix: config.redis.keyPrefix,
              database,
            },
            services,
          );
          const apply = Boolean(opts.yes && !opts.dryRun);
          if (opts.json) printLine(JSON.stringify({ ...footprint, applied: apply }));
          else for (const line of formatFootprint(footprint)) printLine(line);
          if (!apply) {
            if (!opts.json) printLine('dry run: nothing deleted; add --yes to delete the above');
            return;
          }
          await deleteStreamFootprint(footprint, services);
          if (!opts.json) printLine('deleted');
        });
      } finally {
        redis.disconnect();
        await clickhouse.close();
      }
    });
}
