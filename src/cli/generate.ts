import { InvalidArgumentError, type Command } from 'commander';
import { SingleBar } from 'cli-progress';
import { loadConfig } from '../config';
import { produceWorkload, type ProduceResult } from '../generator';
import { printLine } from './output';

const integer = (name: string, min: number) => (raw: string) => {
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
  return n;
};
const ratio = (raw: string) => {
  const n = Number(raw);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError('expected a ratio between 0 and 1, e.g. 0.02');
  return n;
};
const positive = (raw: string) => {
  const n = Number(raw);
  if (!(n > 0)) throw new InvalidArgumentError('expected a positive number');
  return n;
};
const startTime = (raw: string) => {
  if (raw === 'now') return Date.now();
  const n = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw);
  if (!Number.isSafeInteger(n))
    throw new InvalidArgumentError("expected 'now', an ISO time (2026-01-01T00:00:00Z) or epoch ms");
  return n;
};

interface GenerateOptions {
  events: number;
  seed: number;
  rate: number;
  start?: number;
  users: number;
  campaigns: number;
  duplicates: number;
  late: number;
  poison: number;
  spread: number;
  topic: string;
  partitions?: number;
  schemaId?: number;
  batchSize: number;
  log?: string;
  json?: boolean;
}

function formatSpan(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

function printSummary(result: ProduceResult, log: string | undefined): void {
  const k = result.byKind;
  printLine(
    `produced ${result.records} records to ${result.topic} in ${result.seconds.toFixed(2)} s (${Math.round(result.recordsPerSecond)} records/s)`,
  );
  const reasons = Object.entries(result.poisonByReason)
    .map(([reason, n]) => `${reason} ${n}`)
    .join(', ');
  printLine(
    `  valid ${k.valid}, duplicate ${k.duplicate}, late ${k.late}, poison ${k.poison}${reasons ? ` (${reasons})` : ''}`,
  );
  if (result.eventTimeSpan) {
    const { first, last } = result.eventTimeSpan;
    printLine(
      `  event time ${new Date(first).toISOString()} .. ${new Date(last).toISOString()} (${formatSpan(last - first)})`,
    );
  }
  printLine(
    `  schema id ${result.schemaId} (analytics_event.v2), ${(result.valueBytes / 1e6).toFixed(1)} MB of values`,
  );
  if (log) printLine(`  log written to ${log}`);
}

/** `sluice generate`: the reference workload (docs/design.md §4) into a topic, with its log. */
export function registerGenerateCommand(program: Command): void {
  program
    .command('generate')
    .description(
      'produce the reference workload (valid, duplicate, late and poison events) to a topic, deterministically from a seed',
    )
    .requiredOption('--events <n>', 'total records to produce, of every kind', integer('--events', 1))
    .option(
      '--seed <n>',
      'seed: the same seed and options produce the same records, byte for byte',
      integer('--seed', 0),
      1,
    )
    .option('--rate <n>', 'events per second of event time', positive, 100)
    .option(
      '--start <time>',
      "earliest event time: ISO time, epoch ms or 'now' (default 2026-01-01T00:00:00Z)",
      startTime,
    )
    .option('--users <n>', 'distinct users', integer('--users', 1), 10_000)
    .option('--campaigns <n>', 'distinct campaigns (20% of events have none)', integer('--campaigns', 1), 20)
    .option('--duplicates <ratio>', 'share of records that re-send an earlier event', ratio, 0.02)
    .option('--late <ratio>', 'share of records far behind the watermark (1-2 h before the start)', ratio, 0.005)
    .option('--poison <ratio>', 'share of undecodable or invalid records', ratio, 0.001)
    .option(
      '--spread <seconds>',
      'out-of-order spread: events trail the head by up to this',
      integer('--spread', 0),
      30,
    )
    .option('--topic <name>', 'topic to produce to', 'events')
    .option(
      '--partitions <n>',
      'create the topic with n partitions (and its .dlq and .late) if it does not exist',
      integer('--partitions', 1),
    )
    .option(
      '--schema-id <id>',
      'write with this registered schema id (of avro/analytics_event.v2.avsc) instead of registering that schema under <topic>-value',
      integer('--schema-id', 1),
    )
    .option('--batch-size <n>', 'records per produce call', integer('--batch-size', 1), 20_000)
    .option('--log <file>', 'write the log (one JSON line per record) to this file, for the expected answer')
    .option('--json', 'print the summary as one JSON line')
    .addHelpText(
      'after',
      '\nExamples:\n  sluice generate --events 100000 --seed 42 --log events.ndjson\n  sluice generate --events 2000000 --seed 7 --topic bench.events --partitions 6 --poison 0',
    )
    .action(async (opts: GenerateOptions) => {
      const config = loadConfig();
      const bar =
        process.stderr.isTTY && !opts.json
          ? new SingleBar({
              stream: process.stderr,
              hideCursor: true,
              format: 'producing [{bar}] {value}/{total} records',
            })
          : undefined;
      bar?.start(opts.events, 0);
      let result: ProduceResult;
      try {
        result = await produceWorkload({
          config,
          topic: opts.topic,
          count: opts.events,
          seed: opts.seed,
          ratePerSecond: opts.rate,
          startTime: opts.start,
          users: opts.users,
          campaigns: opts.campaigns,
          duplicateRatio: opts.duplicates,
          lateRatio: opts.late,
          poisonRatio: opts.poison,
          outOfOrderMs: opts.spread * 1000,
          createPartitions: opts.partitions,
          schemaId: opts.schemaId,
          batchSize: opts.batchSize,
          logPath: opts.log,
          onProgress: (sent) => bar?.update(sent),
        });
      } finally {
        bar?.stop();
      }
      if (opts.json) printLine(JSON.stringify(result));
      else printSummary(result, opts.log);
    });
}
