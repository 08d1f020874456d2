import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { TopicDeclarationError } from './errors';

/** Kafka's own rule for topic names (legal characters, at most 249). */
export const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;

const DURATION = /^(\d+)(ms|s|m|h|d|w)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `7d`, `12h`, `30m`, `500ms`, a number of milliseconds, or `infinite` (Kafka's -1). */
const retention = z
  .union([
    z.number().int().min(-1),
    z.literal('infinite'),
    z.string().regex(DURATION, 'expected a duration like 7d, 12h, 30m, 500ms, or infinite'),
  ])
  .transform((v): number => {
    if (typeof v === 'number') return v;
    if (v === 'infinite') return -1;
    const [, n, unit] = DURATION.exec(v)!;
    return Number(n) * UNIT_MS[unit!]!;
  });

const cleanupPolicy = z.enum(['delete', 'compact', 'compact,delete']);
const compression = z.enum(['producer', 'uncompressed', 'gzip', 'snappy', 'lz4', 'zstd']);

/** Raw Kafka topic configs for anything the named fields do not cover. */
const rawConfig = z.record(
  z.string().regex(/^[a-z][a-z0-9.]*$/, 'expected a Kafka topic config name like max.message.bytes'),
  z.union([z.string(), z.number(), z.boolean()]).transform(String),
);

/** Settings a companion may override; the rest it inherits from its topic. */
const companionSettings = {
  partitions: z.number().int().min(1).max(10_000).optional(),
  replicationFactor: z.number().int().min(1).max(32).optional(),
  retention: retention.optional(),
  cleanupPolicy: cleanupPolicy.optional(),
  config: rawConfig.optional(),
};

const companion = z.object(companionSettings).strict();

export const topicFamilySchema = z
  .object({
    name: z.string().regex(TOPIC_NAME, 'expected a Kafka topic name: letters, digits, . _ - (at most 249)'),
    partitions: z.number().int().min(1).max(10_000),
    replicationFactor: z.number().int().min(1).max(32),
    retention: retention.optional(),
    cleanupPolicy: cleanupPolicy.default('delete'),
    compression: compression.optional(),
    config: rawConfig.default({}),
    companions: z
      .object({
        dlq: companion.optional(),
        retry: companion.extend({ count: z.number().int().min(0).max(20) }).optional(),
        late: companion.optional(),
      })
      .strict()
      .default({}),
  })
  .strict();

export type TopicFamilyInput = z.input<typeof topicFamilySchema>;
type TopicFamily = z.output<typeof topicFamilySchema>;

/** One Kafka topic as it should be: what `apply` makes true. */
export interface TopicSpec {
  /** Full name, prefix included. */
  name: string;
  partitions: number;
  replicationFactor: number;
  /** Kafka topic configs (name -> value as Kafka prints it), every one set explicitly on the topic. */
  config: Record<string, string>;
  /** The declaration file it came from, for messages. */
  source: string;
  role: 'topic' | 'dlq' | 'retry' | 'late';
}

/** Used when a companion does not say: long enough to inspect and redrive, short for retries. */
const COMPANION_RETENTION_MS = { dlq: 30 * UNIT_MS.d!, retry: 1 * UNIT_MS.d!, late: 14 * UNIT_MS.d! };

const NAMED_CONFIGS = ['retention.ms', 'cleanup.policy', 'compression.type'];

function topicConfig(
  file: string,
  field: string,
  named: { retention?: number; cleanupPolicy: string; compression?: string },
  raw: Record<string, string>,
): Record<string, string> {
  const clash = NAMED_CONFIGS.find((k) => k in raw);
  if (clash) {
    throw new TopicDeclarationError(
      `${file}: ${field}.${clash}: set it through the named field (retention, cleanupPolicy, compression), not config`,
    );
  }
  const config: Record<string, string> = { 'cleanup.policy': named.cleanupPolicy, ...raw };
  if (named.retention !== undefined) config['retention.ms'] = String(named.retention);
  if (named.compression !== undefined) config['compression.type'] = named.compression;
  return config;
}

/** Room for the headers Sluice adds to a dead-letter, retry or late record (source coordinates, error text). */
const COMPANION_HEADER_ROOM = 64 * 1024;

/**
 * A companion takes every record its topic accepts plus Sluice's headers, so
 * it inherits the topic's max.message.bytes with room added: otherwise the
 * largest valid-sized bad record could never be dead-lettered.
 */
function companionLimits(config: Record<string, string>): Record<string, string> {
  const max = config['max.message.bytes'];
  return max === undefined ? {} : { 'max.message.bytes': String(Number(max) + COMPANION_HEADER_ROOM) };
}

/** Expands one family into its topic and companions, names prefixed. */
export function expandFamily(family: TopicFamily, file: string, prefix = ''): TopicSpec[] {
  const base: TopicSpec = {
    name: `${prefix}${family.name}`,
    partitions: family.partitions,
    replicationFactor: family.replicationFactor,
    config: topicConfig(file, 'config', family, family.config),
    source: file,
    role: 'topic',
  };
  const specs = [base];
  const companionSpec = (role: 'dlq' | 'retry' | 'late', suffix: string, c: z.output<typeof companion>): TopicSpec => ({
    name: `${base.name}.${suffix}`,
    // Same partition count keeps a record's companion partition equal to its source partition.
    partitions: c.partitions ?? family.partitions,
    replicationFactor: c.replicationFactor ?? family.replicationFactor,
    config: topicConfig(
      file,
      `companions.${role}.config`,
      {
        retention: c.retention ?? COMPANION_RETENTION_MS[role],
        cleanupPolicy: c.cleanupPolicy ?? 'delete',
        compression: family.compression,
      },
      { ...companionLimits(family.config), ...c.config },
    ),
    source: file,
    role,
  });
  const { dlq, retry, late } = family.companions;
  if (dlq) specs.push(companionSpec('dlq', 'dlq', dlq));
  if (retry) for (let n = 1; n <= retry.count; n++) specs.push(companionSpec('retry', `retry.${n}`, retry));
  if (late) specs.push(companionSpec('late', 'late', late));
  for (const spec of specs) {
    if (!TOPIC_NAME.test(spec.name))
      throw new TopicDeclarationError(`${file}: topic name ${spec.name} is not a legal Kafka topic name`);
  }
  return specs;
}

/** Parses one declaration file's text; errors name the file and the field. */
export function parseTopicFamily(text: string, file: string, prefix = ''): TopicSpec[] {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new TopicDeclarationError(`${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const result = topicFamilySchema.safeParse(raw ?? {});
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = issue.path.join('.') || '(top level)';
    throw new TopicDeclarationError(`${file}: ${field}: ${issue.message}`);
  }
  return expandFamily(result.data, file, prefix);
}

/**
 * Reads every `*.yaml`/`*.yml` in the directory (one topic family per file)
 * and returns the topics they declare, refusing a name declared twice.
 */
export function loadTopicDeclarations(dir: string, prefix = ''): TopicSpec[] {
  let files: string[];
  try {
    files = readdirSync(dir)
      .filter((f) => /\.ya?ml$/.test(f))
      .sort();
  } catch (err) {
    throw new TopicDeclarationError(
      `topic declarations directory ${dir} cannot be read (${(err as Error).message}): pass --dir`,
    );
  }
  if (files.length === 0) throw new TopicDeclarationError(`no topic declarations (*.yaml) in ${dir}`);
  const specs: TopicSpec[] = [];
  const seen = new Map<string, string>();
  for (const f of files) {
    const path = join(dir, f);
    const shown = relative(process.cwd(), path) || path;
    for (const spec of parseTopicFamily(readFileSync(path, 'utf8'), shown, prefix)) {
      const earlier = seen.get(spec.name);
      if (earlier) throw new TopicDeclarationError(`${shown}: topic ${spec.name} is already declared in ${earlier}`);
      seen.set(spec.name, shown);
      specs.push(spec);
    }
  }
  return specs;
}
