import type { Command } from 'commander';
import { loadConfig } from '../config';
import { createKafka } from '../kafka';
import { createRedis } from '../redis';
import { groupIdOf, loadStream, readEpoch } from '../process';
import { formatLag, lagReport, type LagReport } from '../replay';
import { groupTopics } from '../replay';
import { printLine } from './output';
import { usageError } from './replay';

export function registerLagCommand(program: Command): void {
  program
    .command('lag [stream]')
    .description("per-partition committed offset, end offset and lag of a stream's group, and its event-time watermark")
    .option('--group <id>', 'the consumer group (default sluice.<stream>; required without a stream)')
    .option('--topic <name>', "the topic (default the stream's own; without a stream: every topic the group committed)")
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
The watermark is read from the window-state snapshot saved with each committed offset:
max event time seen - the stream's out-of-orderness; the stream watermark is the minimum.

Examples:
  sluice lag event-counts
  sluice lag event-counts --json
  sluice lag --group my-connector

Exit codes: 0 ok, 1 failure, 2 usage error.`,
    )
    .action(async (name: string | undefined, opts: { group?: string; topic?: string; json?: boolean }) => {
      if (!name && !opts.group) throw usageError('give a stream or --group <id> (see sluice lag --help)');
      const config = loadConfig();
      const definition = name ? loadStream(name) : undefined;
      const group = opts.group ?? groupIdOf(definition!);
      const admin = createKafka(config, { retries: 2 }).admin();
      await admin.connect();
      const redis = definition?.windowed ? createRedis(config, { maxRetriesPerRequest: 2 }) : undefined;
      const reports: LagReport[] = [];
      try {
        const topics = opts.topic
          ? [opts.topic]
          : definition
            ? [definition.source.topic]
            : await groupTopics(admin, group);
        if (topics.length === 0) throw usageError(`group '${group}' has no committed offsets; give --topic`);
        if (redis) await redis.connect();
        const state =
          redis && definition?.windowed
            ? {
                redis,
                config,
                stream: definition.name,
                epoch: await readEpoch(config, definition),
                outOfOrdernessMs: definition.windowed.outOfOrdernessMs,
              }
            : undefined;
        for (const topic of topics) reports.push(await lagReport(admin, { group, topic }, state));
      } finally {
        redis?.disconnect();
        await admin.disconnect().catch(() => undefined);
      }
      if (opts.json) printLine(JSON.stringify(reports.length === 1 ? reports[0] : reports));
      else for (const r of reports) for (const line of formatLag(r)) printLine(line);
    });
}
