/**
 * The consume measurements (bench/README.md, step 3), each on the same
 * pre-loaded topic from a fresh consumer group, each a child process
 * measured by /usr/bin/time: kcat, kafkajs reading and doing nothing,
 * Sluice's reference stream (bounded) and the Kafka Streams peer, the last
 * two timed until their last window row is visible in ClickHouse and checked
 * against the generator's answer.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { sleep } from '../../src/clock';
import type { SluiceConfig } from '../../src/config';
import type { ExpectedAnswer } from '../../src/generator';
import {
  createKafka,
  endOffsets,
  groupLag,
  kafkaClientName,
  withAdmin,
  type KafkaClient,
  type KafkaClientName,
} from '../../src/kafka';
import { createClickHouse } from '../../src/sink/clickhouse/client';
import { readProfile, summarizeProfile } from '../profile-summary';
import { round, runMeasured, serviceCpu, type ChildResult } from './measure';
import type { BenchOptions, MeasurementName } from './options';
import { note, ROOT, type RunReport } from './report';
import { verifyJob, type Verdict } from './verify';

export const SLUICE_BIN = join(ROOT, 'bin', 'sluice.js');
const KS_DIR = join(ROOT, 'bench', 'kafka-streams');

/** Everything a consume measurement reads: the loaded topic, its answer, and where each job writes. */
export interface ConsumeRun {
  config: SluiceConfig;
  options: BenchOptions;
  report: RunReport;
  topic: string;
  expected: ExpectedAnswer;
  /** Pids of the shared Kafka, Redis and ClickHouse, whose CPU each job also uses. */
  servicePids: Record<string, number>;
  /** The Kafka client library of the raw-client and Sluice runs (`kafka.client`); the configured one when unset. */
  kafkaClient?: KafkaClientName;
}

/** What a run of one Kafka client is told and named by: the client in the environment, and a suffix for its group, database and keys. */
function clientRun(run: ConsumeRun): { env: NodeJS.ProcessEnv; suffix: string; extra: Record<string, unknown> } {
  const client = run.kafkaClient ?? kafkaClientName(run.config);
  return {
    env: run.kafkaClient ? { ...process.env, SLUICE_KAFKA_CLIENT: run.kafkaClient } : process.env,
    suffix: run.kafkaClient ? `_${run.kafkaClient}` : '',
    extra: { kafka_client: client, node: process.version },
  };
}

export interface Measurement {
  name: MeasurementName;
  events: number;
  seconds: number;
  events_per_s: number;
  peak_rss_mb: number;
  cpu_seconds: number;
  valid: boolean;
  [more: string]: unknown;
}

/** The record of a measured child; `seconds` can be extended to when its results were visible. */
function measurementOf(
  name: MeasurementName,
  events: number,
  r: ChildResult,
  seconds: number,
  extra: Record<string, unknown>,
): Measurement {
  return {
    bench: 'consume',
    name,
    events,
    seconds: round(seconds),
    events_per_s: Math.round(events / seconds),
    peak_rss_mb: r.peakRssMb,
    cpu_seconds: r.cpuSeconds,
    valid: true,
    ...extra,
  };
}

/** librdkafka reading the topic in assign mode, no group: the floor of reading it. */
export async function measureKcat(run: ConsumeRun): Promise<Measurement> {
  const cpu = serviceCpu(run.servicePids);
  const brokers = run.config.kafka.brokers.join(',');
  const r = await runMeasured('kcat', ['-C', '-b', brokers, '-t', run.topic, '-o', 'beginning', '-e', '-q'], {
    timeoutMs: run.options.timeoutMs,
    discardStdout: true,
  });
  if (r.code !== 0) throw new Error(`kcat exited ${r.code}: ${r.stderr.trim()}`);
  return measurementOf('kcat', run.expected.records, r, r.seconds, {
    consumer_group: null,
    service_cpu_seconds: cpu(),
  });
}

/** kafkajs reading everything with the runner's fetch settings and doing nothing else (bench/raw-consume.ts). */
export async function measureRawClient(run: ConsumeRun): Promise<Measurement> {
  const cpu = serviceCpu(run.servicePids);
  const { env, suffix, extra } = clientRun(run);
  const r = await runMeasured(
    process.execPath,
    ['-r', 'tsx/cjs', join(ROOT, 'bench', 'raw-consume.ts'), run.topic, `bench.${run.report.hex}.raw${suffix}`],
    { timeoutMs: run.options.timeoutMs, cwd: ROOT, env },
  );
  if (r.code !== 0) throw new Error(`raw consumer exited ${r.code}: ${r.stderr.trim()}`);
  const inner = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { records: number; seconds: number };
  const m = measurementOf('raw_client', run.expected.records, r, r.seconds, {
    consume_seconds: round(inner.seconds),
    service_cpu_seconds: cpu(),
    ...extra,
  });
  if (inner.records !== run.expected.records) {
    m.valid = false;
    m.problems = [`read ${inner.records} records, the topic holds ${run.expected.records}`];
  }
  return m;
}

