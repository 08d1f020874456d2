/**
 * The benchmark (docs/design.md §5, bench/README.md): on one freshly loaded topic,
 * side by side, each from a fresh consumer group —
 *   1. kcat reading everything (librdkafka: the floor of reading the topic),
 *   2. kafkajs reading everything and doing nothing,
 *   3. Sluice's reference stream end to end into ClickHouse (bounded run),
 *   4. the same job in Kafka Streams (bench/kafka-streams),
 * then p50/p99 latency from window close to rows visible in ClickHouse in a
 * steady-rate run at half of Sluice's measured rate, and optionally an RSS
 * soak. Runs 3 and 4 are checked against the generator's answer; a run that
 * does not match is marked invalid and the command exits 1.
 *
 *   npm run bench -- [--events N] [--only kcat,raw_client,sluice,kafka_streams,latency] ...
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ClickHouseClient } from '@clickhouse/client';
import { loadConfig, type SluiceConfig } from '../src/config';
import { ExpectedAnswerBuilder, produceWorkload, type ExpectedAnswer } from '../src/generator';
import { createKafka } from '../src/kafka';
import { createRedis } from '../src/redis';
import { createClickHouse } from '../src/sink/clickhouse/client';
import { stackUp } from '../src/stack';
import { processCpuSeconds, round, rssMb, runMeasured, serviceCpu, type ChildResult } from './lib/measure';
import { produceSteady } from './lib/steady';
import { combine, verifyRawEvents, verifySideTopics, verifyWindows, type Verdict } from './lib/verify';
import { summarizeProfile, readProfile } from './profile-summary';

const ROOT = resolve(__dirname, '..');
const SLUICE_BIN = join(ROOT, 'bin', 'sluice.js');
const KS_DIR = join(ROOT, 'bench', 'kafka-streams');
const PARTITIONS = 6;
const OUT_OF_ORDER_MS = 30_000;
/** When a window's row must be in ClickHouse at the earliest: end + out-of-orderness + allowed lateness. */
const CLOSE_DELAY_MS = 30_000 + 30_000;
const MEASUREMENTS = ['kcat', 'raw_client', 'sluice', 'kafka_streams', 'latency'] as const;
type MeasurementName = (typeof MEASUREMENTS)[number];

const { values: flags } = parseArgs({
  options: {
    events: { type: 'string', default: '2000000' },
    seed: { type: 'string', default: '1' },
    only: { type: 'string', default: MEASUREMENTS.join(',') },
    'latency-seconds': { type: 'string', default: '200' },
    campaigns: { type: 'string', default: '20' },
    rate: { type: 'string' },
    soak: { type: 'string', default: '0' },
    'ks-threads': { type: 'string', default: '1' },
    'ks-heap': { type: 'string', default: '1g' },
    'sluice-heap-mb': { type: 'string', default: '320' },
    'timeout-minutes': { type: 'string', default: '30' },
    keep: { type: 'boolean', default: false },
    clean: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});

if (flags.help) {
  process.stdout.write(
    'see bench/README.md: npm run bench -- [--events N] [--only list] [--latency-seconds S] [--rate R] [--soak MIN] [--keep]\n',
  );
  process.exit(0);
}

const EVENTS = positiveInt('events', flags.events!);
const SEED = Number(flags.seed);
const ONLY = new Set(flags.only!.split(',').map((s) => s.trim()) as MeasurementName[]);
for (const m of ONLY)
  if (!MEASUREMENTS.includes(m)) fail(`--only: unknown measurement '${m}' (choose from ${MEASUREMENTS.join(', ')})`);
const LATENCY_SECONDS = positiveInt('latency-seconds', flags['latency-seconds']!);
const SOAK_MINUTES = Number(flags.soak);
const CAMPAIGNS = positiveInt('campaigns', flags.campaigns!);
/**
 * The processor's V8 old-space limit (`--max-old-space-size`), as the Helm chart sets it (`heapMb`). Without it
 * V8 grows the heap with the allocation rate, not the live set: RSS then says more about V8's sizing than
 * about what Sluice keeps (the counterpart of the Kafka Streams JVM's -Xmx).
 */
const SLUICE_HEAP_FLAG = `--max-old-space-size=${positiveInt('sluice-heap-mb', flags['sluice-heap-mb']!)}`;
const TIMEOUT_MS = positiveInt('timeout-minutes', flags['timeout-minutes']!) * 60_000;

function positiveInt(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) fail(`--${name} must be a positive integer, got '${raw}'`);
  return n;
}

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}

