import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors';
import { configSchema, stackSchema, type SluiceConfig } from './schema';

/**
 * Every environment variable Sluice reads, and the setting it fills. One table,
 * so error messages can name both the setting and the variable that set it.
 */
export const ENV_SETTINGS: Record<string, string> = {
  SLUICE_STACK_DIR: 'stack.dir',
  SLUICE_STACK_KAFKA_VERSION: 'stack.kafkaVersion',
  SLUICE_STACK_KAFKA_PORT: 'stack.kafkaPort',
  SLUICE_STACK_KAFKA_CONTROLLER_PORT: 'stack.kafkaControllerPort',
  SLUICE_STACK_REDIS_PORT: 'stack.redisPort',
  SLUICE_STACK_CLICKHOUSE_HTTP_PORT: 'stack.clickhouseHttpPort',
  SLUICE_STACK_CLICKHOUSE_TCP_PORT: 'stack.clickhouseTcpPort',
  SLUICE_STACK_REGISTRY_PORT: 'stack.registryPort',
  SLUICE_STACK_START_TIMEOUT_SECONDS: 'stack.startTimeoutSeconds',
  SLUICE_KAFKA_BROKERS: 'kafka.brokers',
  SLUICE_KAFKA_CLIENT_ID: 'kafka.clientId',
  SLUICE_KAFKA_CLIENT: 'kafka.client',
  SLUICE_KAFKA_GROUP_PROTOCOL: 'kafka.groupProtocol',
  SLUICE_KAFKA_SSL: 'kafka.ssl.enabled',
  SLUICE_KAFKA_SSL_CA_FILE: 'kafka.ssl.caFile',
  SLUICE_KAFKA_SSL_CERT_FILE: 'kafka.ssl.certFile',
  SLUICE_KAFKA_SSL_KEY_FILE: 'kafka.ssl.keyFile',
  SLUICE_KAFKA_SSL_REJECT_UNAUTHORIZED: 'kafka.ssl.rejectUnauthorized',
  SLUICE_KAFKA_SASL_MECHANISM: 'kafka.sasl.mechanism',
  SLUICE_KAFKA_SASL_USERNAME: 'kafka.sasl.username',
  SLUICE_KAFKA_SASL_PASSWORD: 'kafka.sasl.password',
  SLUICE_REDIS_URL: 'redis.url',
  SLUICE_REDIS_KEY_PREFIX: 'redis.keyPrefix',
  SLUICE_REDIS_TLS_CA_FILE: 'redis.tls.caFile',
  SLUICE_REDIS_TLS_CERT_FILE: 'redis.tls.certFile',
  SLUICE_REDIS_TLS_KEY_FILE: 'redis.tls.keyFile',
  SLUICE_REDIS_TLS_REJECT_UNAUTHORIZED: 'redis.tls.rejectUnauthorized',
  SLUICE_CLICKHOUSE_URL: 'clickhouse.url',
  SLUICE_CLICKHOUSE_USER: 'clickhouse.username',
  SLUICE_CLICKHOUSE_PASSWORD: 'clickhouse.password',
  SLUICE_CLICKHOUSE_DATABASE: 'clickhouse.database',
  SLUICE_CLICKHOUSE_TLS_CA_FILE: 'clickhouse.tls.caFile',
  SLUICE_CLICKHOUSE_TLS_CERT_FILE: 'clickhouse.tls.certFile',
  SLUICE_CLICKHOUSE_TLS_KEY_FILE: 'clickhouse.tls.keyFile',
  SLUICE_REGISTRY_URL: 'registry.url',
  SLUICE_LOG_LEVEL: 'log.level',
  SLUICE_INGEST_HOST: 'ingest.host',
  SLUICE_INGEST_PORT: 'ingest.port',
  SLUICE_INGEST_ADMIN_HOST: 'ingest.adminHost',
  SLUICE_INGEST_ADMIN_PORT: 'ingest.adminPort',
  SLUICE_INGEST_TOPIC: 'ingest.topic',
  SLUICE_INGEST_SCHEMA: 'ingest.schema',
  SLUICE_INGEST_API_KEYS: 'ingest.apiKeys',
  SLUICE_INGEST_API_KEYS_FILE: 'ingest.apiKeysFile',
  SLUICE_INGEST_RATE_LIMIT_PER_SECOND: 'ingest.rateLimitPerSecond',
  SLUICE_INGEST_MAX_BODY_BYTES: 'ingest.maxBodyBytes',
  SLUICE_INGEST_MAX_EVENTS_PER_REQUEST: 'ingest.maxEventsPerRequest',
  SLUICE_INGEST_REJECT_DUPLICATES: 'ingest.rejectDuplicates',
  SLUICE_INGEST_DUPLICATE_TTL_SECONDS: 'ingest.duplicateTtlSeconds',
};

/** Settings whose value is a list; given in the environment as a comma-separated string. */
const LIST_SETTINGS = new Set(['kafka.brokers', 'ingest.apiKeys']);