/** Polls until `query` returns at least `rows` in its `n` column, or the deadline passes; returns when it saw them. */
async function waitForRows(
  clickhouse: ClickHouseClient,
  query: string,
  rows: number,
  timeoutMs: number,
): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [r] = await (await clickhouse.query({ query, format: 'JSONEachRow' })).json<{ n: string }>();
    if (Number(r?.n ?? 0) >= rows) return Date.now();
    await sleep(100);
  }
  return undefined;
}

/**
 * After a job's process ended: an invalid measurement if it failed; otherwise
 * how long it took until all its window rows were visible in ClickHouse, and
 * the summary line it printed last.
 */
async function jobFinished(
  name: MeasurementName,
  r: ChildResult,
  clickhouse: ClickHouseClient,
  expected: ExpectedAnswer,
  started: number,
): Promise<{ failed: Measurement } | { seconds: number; summary: Record<string, number> }> {
  if (r.code !== 0) {
    return {
      failed: {
        ...measurementOf(name, expected.records, r, r.seconds, {}),
        valid: false,
        problems: [`exited ${r.code}: ${r.stderr.slice(-2000)}`],
      },
    };
  }
  // Bounded runs flush before exiting; this confirms the last window is visible (and times it if it lags).
  const visibleAt = await waitForRows(
    clickhouse,
    'SELECT count() AS n FROM event_counts_1m',
    expected.windows.length,
    60_000,
  );
  const seconds = ((visibleAt ?? Date.now()) - started) / 1000;
  const summary = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, number>;
  return { seconds, summary };
}

/**
 * Where the side topics end before a Sluice run (several runs on one topic write to the same ones), and
 * the check of that run's outputs against the generator's answer from there.
 */
async function sluiceCheck(
  run: ConsumeRun,
  kafka: KafkaClient,
): Promise<(clickhouse: ClickHouseClient) => Promise<Verdict>> {
  const [dlqFrom, lateFrom] = await withAdmin(kafka, (admin) =>
    Promise.all([endOffsets(admin, `${run.topic}.dlq`), endOffsets(admin, `${run.topic}.late`)]),
  );
  const span = run.expected.eventTimeSpan;
  return (clickhouse) =>
    verifyJob(
      {
        clickhouse,
        kafka,
        dlqTopic: `${run.topic}.dlq`,
        lateTopic: `${run.topic}.late`,
        rawFinal: true,
        scope: span ? { eventTime: span, dlqFrom, lateFrom } : undefined,
      },
      run.expected,
    );
}

/** `sluice run event-counts --bounded` under --cpu-prof, with its own database and Redis prefix. */
export async function measureSluice(run: ConsumeRun): Promise<Measurement> {
  const { config, options, report, expected } = run;
  const { env, suffix, extra } = clientRun(run);
  const db = `bench_${report.hex}_sluice${suffix}`;
  const root = createClickHouse(config.clickhouse);
  await root.command({ query: `CREATE DATABASE IF NOT EXISTS ${db}` });
  const profileDir = join(report.resultsDir, `sluice${suffix}-cpuprofile`);
  mkdirSync(profileDir, { recursive: true });
  const cpu = serviceCpu(run.servicePids);
  const kafka = createKafka(config);
  const check = await sluiceCheck(run, kafka);
  const started = Date.now();
  const r = await runMeasured(
    process.execPath,
    // --cpu-prof is refused in NODE_OPTIONS: it goes on the node command line of the processor itself.
    [
      options.sluiceHeapFlag,
      '--cpu-prof',
      `--cpu-prof-dir=${profileDir}`,
      SLUICE_BIN,
      'run',
      'event-counts',
      '--bounded',
      '--topic',
      run.topic,
      '--group',
      `bench.${report.hex}.sluice${suffix}`,
      '--json',
    ],
    {
      timeoutMs: options.timeoutMs,
      cwd: ROOT,
      env: {
        ...env,
        SLUICE_CLICKHOUSE_DATABASE: db,
        SLUICE_REDIS_KEY_PREFIX: `bench:${report.hex}${suffix}:`,
        SLUICE_LOG_LEVEL: 'warn',
      },
    },
  );
  const ch = createClickHouse(config.clickhouse, db);
  try {
    const finished = await jobFinished('sluice', r, ch, expected, started);
    if ('failed' in finished) return finished.failed;
    const { seconds, summary } = finished;
    note('  checking Sluice results against the generator');
    const verdict = await check(ch);
    const profile = profileSummary(profileDir, report, suffix);
    return {
      ...measurementOf('sluice', expected.records, r, seconds, {
        processor_seconds: summary.seconds ?? null,
        heap_max: options.sluiceHeapFlag,
        checkpoints: summary.checkpoints ?? null,
        service_cpu_seconds: cpu(),
        cpu_profile: profile.file,
        profile_stages: profile.stages,
        ...extra,
      }),
      ...verdict,
    };
  } finally {
    await ch.close();
    await root.close();
  }
}