const hex = randomBytes(3).toString('hex');
const runId = `${new Date().toISOString().replace(/[-:]/g, '').slice(0, 13)}_${hex}`;
const resultsDir = join(ROOT, 'bench', 'results', runId);
mkdirSync(resultsDir, { recursive: true });
const linesFile = join(resultsDir, 'results.jsonl');

function emit(line: Record<string, unknown>): void {
  const text = JSON.stringify(line);
  process.stdout.write(`${text}\n`);
  appendFileSync(linesFile, `${text}\n`);
}
const note = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Names {
  topic: string;
  sluiceDb: string;
  ksDb: string;
  redisPrefix: string;
  ksAppId: string;
}

interface Measurement {
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

async function main(): Promise<void> {
  const base = loadConfig();
  note('bringing the local stack up (idempotent)');
  const statuses = await stackUp(base, (line) => note(line));
  const servicePids: Record<string, number> = {};
  for (const s of statuses) if (s.pid && ['kafka', 'redis', 'clickhouse'].includes(s.name)) servicePids[s.name] = s.pid;

  const names: Names = {
    topic: `bench.${hex}.events`,
    sluiceDb: `bench_${hex}_sluice`,
    ksDb: `bench_${hex}_kstreams`,
    redisPrefix: `bench:${hex}:`,
    ksAppId: `bench.${hex}.kstreams`,
  };
  const kafka = createKafka(base);
  const admin = kafka.admin();
  await admin.connect();
  const clickhouse = createClickHouse(base.clickhouse);
  const measurements: Measurement[] = [];
  let invalid = false;
  try {
    const { topic } = names;
    const consumeRuns = (['kcat', 'raw_client', 'sluice', 'kafka_streams'] as const).filter((m) => ONLY.has(m));
    if (consumeRuns.length > 0) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: [
          { topic, numPartitions: PARTITIONS },
          ...[`${topic}.dlq`, `${topic}.late`, `${topic}.kstreams.dlq`, `${topic}.kstreams.late`].map((t) => ({
            topic: t,
            numPartitions: 1,
          })),
        ],
      });
    }
    const expected = consumeRuns.length > 0 ? await preload(base, topic) : undefined;

    const brokers = base.kafka.brokers.join(',');
    if (expected && ONLY.has('kcat')) {
      note('1/4 kcat');
      const cpu = serviceCpu(servicePids);
      const r = await runMeasured('kcat', ['-C', '-b', brokers, '-t', topic, '-o', 'beginning', '-e', '-q'], {
        timeoutMs: TIMEOUT_MS,
        discardStdout: true,
      });
      if (r.code !== 0) throw new Error(`kcat exited ${r.code}: ${r.stderr.trim()}`);
      measurements.push(
        measurementOf('kcat', expected.records, r, r.seconds, { consumer_group: null, service_cpu_seconds: cpu() }),
      );
      emit(measurements.at(-1)!);
    }

    if (expected && ONLY.has('raw_client')) {
      note('2/4 kafkajs, no work');
      const cpu = serviceCpu(servicePids);
      const r = await runMeasured(
        process.execPath,
        ['-r', 'tsx/cjs', join(ROOT, 'bench', 'raw-consume.ts'), topic, `bench.${hex}.raw`],
        {
          timeoutMs: TIMEOUT_MS,
          cwd: ROOT,
        },
      );
      if (r.code !== 0) throw new Error(`raw consumer exited ${r.code}: ${r.stderr.trim()}`);
      const inner = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { records: number; seconds: number };
      const m = measurementOf('raw_client', expected.records, r, r.seconds, {
        consume_seconds: round(inner.seconds),
        service_cpu_seconds: cpu(),
      });
      if (inner.records !== expected.records) {
        m.valid = false;
        m.problems = [`read ${inner.records} records, the topic holds ${expected.records}`];
        invalid = true;
      }
      measurements.push(m);
      emit(m);
    }

    if (expected && ONLY.has('sluice')) {
      note('3/4 Sluice event-counts, bounded, end to end');
      const m = await measureSluice(base, names, expected, servicePids);
      invalid ||= !m.valid;
      measurements.push(m);
      emit(m);
    }

    if (expected && ONLY.has('kafka_streams')) {
      note('4/4 Kafka Streams peer');
      const m = await measureKafkaStreams(base, names, expected, servicePids);
      invalid ||= !m.valid;
      measurements.push(m);
      emit(m);
    }

    const by = (n: MeasurementName) => measurements.find((m) => m.name === n);
    const sluice = by('sluice');
    const ratio = (other: Measurement | undefined) =>
      sluice && other && sluice.valid && other.valid ? round(sluice.events_per_s / other.events_per_s, 3) : null;

    let latency: Record<string, unknown> | undefined;
    if (ONLY.has('latency') || SOAK_MINUTES > 0) {
      const rate = flags.rate
        ? positiveInt('rate', flags.rate)
        : sluice
          ? Math.max(1, Math.round(sluice.events_per_s / 2))
          : undefined;
      if (rate === undefined)
        throw new Error('the latency run needs --rate N, or the sluice measurement to take half its rate');
      if (ONLY.has('latency')) {
        note(`latency: steady ${rate} events/s for ${LATENCY_SECONDS} s`);
        latency = await steadyRun(base, 'latency', rate, LATENCY_SECONDS).catch((err: Error) => ({
          bench: 'latency',
          name: 'latency',
          rate_per_s: rate,
          valid: false,
          problems: [`the run failed: ${err.message}`],
        }));
        invalid ||= latency.valid === false;
        emit(latency);
      }
      if (SOAK_MINUTES > 0) {
        note(`soak: steady ${rate} events/s for ${SOAK_MINUTES} min`);
        const soak = await steadyRun(base, 'soak', rate, Math.round(SOAK_MINUTES * 60));
        invalid ||= soak.valid === false;
        emit(soak);
      }
    }

    emit({
      bench: 'summary',
      run_id: runId,
      events: expected ? EVENTS : null,
      valid: !invalid,
      sluice_events_per_s: sluice?.events_per_s ?? null,
      'sluice/kcat': ratio(by('kcat')),
      'sluice/raw_client': ratio(by('raw_client')),
      'sluice/kafka_streams': ratio(by('kafka_streams')),
      sluice_peak_rss_mb: sluice?.peak_rss_mb ?? null,
      latency_p50_ms: latency?.p50_ms ?? null,
      latency_p99_ms: latency?.p99_ms ?? null,
      results: resultsDir,
    });
  } finally {
    if (!flags.keep) await cleanup(base, hex).catch((err: Error) => note(`cleanup: ${err.message}`));
    await admin.disconnect();
    await clickhouse.close();
  }
  process.exit(invalid ? 1 : 0);
}