type Tree = Record<string, unknown>;

function setPath(tree: Tree, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = tree;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Tree;
  }
  node[keys[keys.length - 1]!] = value;
}

function readFile(path: string): Tree {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`config file ${path} (SLUICE_CONFIG) cannot be read: ${(err as Error).message}`);
  }
  try {
    const parsed: unknown = extname(path) === '.json' ? JSON.parse(text) : parseYaml(text);
    if (parsed === null || parsed === undefined) return {};
    if (typeof parsed !== 'object' || Array.isArray(parsed))
      throw new ConfigError(`config file ${path} (SLUICE_CONFIG) is not valid: top level must be a mapping`);
    return parsed as Tree;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`config file ${path} (SLUICE_CONFIG) is not valid: ${(err as Error).message}`);
  }
}

function formatIssue(issue: z.core.$ZodIssue, source: Map<string, string>): string {
  const path = issue.path.join('.');
  const origin = source.get(path);
  const where = origin ? `${path} (${origin})` : path || '(top level)';
  return `invalid setting ${where}: ${issue.message}`;
}

/**
 * Builds the one validated config object from defaults, an optional file
 * (SLUICE_CONFIG, YAML or JSON) and environment variables, in that order of
 * precedence. Fails fast with a one-line message naming the bad setting.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): SluiceConfig {
  const tree: Tree = env.SLUICE_CONFIG ? readFile(env.SLUICE_CONFIG) : {};
  const source = new Map<string, string>();
  if (env.SLUICE_CONFIG) {
    // Anything not overridden below came from the file.
    const walk = (node: unknown, prefix: string): void => {
      if (typeof node !== 'object' || node === null || Array.isArray(node)) {
        source.set(prefix, `in ${env.SLUICE_CONFIG}`);
        return;
      }
      for (const [k, v] of Object.entries(node)) walk(v, prefix ? `${prefix}.${k}` : k);
    };
    walk(tree, '');
  }
  for (const [name, path] of Object.entries(ENV_SETTINGS)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    const value = LIST_SETTINGS.has(path)
      ? raw
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : raw;
    setPath(tree, path, value);
    source.set(path, name);
    if (LIST_SETTINGS.has(path)) (value as string[]).forEach((_, i) => source.set(`${path}.${i}`, name));
  }

  // The stack is parsed first because other defaults (ports in URLs) follow from it.
  const stackResult = stackSchema.safeParse(tree.stack ?? {});
  if (!stackResult.success) {
    const issue = stackResult.error.issues[0]!;
    throw new ConfigError(formatIssue({ ...issue, path: ['stack', ...issue.path] }, source));
  }
  const result = configSchema(stackResult.data).safeParse({ ...tree, stack: stackResult.data });
  if (!result.success) throw new ConfigError(formatIssue(result.error.issues[0]!, source));
  return result.data;
}

/** `kafka.ssl.caFile (SLUICE_KAFKA_SSL_CA_FILE)`: how messages name a setting. */
export function settingName(setting: string): string {
  const variable = Object.entries(ENV_SETTINGS).find(([, path]) => path === setting)?.[0];
  return variable ? `${setting} (${variable})` : setting;
}

/**
 * Reads a file a setting names (certificates, keys). The config loader already
 * checked it; this fails just as clearly if it went away since.
 */
export function readSettingFile(path: string, setting: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `${settingName(setting)}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
}

/**
 * The URL with its passwords replaced, wherever they are: the user part, or a query parameter ioredis also
 * reads (redis://host:6379/0?password=..., sentinelPassword), however its name is percent-encoded (the
 * names are compared decoded, as the client reads them). What messages, logs and the status page may show.
 */
export function redactedUrl(url: string): string {
  const parsed = new URL(url);
  const secret = (name: string) => /^(password|sentinelPassword)$/.test(name);
  const params = [...parsed.searchParams];
  const inQuery = params.some(([name]) => secret(name));
  if (!parsed.password && !inQuery) return url; // as given: nothing to hide
  if (parsed.password) parsed.password = '***';
  if (inQuery)
    parsed.search = params
      .map(([name, value]) => `${encodeURIComponent(name)}=${secret(name) ? '***' : encodeURIComponent(value)}`)
      .join('&');
  const shown = parsed.toString();
  // http(s) URLs print an empty path as '/': keep the URL as it was written.
  return !url.endsWith('/') && parsed.pathname === '/' && shown.endsWith('/') ? shown.slice(0, -1) : shown;
}

/** The config with secrets replaced, safe to print or log. */
export function redactConfig(config: SluiceConfig): SluiceConfig {
  const { sasl } = config.kafka;
  return {
    ...config,
    kafka: { ...config.kafka, sasl: sasl ? { ...sasl, password: '***' } : undefined },
    redis: { ...config.redis, url: redactedUrl(config.redis.url) },
    clickhouse: {
      ...config.clickhouse,
      url: redactedUrl(config.clickhouse.url),
      password: config.clickhouse.password ? '***' : '',
    },
  };
}