/**
 * Scale-out: `--group-processors` unbounded processors in one group, started together on the loaded topic,
 * timed until the group has committed every record (each commit follows the sink having the rows before
 * it). They then leave with SIGTERM, a bounded run of the same group closes the windows still open at the
 * end of the input, and the result is checked against the generator's answer like the single run's.
 */
export async function measureSluiceGroup(run: ConsumeRun): Promise<Measurement> {
  const { config, options, report, expected } = run;
  const { env, suffix, extra } = clientRun(run);
  const db = `bench_${report.hex}_group${suffix}`;
  const group = `bench.${report.hex}.group${suffix}`;
  const root = createClickHouse(config.clickhouse);
  await root.command({ query: `CREATE DATABASE IF NOT EXISTS ${db}` });
  const cpu = serviceCpu(run.servicePids);
  const kafka = createKafka(config);
  const check = await sluiceCheck(run, kafka);
  const processorEnv = {
    ...env,
    SLUICE_CLICKHOUSE_DATABASE: db,
    SLUICE_REDIS_KEY_PREFIX: `bench:${report.hex}${suffix}g:`,
    SLUICE_LOG_LEVEL: 'warn',
  };
  const args = (more: string[]) => [
    options.sluiceHeapFlag,
    SLUICE_BIN,
    'run',
    'event-counts',
    '--topic',
    run.topic,
    '--group',
    group,
    '--http-port',
    '0',
    '--json',
    ...more,
  ];
  const started = Date.now();
  const pids: (number | undefined)[] = [];
  const members = Array.from({ length: options.groupProcessors }, (_, i) =>
    runMeasured(process.execPath, args([]), {
      timeoutMs: options.timeoutMs,
      cwd: ROOT,
      env: processorEnv,
      onPid: (pid) => (pids[i] = pid),
    }),
  );
  const ch = createClickHouse(config.clickhouse, db);
  try {
    const exited = Promise.race(members);
    let committedAt: number | undefined;
    await withAdmin(kafka, async (admin) => {
      while (Date.now() - started < options.timeoutMs) {
        const lag = await groupLag(admin, group, run.topic).catch(() => Number.NaN);
        if (lag === 0) {
          committedAt = Date.now();
          return;
        }
        const early = await Promise.race([exited, sleep(250).then(() => undefined)]);
        if (early)
          throw new Error(
            `a processor exited (${early.code}) before the group caught up: ${early.stderr.slice(-2000)}`,
          );
      }
    });
    for (const pid of pids) if (pid) process.kill(pid, 'SIGTERM');
    const results = await Promise.all(members);
    const failed = results.find((r) => r.code !== 0);
    if (committedAt === undefined || failed) {
      return {
        ...measurementOf('sluice_group', expected.records, failed ?? results[0]!, (Date.now() - started) / 1000, {}),
        valid: false,
        problems: [
          committedAt === undefined
            ? 'the group did not commit every record in time'
            : `a processor exited ${failed!.code}: ${failed!.stderr.slice(-2000)}`,
        ],
      };
    }
    note('  closing the windows left open at the end of the input (bounded run, not timed)');
    const finish = await runMeasured(process.execPath, args(['--bounded']), {
      timeoutMs: options.timeoutMs,
      cwd: ROOT,
      env: processorEnv,
    });
    const finished = await jobFinished('sluice_group', finish, ch, expected, started);
    if ('failed' in finished) return finished.failed;
    note("  checking the group's results against the generator");
    const verdict = await check(ch);
    const summaries = results.map(
      (r) => JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, number>,
    );
    const seconds = (committedAt - started) / 1000;
    return {
      ...measurementOf('sluice_group', expected.records, results[0]!, seconds, {
        processors: options.groupProcessors,
        heap_max: options.sluiceHeapFlag,
        // Every member's CPU, summed; the largest member's RSS.
        cpu_seconds: round(
          results.reduce((sum, r) => sum + r.cpuSeconds, 0),
          2,
        ),
        peak_rss_mb: Math.max(...results.map((r) => r.peakRssMb)),
        records_in_by_processor: summaries.map((s) => s.recordsIn ?? null),
        cpu_seconds_by_processor: results.map((r) => r.cpuSeconds),
        service_cpu_seconds: cpu(),
        ...extra,
      }),
      ...verdict,
    };
  } finally {
    for (const pid of pids) {
      try {
        if (pid) process.kill(pid, 'SIGKILL'); // only if the run failed half-way: the others have exited
      } catch {
        /* already gone */
      }
    }
    await ch.close();
    await root.close();
  }
}