/** Loads the topic with the reference workload; the expected answer is built from the log as it streams by. */
async function preload(config: SluiceConfig, topic: string): Promise<ExpectedAnswer> {
  note(`pre-loading ${EVENTS} reference records into ${topic}`);
  const builder = new ExpectedAnswerBuilder();
  let lastNote = Date.now();
  const produced = await produceWorkload({
    config,
    topic,
    count: EVENTS,
    seed: SEED,
    duplicateRatio: 0.02,
    outOfOrderMs: OUT_OF_ORDER_MS,
    lateRatio: 0.005,
    poisonRatio: 0.001,
    onLogEntry: (entry) => builder.add(entry),
    onProgress: (sent, total) => {
      if (Date.now() - lastNote > 10_000) {
        lastNote = Date.now();
        note(`  ${sent}/${total}`);
      }
    },
  });
  const expected = builder.result();
  emit({
    bench: 'preload',
    name: 'produce',
    events: produced.records,
    seconds: round(produced.seconds),
    events_per_s: Math.round(produced.recordsPerSecond),
    value_mb: round(produced.valueBytes / 1024 / 1024, 1),
    by_kind: produced.byKind,
    expected_distinct_events: expected.eventIds.size,
    expected_window_rows: expected.windows.length,
    expected_dead_letters: expected.deadLetters.length,
    expected_late: expected.lateEventIds.size,
  });
  return expected;
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
      failed: { ...measurementOf(name, expected.records, r, r.seconds, {}), valid: false, problems: [`exited ${r.code}: ${r.stderr.slice(-2000)}`] },
    };
  }
  // Bounded runs flush before exiting; this confirms the last window is visible (and times it if it lags).
  const visibleAt = await waitForRows(clickhouse, 'SELECT count() AS n FROM event_counts_1m', expected.windows.length, 60_000);
  const seconds = ((visibleAt ?? Date.now()) - started) / 1000;
  const summary = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, number>;
  return { seconds, summary };
}

