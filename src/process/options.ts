import { ConfigError } from '../errors';
import { DEFAULT_HTTP_PORT } from './monitor/serve-stream';

/**
 * The runtime options of a stream process, declared once: the flags of `sluice run`, their parsing and
 * bounds, the defaults `startStream` fills in and the README's options table all come from here
 * (after Kafka Streams' StreamsConfig, where each setting's name, default, validator and doc are
 * defined together).
 *
 * These are tunables of one running process, given on its command line. Where the services are and how
 * to log in to them is configuration (src/config): read from the environment or a file, shared by every
 * command, and partly secret.
 */

interface DeclaredOption {
  /** The command-line flag, without its dashes. */
  flag: string;
  description: string;
}

/** A whole number within bounds; the unit names the flag's argument in help (`--flush-interval <ms>`). */
export interface IntegerOption extends DeclaredOption {
  kind: 'integer';
  unit: 'ms' | 'seconds' | 'rows' | 'port';
  default: number;
  min: number;
  max: number;
}

export interface TextOption extends DeclaredOption {
  kind: 'text';
  unit: 'host';
  default: string;
}

export type OptionDefinition = IntegerOption | TextOption;
export type OptionDefinitions = Record<string, OptionDefinition>;

/** The typed values of a set of declared options. */
export type OptionValues<T extends OptionDefinitions> = {
  [K in keyof T]: T[K] extends IntegerOption ? number : string;
};

const HOUR_MS = 60 * 60 * 1000;

/** What the runner and `startStream` read. */
export const PROCESSING_OPTIONS = {
  sessionTimeoutMs: {
    kind: 'integer',
    flag: 'session-timeout',
    unit: 'ms',
    default: 30_000,
    // Kafka's own default bounds for a group's session timeout are 6 s to 30 min; brokers may allow less.
    min: 1000,
    max: 30 * 60 * 1000,
    description: 'consumer group session timeout: a member silent this long is expelled from the group',
  },
  flushIntervalMs: {
    kind: 'integer',
    flag: 'flush-interval',
    unit: 'ms',
    default: 1000,
    // ClickHouse writes a part per insert and prefers about one insert per second per table.
    min: 10,
    max: HOUR_MS,
    description: 'write rows, dead letters and late events at least this often',
  },
  // A commit saves window state (what changed since the last one, and now and then a base of every
  // open window) and runs a Kafka transaction per partition: it runs less often than the flushes in
  // between, which only write outputs (cf. Kafka Streams' commit.interval.ms). 0 commits at every flush.
  commitIntervalMs: {
    kind: 'integer',
    flag: 'commit-interval',
    unit: 'ms',
    default: 5000,
    min: 0,
    max: HOUR_MS,
    description: 'save window state and commit offsets at least this often',
  },
  // Reading pauses at twice this many, so the rows held in memory stay bounded while the sink is slow (a
  // partition still to close its minute reads on past the others' closing windows: Runner.sinkHoldsBack).
  maxPendingRows: {
    kind: 'integer',
    flag: 'max-pending-rows',
    unit: 'rows',
    default: 20_000,
    min: 1,
    max: 10_000_000,
    description: 'checkpoint as soon as this many rows wait for the sink',
  },
  shutdownTimeoutMs: {
    kind: 'integer',
    flag: 'shutdown-timeout',
    unit: 'ms',
    default: 20_000,
    min: 0,
    max: HOUR_MS,
    description: 'on SIGTERM, how long the final flush and commit may take',
  },
  stateCheckIntervalMs: {
    kind: 'integer',
    flag: 'state-check-interval',
    unit: 'ms',
    default: 5000,
    min: 100,
    max: HOUR_MS,
    description: 'how often a runner with nothing to commit asks Redis whether it restarted (and lost window state)',
  },
  stateTimeoutMs: {
    kind: 'integer',
    flag: 'state-timeout',
    unit: 'ms',
    default: 5000,
    min: 100,
    max: 10 * 60 * 1000,
    description: 'a Redis command for window state or the sink hold fails after this long (the checkpoint is retried)',
  },
  restoreRetryBackoffMs: {
    kind: 'integer',
    flag: 'restore-retry-backoff',
    unit: 'ms',
    default: 200,
    min: 1,
    max: 60_000,
    description:
      "first wait before retrying a partition's restore when Kafka or Redis fails; doubles up to --retry-backoff-max",
  },
  readRetryBackoffMs: {
    kind: 'integer',
    flag: 'read-retry-backoff',
    unit: 'ms',
    default: 250,
    min: 1,
    max: 60_000,
    description:
      'while Redis or the schema registry is down, the base of the wait before reading again: twice this after the first failure, doubling with each one after, up to --retry-backoff-max',
  },
  retryBackoffMaxMs: {
    kind: 'integer',
    flag: 'retry-backoff-max',
    unit: 'ms',
    default: 5000,
    min: 1,
    max: 10 * 60 * 1000,
    description: 'the longest wait between retries of a restore or of reading',
  },
  checkpointRetryBackoffMs: {
    kind: 'integer',
    flag: 'checkpoint-retry-backoff',
    unit: 'ms',
    default: 500,
    min: 1,
    max: 60_000,
    description: 'wait before retrying a failed checkpoint (sink, side topics, Redis or Kafka unavailable)',
  },
} satisfies OptionDefinitions;

