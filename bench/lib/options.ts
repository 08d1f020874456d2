/**
 * The benchmark's command line (bench/README.md, "Flags"), parsed and
 * checked before anything runs.
 */
import { parseArgs } from 'node:util';
import { KAFKA_CLIENTS, type KafkaClientName } from '../../src/kafka';

export const MEASUREMENTS = ['kcat', 'raw_client', 'sluice', 'kafka_streams', 'latency', 'sluice_group'] as const;
export type MeasurementName = (typeof MEASUREMENTS)[number];
/** What runs without --only: the scale-out run is asked for by name. */
const DEFAULT_MEASUREMENTS = MEASUREMENTS.filter((m) => m !== 'sluice_group');

export interface BenchOptions {
  events: number;
  seed: number;
  only: Set<MeasurementName>;
  latencySeconds: number;
  /** Events/s of the steady runs; undefined: half of Sluice's measured rate. */
  rate?: number;
  campaigns: number;
  soakMinutes: number;
  ksThreads: string;
  ksHeap: string;
  /**
   * The processor's V8 old-space limit (`--max-old-space-size`), as the Helm chart sets it (`heapMb`). Without it
   * V8 grows the heap with the allocation rate, not the live set: RSS then says more about V8's sizing than
   * about what Sluice keeps (the counterpart of the Kafka Streams JVM's -Xmx).
   */
  sluiceHeapFlag: string;
  timeoutMs: number;
  keep: boolean;
  /**
   * The Kafka client libraries the raw-client and Sluice runs use, one run of each per client, side by
   * side on the same topic (`kafka.client`); empty: the configured one only.
   */
  kafkaClients: KafkaClientName[];
  /** Processors of the scale-out run (`sluice_group`), one group on the same topic. */
  groupProcessors: number;
  /** Only remove what run `<id>` left behind. */
  clean?: string;
  help: boolean;
}

export const USAGE =
  'see bench/README.md: npm run bench -- [--events N] [--only list] [--latency-seconds S] [--rate R] [--soak MIN] [--kafka-clients kafkajs,platformatic] [--group-processors N] [--keep]\n';

/** A command line the benchmark cannot run with; the message says which flag. */
export class BenchUsageError extends Error {}

export function parseBenchOptions(args: string[]): BenchOptions {
  const { values: flags } = parseArgs({
    args,
    options: {
      events: { type: 'string', default: '2000000' },
      seed: { type: 'string', default: '1' },
      only: { type: 'string', default: DEFAULT_MEASUREMENTS.join(',') },
      'group-processors': { type: 'string', default: '2' },
      'latency-seconds': { type: 'string', default: '200' },
      campaigns: { type: 'string', default: '20' },
      rate: { type: 'string' },
      soak: { type: 'string', default: '0' },
      'ks-threads': { type: 'string', default: '1' },
      'ks-heap': { type: 'string', default: '1g' },
      'sluice-heap-mb': { type: 'string', default: '320' },
      'timeout-minutes': { type: 'string', default: '30' },
      keep: { type: 'boolean', default: false },
      'kafka-clients': { type: 'string', default: '' },
      clean: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  const only = new Set(flags.only.split(',').map((s) => s.trim()) as MeasurementName[]);
  for (const m of only) {
    if (!MEASUREMENTS.includes(m))
      throw new BenchUsageError(`--only: unknown measurement '${m}' (choose from ${MEASUREMENTS.join(', ')})`);
  }
  const kafkaClients = flags['kafka-clients']
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '') as KafkaClientName[];
  for (const c of kafkaClients) {
    if (!KAFKA_CLIENTS.includes(c))
      throw new BenchUsageError(`--kafka-clients: unknown client '${c}' (choose from ${KAFKA_CLIENTS.join(', ')})`);
  }
  if (flags.clean !== undefined && !/^[0-9a-f]{6}$/.test(flags.clean))
    throw new BenchUsageError('--clean takes the 6-hex-digit id of a run (its topics are bench.<id>.*)');
  return {
    events: positiveInt('events', flags.events),
    seed: Number(flags.seed),
    only,
    latencySeconds: positiveInt('latency-seconds', flags['latency-seconds']),
    rate: flags.rate === undefined ? undefined : positiveInt('rate', flags.rate),
    campaigns: positiveInt('campaigns', flags.campaigns),
    soakMinutes: Number(flags.soak),
    ksThreads: flags['ks-threads'],
    ksHeap: flags['ks-heap'],
    sluiceHeapFlag: `--max-old-space-size=${positiveInt('sluice-heap-mb', flags['sluice-heap-mb'])}`,
    timeoutMs: positiveInt('timeout-minutes', flags['timeout-minutes']) * 60_000,
    keep: flags.keep,
    kafkaClients,
    groupProcessors: positiveInt('group-processors', flags['group-processors']),
    clean: flags.clean,
    help: flags.help,
  };
}

function positiveInt(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new BenchUsageError(`--${name} must be a positive integer, got '${raw}'`);
  return n;
}