async function measureSluice(
  config: SluiceConfig,
  names: Names,
  expected: ExpectedAnswer,
  servicePids: Record<string, number>,
): Promise<Measurement> {
  const root = createClickHouse(config.clickhouse);
  await root.command({ query: `CREATE DATABASE IF NOT EXISTS ${names.sluiceDb}` });
  const profileDir = join(resultsDir, 'sluice-cpuprofile');
  mkdirSync(profileDir, { recursive: true });
  const cpu = serviceCpu(servicePids);
  const started = Date.now();
  const r = await runMeasured(
    process.execPath,
    // --cpu-prof is refused in NODE_OPTIONS: it goes on the node command line of the processor itself.
    [
      SLUICE_HEAP_FLAG,
      '--cpu-prof',
      `--cpu-prof-dir=${profileDir}`,
      SLUICE_BIN,
      'run',
      'event-counts',
      '--bounded',
      '--topic',
      names.topic,
      '--group',
      `bench.${hex}.sluice`,
      '--json',
    ],
    {
      timeoutMs: TIMEOUT_MS,
      cwd: ROOT,
      env: {
        ...process.env,
        SLUICE_CLICKHOUSE_DATABASE: names.sluiceDb,
        SLUICE_REDIS_KEY_PREFIX: names.redisPrefix,
        SLUICE_LOG_LEVEL: 'warn',
      },
    },
  );
  const ch = createClickHouse(config.clickhouse, names.sluiceDb);
  try {
    const finished = await jobFinished('sluice', r, ch, expected, started);
    if ('failed' in finished) return finished.failed;
    const { seconds, summary } = finished;
    note('  checking Sluice results against the generator');
    const kafka = createKafka(config);
    const admin = kafka.admin();
    await admin.connect();
    const verdict = combine(
      await verifyWindows(ch, 'event_counts_1m', expected),
      await verifyRawEvents(ch, 'events_raw', expected, true),
      await verifySideTopics(kafka, `${names.topic}.dlq`, `${names.topic}.late`, expected),
    );
    await admin.disconnect();
    const profile = profileSummary(profileDir);
    return {
      ...measurementOf('sluice', expected.records, r, seconds, {
        processor_seconds: summary.seconds ?? null,
        heap_max: SLUICE_HEAP_FLAG,
        checkpoints: summary.checkpoints ?? null,
        service_cpu_seconds: cpu(),
        cpu_profile: profile.file,
        profile_stages: profile.stages,
      }),
      ...verdictFields(verdict),
    };
  } finally {
    await ch.close();
    await root.close();
  }
}

function verdictFields(v: Verdict): { valid: boolean; problems?: string[] } {
  return v.valid ? { valid: true } : { valid: false, problems: v.problems };
}