/** What the metrics, health and status page server of `sluice run` reads. */
export const SERVING_OPTIONS = {
  httpPort: {
    kind: 'integer',
    flag: 'http-port',
    unit: 'port',
    default: DEFAULT_HTTP_PORT,
    min: 0,
    max: 65_535,
    description:
      'serve /metrics, /healthz, /readyz and the status page on this port (0: a free one; the default falls back to a free one when taken)',
  },
  httpHost: {
    kind: 'text',
    flag: 'http-host',
    unit: 'host',
    default: '127.0.0.1',
    description: 'address to serve them on (0.0.0.0 in a container)',
  },
  stuckAfterSeconds: {
    kind: 'integer',
    flag: 'stuck-after',
    unit: 'seconds',
    default: 120,
    min: 1,
    max: 24 * 60 * 60,
    description: '/readyz fails once partitions stayed paused this long while their lag grew',
  },
} satisfies OptionDefinitions;

/** Every option `sluice run` takes, in the order of its help and the README table. */
export const RUN_OPTIONS = { ...PROCESSING_OPTIONS, ...SERVING_OPTIONS } satisfies OptionDefinitions;

export type ProcessingOptions = OptionValues<typeof PROCESSING_OPTIONS>;
export type ServingOptions = OptionValues<typeof SERVING_OPTIONS>;

const WHAT_UNIT: Record<IntegerOption['unit'], string> = {
  ms: 'a whole number of milliseconds',
  seconds: 'a whole number of seconds',
  rows: 'a whole number of rows',
  port: 'a port number',
};

/** Why `value` is not a valid value of the option, or undefined when it is. */
export function optionProblem(definition: OptionDefinition, value: unknown): string | undefined {
  if (definition.kind === 'text')
    return typeof value === 'string' && value.length > 0 ? undefined : 'expected a non-empty value';
  const ok =
    typeof value === 'number' && Number.isSafeInteger(value) && value >= definition.min && value <= definition.max;
  return ok ? undefined : `expected ${WHAT_UNIT[definition.unit]} from ${definition.min} to ${definition.max}`;
}

/** A flag's argument as the option's value: decimal digits only for numbers (no 1e3, no fractions). */
export function parseOption(
  definition: OptionDefinition,
  text: string,
): { value: number | string } | { problem: string } {
  const value = definition.kind === 'text' ? text : /^-?\d+$/.test(text.trim()) ? Number(text) : NaN;
  const problem = optionProblem(definition, value);
  return problem === undefined ? { value } : { problem };
}

/** Each option's default. */
export function defaultsOf<T extends OptionDefinitions>(definitions: T): OptionValues<T> {
  return Object.fromEntries(Object.entries(definitions).map(([name, d]) => [name, d.default])) as OptionValues<T>;
}

/**
 * Every option of `definitions`: the given value, else its default. A value out of bounds throws,
 * naming the option and its flag, before anything starts.
 */
export function resolveOptions<T extends OptionDefinitions>(
  definitions: T,
  given: Partial<OptionValues<T>>,
): OptionValues<T> {
  const values: Record<string, unknown> = {};
  for (const [name, definition] of Object.entries(definitions)) {
    const value = (given as Record<string, unknown>)[name] ?? definition.default;
    const problem = optionProblem(definition, value);
    if (problem) throw new ConfigError(`invalid option ${name} (--${definition.flag}): ${String(value)}: ${problem}`);
    values[name] = value;
  }
  return values as OptionValues<T>;
}

/** The README's table of the options (`npm run docs:options` prints it; a unit spec keeps the README in step). */
export function optionsTable(definitions: OptionDefinitions = RUN_OPTIONS): string {
  const rows = Object.values(definitions).map((d) => {
    const bounds = d.kind === 'integer' ? `${d.min} – ${d.max}` : 'non-empty';
    return `| \`--${d.flag} <${d.unit}>\` | ${d.default} | ${bounds} | ${d.description.replace(/\|/g, '\\|')} |`;
  });
  return ['| flag | default | range | what it does |', '|---|---|---|---|', ...rows].join('\n') + '\n';
}
