import { readFileSync } from 'node:fs';
import { z } from 'zod';

const port = z.coerce.number().int().min(1).max(65535);

/** host:port, no scheme: what Kafka clients call a bootstrap server. */
const hostPort = z.string().regex(/^[A-Za-z0-9._[\]:-]+:\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:9092');

const url = (schemes: string[]) =>
  z.string().refine(
    (v) => {
      try {
        return schemes.includes(new URL(v).protocol);
      } catch {
        return false;
      }
    },
    { message: `expected a URL starting with ${schemes.join(' or ')}//` },
  );

/** Identifiers that reach SQL or key names: strict, so nothing needs quoting. */
export const identifier = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'expected letters, digits and _ (not starting with a digit), at most 63');

/**
 * A PEM file named by a setting: read once here, so a missing or unreadable
 * file fails at start-up naming the setting, not at the first connection.
 */
const pemFile = z
  .string()
  .min(1)
  .superRefine((path, ctx) => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      ctx.addIssue({
        code: 'custom',
        message: `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): give the path of a PEM file`,
      });
      return;
    }
    if (!text.includes('-----BEGIN '))
      ctx.addIssue({ code: 'custom', message: `${path} is not a PEM file (no -----BEGIN line)` });
  });

/** `true`/`false`/`1`/`0` from the environment, real booleans from a file. */
const flag = z.preprocess(
  (v) => (v === 'true' || v === '1' ? true : v === 'false' || v === '0' ? false : v),
  z.boolean(),
);

/** CA, client certificate and key files for a TLS connection; the certificate and key go together. */
const tlsFields = {
  /** Trusted CA certificates (PEM); the system's CAs when unset. */
  caFile: pemFile.optional(),
  /** Client certificate (PEM) for mutual TLS; needs keyFile. */
  certFile: pemFile.optional(),
  keyFile: pemFile.optional(),
  /** false accepts any server certificate: for a test bench only, never production. */
  rejectUnauthorized: flag.default(true),
};

/** ClickHouse's client takes a CA (and optionally a client certificate and key); it has no switch to skip verification. */
export const clickhouseTlsSchema = z
  .object({ caFile: pemFile, certFile: pemFile.optional(), keyFile: pemFile.optional() })
  .strict()
  .superRefine((tls, ctx) => certNeedsKey(tls, ctx));

function certNeedsKey(tls: { certFile?: string; keyFile?: string }, ctx: z.RefinementCtx): void {
  if (tls.certFile && !tls.keyFile)
    ctx.addIssue({ code: 'custom', path: ['keyFile'], message: 'certFile is set: give the client key file too' });
  if (tls.keyFile && !tls.certFile)
    ctx.addIssue({
      code: 'custom',
      path: ['certFile'],
      message: 'keyFile is set: give the client certificate file too',
    });
}

export const tlsSchema = z.object(tlsFields).strict().superRefine(certNeedsKey);

/** Kafka over TLS (SSL or SASL_SSL listeners). */
export const kafkaSslSchema = z
  .object({ enabled: flag.default(false), ...tlsFields })
  .strict()
  .superRefine((ssl, ctx) => {
    certNeedsKey(ssl, ctx);
    if (!ssl.enabled && (ssl.caFile || ssl.certFile || ssl.keyFile)) {
      ctx.addIssue({
        code: 'custom',
        path: ['enabled'],
        message: 'certificate files are set but TLS is off: set it to true (SLUICE_KAFKA_SSL=true)',
      });
    }
  });

/** Kafka SASL authentication; the password is a secret (redacted everywhere). */
export const kafkaSaslSchema = z
  .object({
    mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
    username: z.string().min(1, 'expected the SASL user name'),
    password: z.string().min(1, 'expected the SASL password'),
  })
  .strict();

export const stackSchema = z
  .object({
    /** Where the local stack keeps binaries, data, logs and pid files (git-ignored). */
    dir: z.string().min(1).default('.sluice'),
    kafkaVersion: z
      .string()
      .regex(/^4\.\d+\.\d+$/, 'expected a Kafka 4.x version like 4.1.1')
      .default('4.1.1'),
    kafkaPort: port.default(9092),
    kafkaControllerPort: port.default(9093),
    redisPort: port.default(6379),
    clickhouseHttpPort: port.default(8123),
    clickhouseTcpPort: port.default(9000),
    registryPort: port.default(8081),
    /** Seconds each service gets to become healthy before `stack up` gives up. */
    startTimeoutSeconds: z.coerce.number().int().min(5).max(600).default(90),
  })
  .strict();