/** Summarises the newest .cpuprofile in `dir` and writes the full summary beside it. */
function profileSummary(dir: string): { file: string | null; stages: Record<string, number> | null } {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) return { file: null, stages: null };
  const file = join(dir, files.sort().at(-1)!);
  const summary = summarizeProfile(readProfile(file), 40);
  writeFileSync(join(resultsDir, 'sluice-profile-summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
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

async function measureKafkaStreams(
  config: SluiceConfig,
  names: Names,
  expected: ExpectedAnswer,
  servicePids: Record<string, number>,
): Promise<Measurement> {
  const classpath = buildKafkaStreams();
  const stateDir = join('/tmp', `sluice-bench-kstreams-${hex}`);
  const cpu = serviceCpu(servicePids);
  const started = Date.now();
  const url = new URL(config.clickhouse.url);
  const r = await runMeasured(
    'java',
    [
      `-Xmx${flags['ks-heap']}`,
      // Kafka's INFO logging is chatty; Sluice runs at warn too.
      '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
      '-cp',
      classpath,
      'dev.sluice.bench.Job',
      ...['--brokers', config.kafka.brokers.join(',')],
      ...['--topic', names.topic],
      ...['--application-id', names.ksAppId],
      ...['--registry-url', config.registry.url],
      ...['--clickhouse-url', `${url.protocol}//${url.host}`],
      ...['--clickhouse-user', config.clickhouse.username],
      ...['--clickhouse-password', config.clickhouse.password],
      ...['--clickhouse-database', names.ksDb],
      ...['--dlq-topic', `${names.topic}.kstreams.dlq`],
      ...['--late-topic', `${names.topic}.kstreams.late`],
      ...['--threads', flags['ks-threads']!],
      ...['--state-dir', stateDir],
      ...['--timeout-ms', String(TIMEOUT_MS)],
    ],
    { timeoutMs: TIMEOUT_MS + 60_000, cwd: KS_DIR, env: process.env },
  );
  rmSync(stateDir, { recursive: true, force: true });
  writeFileSync(join(resultsDir, 'kafka-streams.stderr.txt'), r.stderr);
  const ch = createClickHouse(config.clickhouse, names.ksDb);
  try {
    const finished = await jobFinished('kafka_streams', r, ch, expected, started);
    if ('failed' in finished) return finished.failed;
    const { seconds, summary } = finished;
    note('  checking Kafka Streams results against the generator');
    const admin = createKafka(config).admin();
    await admin.connect();
    const verdict = combine(
      await verifyWindows(ch, 'event_counts_1m', expected),
      await verifyRawEvents(ch, 'events_raw', expected, false),
      await verifySideTopics(createKafka(config), `${names.topic}.kstreams.dlq`, `${names.topic}.kstreams.late`, expected),
    );
    await admin.disconnect();
    return {
      ...measurementOf('kafka_streams', expected.records, r, seconds, {
        processor_seconds: summary.seconds ?? null,
        stream_threads: Number(flags['ks-threads']),
        heap_max: flags['ks-heap'],
        service_cpu_seconds: cpu(),
      }),
      ...verdictFields(verdict),
    };
  } finally {
    await ch.close();
  }
}

/**
 * Sluice running unbounded while a generator produces in real time at
 * `rate`; every 100 ms the window rows in ClickHouse are polled. A row's
 * latency = when it first showed its complete, final count minus the wall
 * time at which its window end + out-of-orderness + allowed lateness passed.
 * The processor's RSS is sampled throughout (the soak's flatness figure).
 */
async function steadyRun(
  config: SluiceConfig,
  name: 'latency' | 'soak',
  rate: number,
  seconds: number,
): Promise<Record<string, unknown>> {
  const id = `${hex}${name === 'soak' ? 's' : 'l'}`;
  const topic = `bench.${id}.events`;
  const db = `bench_${id}_sluice`;
  const admin = createKafka(config).admin();
  await admin.connect();
  const root = createClickHouse(config.clickhouse);
  await root.command({ query: `CREATE DATABASE IF NOT EXISTS ${db}` });
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic, numPartitions: PARTITIONS },
      ...[`${topic}.dlq`, `${topic}.late`].map((t) => ({ topic: t, numPartitions: 1 })),
    ],
  });
  const ch = createClickHouse(config.clickhouse, db);
  const builder = new ExpectedAnswerBuilder();
  let pid: number | undefined;
  const rss: { t: number; mb: number }[] = [];
  const seen = new Map<string, Seen[]>();
  let slowestPollMs = 0;
  let polling = true;
  let pollError: Error | undefined;
  let child: Promise<ChildResult> | undefined;
  let exited = false;
  const httpPort = await freePort();
  let openWindowsPeak = 0;
  try {
    child = runMeasured(
      process.execPath,
      [SLUICE_HEAP_FLAG, SLUICE_BIN, 'run', 'event-counts', '--topic', topic, '--group', `bench.${id}.sluice`, '--json', '--http-port', String(httpPort)],
      {
        timeoutMs: (seconds + 180) * 1000,
        cwd: ROOT,
        env: {
          ...process.env,
          SLUICE_CLICKHOUSE_DATABASE: db,
          SLUICE_REDIS_KEY_PREFIX: `bench:${id}:`,
          SLUICE_LOG_LEVEL: 'warn',
        },
        onPid: (p) => (pid = p),
      },
    );
    void child.then(() => (exited = true));
    const rssTimer = setInterval(() => {
      const mb = pid ? rssMb(pid) : undefined;
      if (mb !== undefined) rss.push({ t: Date.now(), mb });
      // Open (window, group key, partition) partials, from the processor's own gauge: what its memory holds.
      void fetch(`http://127.0.0.1:${httpPort}/metrics`)
        .then((r) => r.text())
        .then((text) => {
          const open = Number(/^sluice_open_windows\{[^}]*\} (\d+)/m.exec(text)?.[1] ?? 0);
          openWindowsPeak = Math.max(openWindowsPeak, open);
        })
        .catch(() => undefined);
    }, 1000);
    // Let the processor join its group before the clock starts (event time = wall time from here on).
    await sleep(8_000);
    const poller = (async () => {
      while (polling) {
        try {
          const asked = Date.now();
          const rows = await (
            await ch.query({
              // version = the processing time (ms) at which a partition emitted its partial: max = the last close.
              query: `SELECT toUnixTimestamp(window_start) * 1000 AS w, event_type, campaign_id, sum(events) AS events, min(final) AS final,
                             max(version) AS emitted
                      FROM event_counts_1m_partial FINAL GROUP BY w, event_type, campaign_id`,
              format: 'JSONEachRow',
            })
          ).json<{ w: string; event_type: string; campaign_id: string; events: string; final: number; emitted: string }>();
          const at = Date.now();
          slowestPollMs = Math.max(slowestPollMs, at - asked);
          for (const r of rows) {
            const key = `${Number(r.w)}|${r.event_type}|${r.campaign_id}`;
            const history = seen.get(key) ?? [];
            const last = history.at(-1);
            if (!last || last.events !== Number(r.events) || last.final !== Number(r.final)) {
              // Visible when the poll that saw it began (ClickHouse reads the parts present at query start):
              // the query's own duration, seconds on a saturated machine, is not the pipeline's latency.
              history.push({ events: Number(r.events), final: Number(r.final), at: asked, emitted: Number(r.emitted) });
              seen.set(key, history);
            }
          }
        } catch (err) {
          // The tables appear once the processor has migrated; anything else is reported.
          if (!/doesn't exist|UNKNOWN_TABLE/i.test((err as Error).message)) pollError = err as Error;
        }
        await sleep(100);
      }
    })();
    const produced = await produceSteady({
      config,
      topic,
      partitions: PARTITIONS,
      ratePerSecond: rate,
      seconds,
      seed: SEED + 1,
      outOfOrderMs: OUT_OF_ORDER_MS,
      campaigns: CAMPAIGNS,
      onLogEntry: (e) => builder.add(e),
    });
    const expected = builder.result();
    // Windows that must close before the run ends: their end + close delay is behind the last event's head
    // (every partition's newest event time is within a few ms of the head at these rates; 5 s of margin).
    const closable = expected.windows.filter((w) => w.window_end + CLOSE_DELAY_MS + 5_000 <= produced.lastHead);
    const lastClose = Math.max(...closable.map((w) => w.window_end + CLOSE_DELAY_MS), Date.now());
    const waitUntil = Math.max(lastClose, Date.now()) + 15_000;
    while (Date.now() < waitUntil) {
      const done = closable.every(
        (w) => visibleAt(seen.get(`${w.window_start}|${w.event_type}|${w.campaign_id}`), w.events) !== undefined,
      );
      if (done) break;
      await sleep(200);
    }
    polling = false;
    await poller;
    clearInterval(rssTimer);
    // A processor that died on its own (out of memory, a crash) is the finding: say so with its last words.
    const diedEarly = exited;
    if (pid && !exited) process.kill(pid, 'SIGTERM');
    const result = await child;

    const latencies: number[] = [];
    let missing = 0;
    for (const w of closable) {
      const at = visibleAt(seen.get(`${w.window_start}|${w.event_type}|${w.campaign_id}`), w.events);
      if (at === undefined) missing += 1;
      else latencies.push(at - (w.window_end + CLOSE_DELAY_MS));
    }
    latencies.sort((a, b) => a - b);
    const pct = (p: number) =>
      latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]! : null;
    const half = rss.filter((s) => s.t >= rss[0]!.t + (rss.at(-1)!.t - rss[0]!.t) / 2);
    const firstHalf = rss.filter((s) => !half.includes(s));
    const maxOf = (xs: { mb: number }[]) => (xs.length ? Math.max(...xs.map((s) => s.mb)) : null);
    const problems: string[] = [];
    if (diedEarly) problems.push(`the processor exited during the run (code ${result.code}): ${result.stderr.slice(-2000)}`);
    if (missing > 0)
      problems.push(`${missing} of ${closable.length} closable window rows never showed their expected count`);
    if (pollError) problems.push(`polling ClickHouse failed: ${pollError.message}`);
    if (closable.length === 0) problems.push('no window closed during the run: make it longer (--latency-seconds)');
    return {
      bench: name,
      name,
      rate_per_s: rate,
      seconds,
      events: produced.records,
      producer_max_lag_ms: produced.maxLagMs,
      campaigns: CAMPAIGNS,
      open_windows_peak: openWindowsPeak,
      windows_closed: new Set(closable.map((w) => w.window_start)).size,
      latency_ms_per_window: perWindowLatency(closable, seen, (v, w) => v.at - (w.window_end + CLOSE_DELAY_MS)),
      // The part of it before the rows were handed to the sink: when the processor closed the window.
      closed_after_ms_per_window: perWindowLatency(closable, seen, (v, w) => v.emitted - (w.window_end + CLOSE_DELAY_MS)),
      slowest_poll_ms: slowestPollMs,
      window_rows: closable.length,
      p50_ms: pct(0.5),
      p99_ms: pct(0.99),
      max_ms: latencies.at(-1) ?? null,
      min_ms: latencies[0] ?? null,
      peak_rss_mb: result.peakRssMb,
      cpu_seconds: result.cpuSeconds,
      rss_max_first_half_mb: maxOf(firstHalf),
      rss_max_second_half_mb: maxOf(half),
      rss_growth_pct:
        maxOf(firstHalf) && maxOf(half)
          ? round((100 * (maxOf(half)! - maxOf(firstHalf)!)) / maxOf(firstHalf)!, 1)
          : null,
      rss_samples_mb: name === 'soak' ? rss.filter((_, i) => i % 30 === 0).map((s) => s.mb) : undefined,
      valid: problems.length === 0,
      ...(problems.length ? { problems } : {}),
    };
  } finally {
    polling = false;
    // On failure too: the unbounded processor must not outlive the run.
    if (child && !exited && pid) {
      process.kill(pid, 'SIGTERM');
      await child;
    }
    await ch.close();
    if (!flags.keep) {
      await root.command({ query: `DROP DATABASE IF EXISTS ${db}` }).catch(() => undefined);
      await admin.deleteTopics({ topics: [topic, `${topic}.dlq`, `${topic}.late`] }).catch(() => undefined);
      await admin.deleteGroups([`bench.${id}.sluice`]).catch(() => undefined);
      await deleteRedisKeys(config, `bench:${id}:`);
      await deleteSubject(config, `${topic}-value`);
    }
    await root.close();
    await admin.disconnect();
  }
}

