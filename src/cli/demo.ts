import type { Command } from 'commander';
import { loadConfig, type SluiceConfig } from '../config';
import { SluiceError } from '../errors';
import { checkRun, ExpectedAnswerBuilder, produceWorkload } from '../generator';
import { createKafka, endOffsets, withAdmin } from '../kafka';
import { createRedis } from '../redis';
import { loadStream, startStream } from '../process';
import { formatRegistration, loadCatalog, RegistryClient, registerSchemas } from '../schema';
import { createClickHouse } from '../sink/clickhouse';
import { stackUp } from '../stack';
import { createLogger } from '../telemetry';
import { applyPlan, formatPlan, loadTopicDeclarations, planTopics } from '../topics';
import { printLine } from './output';

const DAY_MS = 24 * 60 * 60 * 1000;
const DEMO_EPOCH = Date.UTC(2026, 0, 1);
/**
 * Event ids are a function of the generator's seed, and dedup marks outlive a
 * run (24 h): the demo's seeds start far from the small seeds tests and
 * hand-run workloads use, so its events are never taken for someone else's.
 */
const DEMO_SEED_BASE = 1_000_000;

/** Echoes the command an operator would type for the step that follows. */
function echo(command: string): void {
  printLine(`\n$ sluice ${command}`);
}

/** What `sluice topics apply` does with its defaults: the declarations in topics/ made true on the cluster. */
async function applyTopics(config: SluiceConfig): Promise<void> {
  const admin = createKafka(config, { retries: 2 }).admin();
  await admin.connect();
  try {
    const plan = await planTopics(admin, loadTopicDeclarations('topics'));
    await applyPlan(admin, plan);
    for (const line of formatPlan(plan, false)) printLine(line);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * The main job: the reference pipeline end to end on the local stack. Each
 * run writes a new day of event time (day N for the N-th run), so runs never
 * overlap and the check below compares exactly this run's results with the
 * generator's own answer.
 */
export async function runDemo(config: SluiceConfig, events: number): Promise<void> {
  echo('stack up');
  await stackUp(config, printLine);
  echo('topics apply');
  await applyTopics(config);
  echo('schemas register');
  await registerSchemas(new RegistryClient(config.registry.url), loadCatalog(), {
    onFamily: (done) => printLine(formatRegistration(done)),
  });

  const redis = createRedis(config);
  await redis.connect();
  const run = await redis.incr(`${config.redis.keyPrefix}demo:runs`);
  redis.disconnect();
  const start = DEMO_EPOCH + (run - 1) * DAY_MS;
  const seed = DEMO_SEED_BASE + run;

  const stream = loadStream('event-counts');
  const topic = stream.source.topic;
  const [dlqBefore, lateBefore] = await withAdmin(createKafka(config), (admin) =>
    Promise.all([endOffsets(admin, `${topic}.dlq`), endOffsets(admin, `${topic}.late`)]),
  );

  printLine(
    `\n$ sluice generate --events ${events} --seed ${seed} --start ${new Date(start).toISOString()} --rate 200`,
  );
  const expected = new ExpectedAnswerBuilder();
  const produced = await produceWorkload({
    config,
    topic,
    count: events,
    seed,
    startTime: start,
    ratePerSecond: 200,
    onLogEntry: (e) => expected.add(e),
  });
  const answer = expected.result();
  printLine(
    `produced ${produced.records} records in ${produced.seconds.toFixed(1)} s: valid ${answer.byKind.valid}, duplicate ${answer.byKind.duplicate}, late ${answer.byKind.late}, poison ${answer.byKind.poison}`,
  );

  printLine(`\n$ sluice run event-counts --bounded`);
  const running = await startStream(
    stream,
    config,
    { bounded: true },
    createLogger(config.log.level === 'info' ? 'warn' : config.log.level),
  );
  const summary = await running.done;
  printLine(
    `processed ${summary.recordsIn} records in ${summary.seconds.toFixed(1)} s (${Math.round(summary.recordsIn / summary.seconds)}/s): ` +
      `${summary.rawRows} raw rows, ${summary.deduplicated} duplicates dropped, ${summary.windowRows} window partials, ` +
      `${summary.late} late, ${summary.deadLettered} dead-lettered`,
  );

  // The check: this run's events in ClickHouse and its side records against the generator's answer.
  const db = config.clickhouse.database;
  const ch = createClickHouse(config.clickhouse, db);
  // Each run has its own day of event time (its late events lie an hour or two before it, where no run's
  // events are), so the answer's span of event time picks this run's rows out of the shared tables.
  const check = await checkRun(
    {
      clickhouse: ch,
      kafka: createKafka(config),
      dlqTopic: `${topic}.dlq`,
      lateTopic: `${topic}.late`,
      scope: {
        eventTime: answer.eventTimeSpan ?? { from: start, to: start },
        dlqFrom: dlqBefore,
        lateFrom: lateBefore,
      },
    },
    answer,
  );
  printLine("\ncheck against the generator's own answer:");
  for (const { what, expected: want, found } of check.figures)
    printLine(`  ${want === found ? 'ok  ' : 'FAIL'} ${what}: expected ${want}, found ${found}`);
  if (!check.valid) printLine(`differences:\n${check.problems.map((p) => `  ${p}`).join('\n')}`);

  const from = Math.floor(start / 1000);
  const to = Math.floor((start + DAY_MS) / 1000);
  const sample = `SELECT window_start, event_type, campaign_id, events, distinct_users_in_window, amount
FROM ${db}.event_counts_1m
WHERE window_start >= toDateTime(${from}) AND window_start < toDateTime(${to})
ORDER BY events DESC, window_start, event_type, campaign_id
LIMIT 8`;
  printLine(`\nclickhouse> ${sample.replace(/\n/g, '\n            ')}`);
  const rows = await (await ch.query({ query: sample, format: 'JSONEachRow' })).json<Record<string, string | number>>();
  const header = ['window_start', 'event_type', 'campaign_id', 'events', 'distinct_users_in_window', 'amount'];
  printLine(header.join('\t'));
  for (const r of rows) printLine(header.map((h) => String(r[h])).join('\t'));
  await ch.close();
  if (!check.valid)
    throw new SluiceError('RESULT_MISMATCH', "the pipeline result differs from the generator's answer (see above)");
  printLine(
    `\nrun ${run} done: results for ${new Date(start).toISOString().slice(0, 10)} are in ClickHouse database '${db}' (see docs/analysts.md).`,
  );
}

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'the reference pipeline end to end on the local stack: stack up, topics, schemas, generator, stream, results',
    )
    .option('--events <n>', 'records to generate', '50000')
    .addHelpText('after', '\nExamples:\n  sluice demo\n  sluice demo --events 200000')
    .action(async (opts: { events: string }) => {
      await runDemo(loadConfig(), Number(opts.events));
    });
}
