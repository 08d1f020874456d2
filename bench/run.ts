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
import { loadConfig, type SluiceConfig } from '../src/config';
import { stackUp } from '../src/stack';
import { cleanup } from './lib/cleanup';
import {
  measureKafkaStreams,
  measureKcat,
  measureRawClient,
  measureSluice,
  measureSluiceGroup,
  type ConsumeRun,
  type Measurement,
} from './lib/consume';
import { steadyRun } from './lib/latency';
import { createBenchTopics, preload } from './lib/load';
import { processCpuSeconds, round } from './lib/measure';
import { BenchUsageError, parseBenchOptions, USAGE, type BenchOptions, type MeasurementName } from './lib/options';
import { note, RunReport } from './lib/report';

/** The consume measurements in the order they run, with the note each starts with. */
const CONSUME_STEPS: [MeasurementName, string, (run: ConsumeRun) => Promise<Measurement>][] = [
  ['kcat', '1/4 kcat', measureKcat],
  ['raw_client', '2/4 the Kafka client, no work', measureRawClient],
  ['sluice', '3/4 Sluice event-counts, bounded, end to end', measureSluice],
  ['kafka_streams', '4/4 Kafka Streams peer', measureKafkaStreams],
  ['sluice_group', 'scale-out: Sluice event-counts, several processors in one group', measureSluiceGroup],
];

/** The measurements a Kafka client library takes part in (`--kafka-clients` runs them once per client). */
const CLIENT_DEPENDENT = new Set<MeasurementName>(['raw_client', 'sluice', 'sluice_group']);

/** Runs the measurements asked for and prints their lines; true when every checked result was valid. */
async function bench(config: SluiceConfig, options: BenchOptions, report: RunReport): Promise<boolean> {
  note('bringing the local stack up (idempotent)');
  const statuses = await stackUp(config, (line) => note(line));
  const servicePids: Record<string, number> = {};
  for (const s of statuses) if (s.pid && ['kafka', 'redis', 'clickhouse'].includes(s.name)) servicePids[s.name] = s.pid;

  const measurements: Measurement[] = [];
  let invalid = false;
  const topic = `bench.${report.hex}.events`;
  const steps = CONSUME_STEPS.filter(([name]) => options.only.has(name));
  let expected;
  if (steps.length > 0) {
    await createBenchTopics(config, topic, ['kstreams.']);
    expected = await preload(config, topic, options, report);
    const run: ConsumeRun = { config, options, report, topic, expected, servicePids };
    // The client-dependent runs once per client asked for, side by side on the same topic.
    const clients = options.kafkaClients.length > 0 ? options.kafkaClients : [undefined];
    for (const [name, title, measure] of steps) {
      for (const kafkaClient of CLIENT_DEPENDENT.has(name) ? clients : [undefined]) {
        note(kafkaClient ? `${title} (kafka.client=${kafkaClient})` : title);
        const m = await measure({ ...run, kafkaClient });
        invalid ||= !m.valid;
        measurements.push(m);
        report.emit(m);
      }
    }
  }

  // With several clients, the summary's ratios are those of the first; each line has its own figures.
  const by = (n: MeasurementName) => measurements.find((m) => m.name === n);
  const sluice = by('sluice');
  const ratioOf = (a: Measurement | undefined, b: Measurement | undefined) =>
    a && b && a.valid && b.valid ? round(a.events_per_s / b.events_per_s, 3) : null;
  const ratio = (other: Measurement | undefined) => ratioOf(sluice, other);

  let latency: Record<string, unknown> | undefined;
  if (options.only.has('latency') || options.soakMinutes > 0) {
    const rate = options.rate ?? (sluice ? Math.max(1, Math.round(sluice.events_per_s / 2)) : undefined);
    if (rate === undefined)
      throw new Error('the latency run needs --rate N, or the sluice measurement to take half its rate');
    if (options.only.has('latency')) {
      note(`latency: steady ${rate} events/s for ${options.latencySeconds} s`);
      latency = await steadyRun(config, options, report.hex, 'latency', rate, options.latencySeconds).catch(
        (err: Error) => ({
          bench: 'latency',
          name: 'latency',
          rate_per_s: rate,
          valid: false,
          problems: [`the run failed: ${err.message}`],
        }),
      );
      invalid ||= latency.valid === false;
      report.emit(latency);
    }
    if (options.soakMinutes > 0) {
      note(`soak: steady ${rate} events/s for ${options.soakMinutes} min`);
      const soak = await steadyRun(config, options, report.hex, 'soak', rate, Math.round(options.soakMinutes * 60));
      invalid ||= soak.valid === false;
      report.emit(soak);
    }
  }

  report.emit({
    bench: 'summary',
    run_id: report.runId,
    events: expected ? options.events : null,
    valid: !invalid,
    sluice_events_per_s: sluice?.events_per_s ?? null,
    'sluice/kcat': ratio(by('kcat')),
    'sluice/raw_client': ratio(by('raw_client')),
    'sluice/kafka_streams': ratio(by('kafka_streams')),
    'sluice_group/sluice': ratioOf(by('sluice_group'), sluice),
    sluice_peak_rss_mb: sluice?.peak_rss_mb ?? null,
    ...(options.kafkaClients.length > 1
      ? {
          sluice_events_per_s_by_client: Object.fromEntries(
            measurements.filter((m) => m.name === 'sluice').map((m) => [m.kafka_client, m.events_per_s]),
          ),
        }
      : {}),
    latency_p50_ms: latency?.p50_ms ?? null,
    latency_p99_ms: latency?.p99_ms ?? null,
    results: report.resultsDir,
  });
  return !invalid;
}

async function main(): Promise<number> {
  let options: BenchOptions;
  try {
    options = parseBenchOptions(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof BenchUsageError)) throw err;
    process.stderr.write(`bench: ${err.message}\n`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (options.clean) {
    const runHex = options.clean;
    return cleanup(loadConfig(), runHex).then(
      () => 0,
      (err: Error) => {
        process.stderr.write(`bench: cleanup failed: ${err.message}\n`);
        return 2;
      },
    );
  }

  const report = new RunReport();
  // Keep the harness's own CPU visible too: it generates and checks, but is not measured.
  process.on('exit', () => note(`harness cpu ${round(processCpuSeconds(process.pid), 1)} s`));
  // Ctrl-C or a kill: the children get the signal too; remove what this run created, then go.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      note(`${signal}: stopping`);
      const done = options.keep ? Promise.resolve() : cleanup(loadConfig(), report.hex).catch(() => undefined);
      void done.then(() => process.exit(130));
    });
  }
  const config = loadConfig();
  try {
    return (await bench(config, options, report)) ? 0 : 1;
  } finally {
    if (!options.keep) await cleanup(config, report.hex).catch((err: Error) => note(`cleanup: ${err.message}`));
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