/** The HTTP ingestion API (`sluice serve`). */
export const ingestSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: port.default(8088),
    /**
     * Where the operator endpoints (status page, status.json, metrics) listen: apart from the
     * public API, since they need no key and show internals; loopback unless a scraper needs more.
     */
    adminHost: z.string().min(1).default('127.0.0.1'),
    adminPort: port.default(9465),
    /** The topic accepted events are produced to, and the Avro schema (a name in avro/) they must match. */
    topic: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,249}$/, 'expected a Kafka topic name')
      .default('events'),
    schema: z
      .string()
      .regex(/^[A-Za-z0-9._-]+$/, 'expected the name of a file in avro/ without .avsc')
      .default('analytics_event'),
    /** sha256 (hex) of each accepted API key; never the keys themselves (`sluice serve hash-key <key>`). */
    apiKeys: z
      .array(
        z.string().regex(/^[0-9a-f]{64}$/, 'expected the sha256 hex of an API key: run `sluice serve hash-key <key>`'),
      )
      .default([]),
    /** A file with one sha256 hex per line (# comments allowed), read at start-up, added to apiKeys. */
    apiKeysFile: z.string().min(1).optional(),
    /** Events per second per API key (fixed 1 s window in Redis); 0 turns the limit off. */
    rateLimitPerSecond: z.coerce.number().int().min(0).default(5000),
    /** Largest request body accepted; larger ones get 413. */
    maxBodyBytes: z.coerce
      .number()
      .int()
      .min(1024)
      .max(64 * 1024 * 1024)
      .default(1024 * 1024),
    /** Most events in one request; more get 413. */
    maxEventsPerRequest: z.coerce.number().int().min(1).max(100_000).default(1000),
    /** Refuse (409) an event whose id was accepted within duplicateTtlSeconds. Off by default: processors dedup anyway. */
    rejectDuplicates: flag.default(false),
    duplicateTtlSeconds: z.coerce.number().int().min(1).default(86_400),
  })
  .strict()
  .superRefine((ingest, ctx) => {
    // One port for both would fail to listen, or on different hosts put the operator endpoints where the API is reachable.
    if (ingest.adminPort === ingest.port) {
      ctx.addIssue({
        code: 'custom',
        path: ['adminPort'],
        message: `${ingest.adminPort} must differ from ingest.port: the operator endpoints have a port of their own`,
      });
    }
  });

export function configSchema(stack: z.infer<typeof stackSchema>) {
  return z
    .object({
      stack: stackSchema,
      kafka: z
        .object({
          brokers: z
            .array(hostPort)
            .min(1)
            .default([`127.0.0.1:${stack.kafkaPort}`]),
          clientId: z.string().min(1).default('sluice'),
          /**
           * The client library: kafkajs (eager rebalancing only) or @platformatic/kafka (incremental
           * rebalancing; needs Node.js 22.22 or later). src/kafka/client.ts says which is the default and why.
           */
          client: z.enum(['kafkajs', 'platformatic']).optional(),
          /**
           * The consumer-group protocol: `consumer` (KIP-848, Kafka 4.0+: the broker assigns partitions
           * incrementally) or `classic` (join/sync; cooperative-sticky on platformatic, eager on kafkajs).
           */
          groupProtocol: z.enum(['classic', 'consumer']).optional(),
          ssl: kafkaSslSchema.optional(),
          sasl: kafkaSaslSchema.optional(),
        })
        .strict()
        .default({ brokers: [`127.0.0.1:${stack.kafkaPort}`], clientId: 'sluice' }),
      redis: z
        .object({
          url: url(['redis:', 'rediss:']).default(`redis://127.0.0.1:${stack.redisPort}`),
          /** Prepended to every key Sluice writes, so several deployments can share a Redis. */
          keyPrefix: z
            .string()
            .regex(/^[A-Za-z0-9:_.-]*$/, 'expected letters, digits and : _ . -')
            .default('sluice:'),
          /** Used with a rediss:// URL (the ACL user and password go in the URL: rediss://user:pass@host:port). */
          tls: tlsSchema.optional(),
        })
        .strict()
        .superRefine((redis, ctx) => {
          if (redis.tls && !redis.url.startsWith('rediss:')) {
            ctx.addIssue({
              code: 'custom',
              path: ['tls'],
              message: 'TLS files are set but redis.url is not rediss://: use a rediss:// URL',
            });
          }
        })
        .default({ url: `redis://127.0.0.1:${stack.redisPort}`, keyPrefix: 'sluice:' }),
      clickhouse: z
        .object({
          // chdb:///dir runs a current ClickHouse engine in the process (src/sink/clickhouse/chdb.ts): for trying the SQL, not for production.
          url: url(['http:', 'https:', 'chdb:']).default(`http://127.0.0.1:${stack.clickhouseHttpPort}`),
          username: z.string().min(1).default('sluice'),
          password: z.string().default('sluice'),
          database: identifier.default('sluice'),
          /** Used with an https:// URL. */
          tls: clickhouseTlsSchema.optional(),
        })
        .strict()
        .superRefine((clickhouse, ctx) => {
          if (clickhouse.tls && !clickhouse.url.startsWith('https:')) {
            ctx.addIssue({
              code: 'custom',
              path: ['tls'],
              message: 'TLS files are set but clickhouse.url is not https://: use an https:// URL',
            });
          }
        })
        .default({
          url: `http://127.0.0.1:${stack.clickhouseHttpPort}`,
          username: 'sluice',
          password: 'sluice',
          database: 'sluice',
        }),
      registry: z
        .object({ url: url(['http:', 'https:']).default(`http://127.0.0.1:${stack.registryPort}`) })
        .strict()
        .default({ url: `http://127.0.0.1:${stack.registryPort}` }),
      ingest: ingestSchema.default(ingestSchema.parse({})),
      log: z
        .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
        .strict()
        .default({ level: 'info' }),
    })
    .strict();
}

export type StackConfig = z.infer<typeof stackSchema>;
export type TlsConfig = z.infer<typeof tlsSchema>;
export type ClickHouseTlsConfig = z.infer<typeof clickhouseTlsSchema>;
export type KafkaSslConfig = z.infer<typeof kafkaSslSchema>;
export type KafkaSaslConfig = z.infer<typeof kafkaSaslSchema>;
export type IngestConfig = z.infer<typeof ingestSchema>;
export type SluiceConfig = z.infer<ReturnType<typeof configSchema>>;
