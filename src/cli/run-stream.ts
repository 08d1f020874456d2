import type { Command } from 'commander';
import { loadConfig } from '../config';
import { listStreams, loadStream, startStream } from '../process';
import { DEFAULT_HTTP_PORT, serveStream } from '../process/monitor';
import { createLogger, startTracing, tracingFromEnv } from '../telemetry';
import { printLine } from './output';

interface RunOpts {
  bounded?: boolean;
  group?: string;
  topic?: string;
  sessionTimeout: string;
  flushInterval: string;
  commitInterval: string;
  maxPendingRows: string;
  json?: boolean;
  httpPort?: string;
  httpHost: string;
  stuckAfter: string;
  shutdownTimeout: string;
}

export function registerRunCommand(program: Command): void {
  program
    .command('run <stream>')
    .description('run a stream from streams/<stream> as a member of its consumer group')
    .option('--bounded', 'process up to the end offsets seen at start, close every window, commit and exit 0')
    .option('--group <id>', 'consumer group (default sluice.<stream>)')
    .option('--topic <name>', "read this topic instead of the stream's own (same schema)")
    .option('--session-timeout <ms>', 'consumer group session timeout', '30000')
    .option('--flush-interval <ms>', 'write rows, dead letters and late events at least this often', '1000')
    .option('--commit-interval <ms>', 'save window state and commit offsets at least this often', '5000')
    .option('--max-pending-rows <n>', 'checkpoint as soon as this many rows wait for the sink', '20000')
    .option('--json', 'print the summary as JSON')
    .option(
      '--http-port <port>',
      `serve /metrics, /healthz, /readyz and the status page on this port (0: a free one; default ${DEFAULT_HTTP_PORT})`,
    )
    .option('--http-host <host>', 'address to serve them on (0.0.0.0 in a container)', '127.0.0.1')
    .option('--shutdown-timeout <ms>', 'on SIGTERM, how long the final flush and commit may take', '20000')
    .option(
      '--stuck-after <seconds>',
      '/readyz fails once partitions stayed paused this long while their lag grew',
      '120',
    )
    .addHelpText(
      'after',
      `\nStreams: ${listStreams().join(', ') || 'none'}\n\nExamples:\n  sluice run event-counts\n  sluice run event-counts --bounded --json\n\nSIGTERM or Ctrl-C flushes, commits and exits.`,
    )
    .action(async (name: string, opts: RunOpts) => {
      const config = loadConfig();
      const log = createLogger(config.log.level);
      // Redacted by the logger (passwords by path, credentials in URLs): safe to show at debug level.
      log.debug({ config }, 'configuration');
      // OTLP traces when OTEL_EXPORTER_OTLP_ENDPOINT (or SLUICE_TRACING=1) is set; ClickHouse inserts are spans.
      const tracingOptions = tracingFromEnv(`sluice-${name}`);
      const tracing = tracingOptions ? startTracing(tracingOptions) : undefined;
      const definition = loadStream(name);
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
          sessionTimeoutMs: Number(opts.sessionTimeout),
          flushIntervalMs: Number(opts.flushInterval),
          commitIntervalMs: Number(opts.commitInterval),
          maxPendingRows: Number(opts.maxPendingRows),
          shutdownTimeoutMs: Number(opts.shutdownTimeout),
        },
        log,
      );
      const served = await serveStream(
        { name: definition.name, status: () => running.runner.status(), sinkStats: () => running.sinkStats() },
        config,
        {
          host: opts.httpHost,
          port: opts.httpPort === undefined ? DEFAULT_HTTP_PORT : Number(opts.httpPort),
          portExplicit: opts.httpPort !== undefined,
          stuckAfterMs: Number(opts.stuckAfter) * 1000,
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
      printLine(
        opts.json
          ? JSON.stringify(summary)
          : Object.entries(summary)
              .map(([k, v]) => `${k}=${v}`)
              .join(' '),
      );
    });
}