/** Summarises the newest .cpuprofile in `dir` and writes the full summary beside it. */
function profileSummary(
  dir: string,
  report: RunReport,
  suffix: string,
): { file: string | null; stages: Record<string, number> | null } {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) return { file: null, stages: null };
  const file = join(dir, files.sort().at(-1)!);
  const summary = summarizeProfile(readProfile(file), 40);
  writeFileSync(
    join(report.resultsDir, `sluice${suffix}-profile-summary.json`),
    `${JSON.stringify(summary, null, 2)}\n`,
  );
  return { file, stages: Object.fromEntries(summary.stages.map((s) => [s.stage, s.pctOfBusy])) };
}

/** Compiles the Kafka Streams job and resolves its classpath from Maven Central (not timed). */
function buildKafkaStreams(): string {
  note('  building bench/kafka-streams with Maven');
  execFileSync('mvn', ['-B', '-q', 'compile', 'dependency:build-classpath', '-Dmdep.outputFile=target/classpath.txt'], {
    cwd: KS_DIR,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const deps = execFileSync('cat', [join(KS_DIR, 'target', 'classpath.txt')])
    .toString()
    .trim();
  return `${join(KS_DIR, 'target', 'classes')}:${deps}`;
}

/** The same job in Kafka Streams (bench/kafka-streams), with its own database and side topics. */
export async function measureKafkaStreams(run: ConsumeRun): Promise<Measurement> {
  const { config, options, report, expected } = run;
  const db = `bench_${report.hex}_kstreams`;
  const classpath = buildKafkaStreams();
  const stateDir = join('/tmp', `sluice-bench-kstreams-${report.hex}`);
  const cpu = serviceCpu(run.servicePids);
  const started = Date.now();
  const url = new URL(config.clickhouse.url);
  const r = await runMeasured(
    'java',
    [
      `-Xmx${options.ksHeap}`,
      // Kafka's INFO logging is chatty; Sluice runs at warn too.
      '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
      '-cp',
      classpath,
      'dev.sluice.bench.Job',
      ...['--brokers', config.kafka.brokers.join(',')],
      ...['--topic', run.topic],
      ...['--application-id', `bench.${report.hex}.kstreams`],
      ...['--registry-url', config.registry.url],
      ...['--clickhouse-url', `${url.protocol}//${url.host}`],
      ...['--clickhouse-user', config.clickhouse.username],
      ...['--clickhouse-password', config.clickhouse.password],
      ...['--clickhouse-database', db],
      ...['--dlq-topic', `${run.topic}.kstreams.dlq`],
      ...['--late-topic', `${run.topic}.kstreams.late`],
      ...['--threads', options.ksThreads],
      ...['--state-dir', stateDir],
      ...['--timeout-ms', String(options.timeoutMs)],
    ],
    { timeoutMs: options.timeoutMs + 60_000, cwd: KS_DIR, env: process.env },
  );
  rmSync(stateDir, { recursive: true, force: true });
  writeFileSync(join(report.resultsDir, 'kafka-streams.stderr.txt'), r.stderr);
  const ch = createClickHouse(config.clickhouse, db);
  try {
    const finished = await jobFinished('kafka_streams', r, ch, expected, started);
    if ('failed' in finished) return finished.failed;
    const { seconds, summary } = finished;
    note('  checking Kafka Streams results against the generator');
    // The peer writes plain MergeTree tables: no FINAL.
    const verdict = await verifyJob(
      {
        clickhouse: ch,
        kafka: createKafka(config),
        dlqTopic: `${run.topic}.kstreams.dlq`,
        lateTopic: `${run.topic}.kstreams.late`,
        rawFinal: false,
      },
      expected,
    );
    return {
      ...measurementOf('kafka_streams', expected.records, r, seconds, {
        processor_seconds: summary.seconds ?? null,
        stream_threads: Number(options.ksThreads),
        heap_max: options.ksHeap,
        service_cpu_seconds: cpu(),
      }),
      ...verdict,
    };
  } finally {
    await ch.close();
  }
}