/** One change of a window row seen by the poller: its merged count, whether every partial is final, when. */
interface Seen {
  events: number;
  final: number;
  /** Wall time the poll that saw it was sent (it was not visible to the poll before, at most ~100 ms plus that poll's duration earlier). */
  at: number;
  /** The newest partial's version: the processing time its partition emitted it. */
  emitted: number;
}

/** Per window (the worst of its rows): `measure` of the moment its rows were first complete and final. */
function perWindowLatency(
  closable: ExpectedAnswer['windows'],
  seen: Map<string, Seen[]>,
  measure: (visible: Seen, w: ExpectedAnswer['windows'][number]) => number,
): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const w of closable) {
    const key = new Date(w.window_start).toISOString().slice(11, 16);
    const visible = visibleEntry(seen.get(`${w.window_start}|${w.event_type}|${w.campaign_id}`), w.events);
    const latency = visible === undefined ? null : measure(visible, w);
    out[key] = out[key] === null || latency === null ? null : Math.max(out[key] ?? -Infinity, latency);
  }
  return out;
}

/** The first entry of a row's history that shows `events` with final = 1. */
function visibleEntry(history: Seen[] | undefined, events: number): Seen | undefined {
  return history?.find((h) => h.events === events && h.final === 1);
}

/** When a row's history first shows `events` with final = 1. */
function visibleAt(history: Seen[] | undefined, events: number): number | undefined {
  return visibleEntry(history, events)?.at;
}

