import type { Command } from 'commander';
import { loadConfig } from '../config';
import { dlqTopic, lateTopic } from '../dlq';
import { SluiceError } from '../errors';
import { createKafka, missingTopics, withAdmin } from '../kafka';
import {
  lateShareWarning,
  listStreams,
  loadStream,
  PROCESSING_OPTIONS,
  RUN_OPTIONS,
  SERVING_OPTIONS,
  startStream,
} from '../process';
import { serveStream } from '../process/monitor';
import { createLogger, startTracing, tracingFromEnv } from '../telemetry';
import { addOptionFlags, readOptionFlags } from './option-flags';
import { printLine } from './output';

interface RunFlags {
  bounded?: boolean;
  group?: string;
  topic?: string;
  json?: boolean;
}

export function registerRunCommand(program: Command): void {
  const command = program
    .command('run <stream>')
    .description('run a stream from streams/<stream> as a member of its consumer group')
    .option('--bounded', 'process up to the end offsets seen at start, close every window, commit and exit 0')
    .option('--group <id>', 'consumer group (default sluice.<stream>)')
    .option('--topic <name>', "read this topic instead of the stream's own (same schema)")
    .option('--json', 'print the summary as JSON');
  addOptionFlags(command, RUN_OPTIONS);
  command
    .addHelpText(
      'after',
      `\nStreams: ${listStreams().join(', ') || 'none'}\n\nExamples:\n  sluice run event-counts\n  sluice run event-counts --bounded --json\n\nSIGTERM or Ctrl-C flushes, commits and exits.`,
    )
    .action(async (name: string, opts: RunFlags) => {
      const processing = readOptionFlags(command, PROCESSING_OPTIONS).values;
      const serving = readOptionFlags(command, SERVING_OPTIONS);
      const config = loadConfig();
      const log = createLogger(config.log.level);
      // Redacted by the logger (passwords by path, credentials in URLs): safe to show at debug level.
      log.debug({ config }, 'configuration');
      // OTLP traces when OTEL_EXPORTER_OTLP_ENDPOINT (or SLUICE_TRACING=1) is set; ClickHouse inserts are spans.
      const tracingOptions = tracingFromEnv(`sluice-${name}`);
      const tracing = tracingOptions ? startTracing(tracingOptions) : undefined;
      const definition = loadStream(name);
      // Before anything is created (database, tables) or the group is joined: a wrong --topic or an
      // unapplied declaration fails here in one line, leaving nothing behind.
      const topic = opts.topic ?? definition.source.topic;
      const missing = await withAdmin(createKafka(config, { retries: 2 }), (admin) =>
        missingTopics(admin, [topic, dlqTopic(topic), lateTopic(topic)]),
      );
      if (missing.includes(topic))
        throw new SluiceError(
          'TOPIC_MISSING',
          `topic '${topic}' does not exist: ${
            opts.topic
              ? `check --topic ('sluice topics list' shows the topics)`
              : `create it with 'sluice topics apply' (declared in topics/${topic}.yaml)`
          }`,
        );
      // Dead letters and late events are written in the transaction of each commit: without their topics
      // every commit that carries one fails, and the partition's work since its last commit is redone for
      // as long as they are missing.
      if (missing.length > 0)
        throw new SluiceError(
          'TOPIC_MISSING',
          `the side topics ${missing.map((t) => `'${t}'`).join(' and ')} of '${topic}' do not exist: the stream writes its dead letters and late events there; ${
            opts.topic
              ? `create them beside --topic (with the retention you want for them)`
              : `create them with 'sluice topics apply' (companions declared in topics/${topic}.yaml)`
          }`,
        );
      // Signals are caught from the start: one that arrives while the stream is still joining its group
      // stops it right after start-up, with the same flush-and-commit path, instead of killing the process.
      let stopRequested: string | undefined;
      let onSignal = (signal: string) => {
        stopRequested = signal;
      };
      process.once('SIGTERM', () => onSignal('SIGTERM'));
      process.once('SIGINT', () => onSignal('SIGINT'));
      const running = await startStream(
        definition,
        config,
        {
          bounded: opts.bounded ?? false,
          groupId: opts.group,
          topic: opts.topic,
          ...processing,
        },
        log,
      );
      const served = await serveStream(
        { name: definition.name, status: () => running.runner.status(), sinkStats: () => running.sinkStats() },
        config,
        {
          host: serving.values.httpHost,
          port: serving.values.httpPort,
          portExplicit: serving.given.has('httpPort'),
          stuckAfterMs: serving.values.stuckAfterSeconds * 1000,
        },
        log,
      );
      onSignal = (signal: string) => {
        log.info({ signal }, 'stopping: flushing and committing');
        // A failed shutdown (e.g. the final flush timed out) settles `done` with the error, reported below.
        running.stop().catch(() => undefined);
      };
      if (stopRequested) onSignal(stopRequested);
      const summary = await running.done.finally(async () => {
        await served.close();
        await tracing?.shutdown();
      });
      const warning = lateShareWarning(summary, definition.name);
      printLine(
        opts.json
          ? JSON.stringify({ ...summary, warnings: warning ? [warning] : [] })
          : Object.entries(summary)
              .map(([k, v]) => `${k}=${v}`)
              .join(' '),
      );
      if (warning && !opts.json) printLine(`warning: ${warning}`);
    });
}