/** A TCP port free on loopback right now (the processor serves its metrics there). */
function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolvePort(port));
    });
  });
}

async function deleteRedisKeys(config: SluiceConfig, prefix: string): Promise<number> {
  const redis = createRedis(config);
  await redis.connect();
  let deleted = 0;
  try {
    const stream = redis.scanStream({ match: `${prefix}*`, count: 5000 });
    for await (const keys of stream as AsyncIterable<string[]>) {
      if (keys.length > 0) deleted += await redis.unlink(...keys);
    }
  } finally {
    redis.disconnect();
  }
  return deleted;
}

async function deleteSubject(config: SluiceConfig, subject: string): Promise<void> {
  const base = `${config.registry.url}/subjects/${encodeURIComponent(subject)}`;
  await fetch(base, { method: 'DELETE' }).catch(() => undefined);
  await fetch(`${base}?permanent=true`, { method: 'DELETE' }).catch(() => undefined);
}

/**
 * Removes everything a run created on the shared stack: topics (Kafka Streams'
 * internal ones too), consumer groups, Redis keys, ClickHouse databases and
 * registry subjects, all named after the run's id.
 */
async function cleanup(config: SluiceConfig, runHex: string): Promise<void> {
  note(`cleaning up run ${runHex} (topics, groups, Redis keys, ClickHouse databases, subjects)`);
  const admin = createKafka(config).admin();
  await admin.connect();
  const clickhouse = createClickHouse(config.clickhouse);
  try {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(`bench.${runHex}`));
    if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => undefined);
    const groups = (await admin.listGroups()).groups
      .map((g) => g.groupId)
      .filter((g) => g.startsWith(`bench.${runHex}`));
    if (groups.length > 0) await admin.deleteGroups(groups).catch(() => undefined);
    const keys = await deleteRedisKeys(config, `bench:${runHex}`);
    const dbs = await (
      await clickhouse.query({ query: 'SHOW DATABASES', format: 'JSONEachRow' })
    ).json<{ name: string }>();
    const owned = dbs.map((d) => d.name).filter((d) => d.startsWith(`bench_${runHex}`));
    for (const db of owned) await clickhouse.command({ query: `DROP DATABASE IF EXISTS ${db}` });
    const subjects = (await (await fetch(`${config.registry.url}/subjects`)).json()) as string[];
    for (const s of subjects.filter((x) => x.startsWith(`bench.${runHex}`))) await deleteSubject(config, s);
    note(`  removed ${topics.length} topics, ${groups.length} groups, ${keys} Redis keys, ${owned.length} databases`);
  } finally {
    await admin.disconnect();
    await clickhouse.close();
  }
}

// Keep the harness's own CPU visible too: it generates and checks, but is not measured.
process.on('exit', () => note(`harness cpu ${round(processCpuSeconds(process.pid), 1)} s`));

// Ctrl-C or a kill: the children get the signal too; remove what this run created, then go.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    note(`${signal}: stopping`);
    const done = flags.keep ? Promise.resolve() : cleanup(loadConfig(), hex).catch(() => undefined);
    void done.then(() => process.exit(130));
  });
}

if (flags.clean) {
  const runHex = flags.clean;
  if (!/^[0-9a-f]{6}$/.test(runHex)) fail('--clean takes the 6-hex-digit id of a run (its topics are bench.<id>.*)');
  cleanup(loadConfig(), runHex).then(
    () => process.exit(0),
    (err: Error) => fail(`cleanup failed: ${err.message}`),
  );
} else {
  main().catch((err: Error) => {
    process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  });
}
