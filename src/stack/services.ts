import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { SluiceConfig } from '../config';
import { StackError } from '../errors';
import { describeCluster } from '../kafka';
import { redisServerInfo } from '../redis';
import { clickHouseVersion } from '../sink/clickhouse/client';
import { startDetached, type ServicePaths } from './processes';

/**
 * The credentials the local ClickHouse is provisioned with. They belong to the
 * local stack only; a real deployment sets SLUICE_CLICKHOUSE_USER/PASSWORD.
 */
export const LOCAL_CLICKHOUSE_USER = 'sluice';
export const LOCAL_CLICKHOUSE_PASSWORD = 'sluice';

export interface LocalService {
  name: string;
  /** The ports it listens on, each with the setting that moves it. */
  ports: { port: number; setting: string }[];
  /** Debian packages it needs: binary on PATH -> package providing it. */
  packages: Record<string, string>;
  /** Anything that must exist before the first start (jars, config files, formatted storage). */
  prepare(log: (line: string) => void): void;
  start(paths: ServicePaths): number;
  /** Proves the real service answers; returns a one-line description. */
  probe(): Promise<string>;
}

function dir(...parts: string[]): string {
  const path = join(...parts);
  mkdirSync(path, { recursive: true });
  return path;
}

const javaBinary = () => (process.env.JAVA_HOME ? join(process.env.JAVA_HOME, 'bin', 'java') : 'java');

/** Broker settings appended to the stack's server.properties when this file exists (read at each start). */
export function kafkaExtraPropertiesFile(config: Pick<SluiceConfig, 'stack'>): string {
  return resolve(config.stack.dir, 'kafka', 'server.extra.properties');
}

/** Runs one of Kafka's own command-line tools (a main class from the stack's jars), e.g. kafka.admin.ConfigCommand. */
export function runKafkaTool(config: Pick<SluiceConfig, 'stack'>, mainClass: string, args: string[]): string {
  const java = javaBinary();
  const classpath = `${resolve(config.stack.dir, 'kafka', 'libs', config.stack.kafkaVersion)}/*`;
  try {
    return execFileSync(java, ['-cp', classpath, mainClass, ...args], { stdio: 'pipe', encoding: 'utf8' });
  } catch (err) {
    throw new StackError(
      `${mainClass} failed: ${`${(err as { stderr?: string }).stderr ?? ''}`.trim().split('\n').at(-1)}`,
      err,
    );
  }
}

export function kafkaService(config: SluiceConfig): LocalService {
  const { stack } = config;
  const home = resolve(stack.dir, 'kafka');
  const libs = join(home, 'libs', stack.kafkaVersion);
  const data = join(home, 'data');
  const props = join(home, 'server.properties');
  const extraProps = kafkaExtraPropertiesFile(config);
  const log4j = join(home, 'log4j2.yaml');
  const classpath = `${libs}/*`;
  const java = javaBinary();
  const brokers = { kafka: { brokers: [`127.0.0.1:${stack.kafkaPort}`], clientId: 'sluice-stack' } };
  return {
    name: 'kafka',
    ports: [
      { port: stack.kafkaPort, setting: 'SLUICE_STACK_KAFKA_PORT' },
      { port: stack.kafkaControllerPort, setting: 'SLUICE_STACK_KAFKA_CONTROLLER_PORT' },
    ],
    // kcat (librdkafka) is the non-JS client the tests and benchmarks compare against.
    // openssl makes the certificates of the security tests' SASL_SSL listener (and TLS Redis/ClickHouse specs).
    packages: { java: 'default-jre-headless', mvn: 'maven', kcat: 'kcat', openssl: 'openssl' },
    prepare(log) {
      if (!existsSync(libs) || !readdirSync(libs).some((f) => f.startsWith('kafka_2.13-'))) {
        log(`resolving Apache Kafka ${stack.kafkaVersion} from Maven Central`);
        dir(libs);
        try {
          execFileSync(
            'mvn',
            [
              '-q',
              '-B',
              '-f',
              join(__dirname, 'kafka', 'pom.xml'),
              `-Dkafka.version=${stack.kafkaVersion}`,
              'dependency:copy-dependencies',
              `-DoutputDirectory=${libs}`,
              '-DincludeScope=runtime',
            ],
            { stdio: ['ignore', 'pipe', 'pipe'] },
          );
        } catch (err) {
          const out = `${(err as { stdout?: Buffer }).stdout ?? ''}`.split('\n').find((l) => l.includes('ERROR')) ?? '';
          throw new StackError(
            `Maven could not resolve Kafka ${stack.kafkaVersion}: ${out.trim() || (err as Error).message}`,
            err,
          );
        }
      }
      writeFileSync(
        props,
        [
          '# Written by `sluice stack up`: a single-node KRaft broker on loopback.',
          'process.roles=broker,controller',
          'node.id=1',
          `controller.quorum.voters=1@127.0.0.1:${stack.kafkaControllerPort}`,
          `listeners=PLAINTEXT://127.0.0.1:${stack.kafkaPort},CONTROLLER://127.0.0.1:${stack.kafkaControllerPort}`,
          `advertised.listeners=PLAINTEXT://127.0.0.1:${stack.kafkaPort}`,
          'controller.listener.names=CONTROLLER',
          'inter.broker.listener.name=PLAINTEXT',
          'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
          `log.dirs=${data}`,
          'num.partitions=1',
          'auto.create.topics.enable=false',
          'offsets.topic.replication.factor=1',
          'offsets.topic.num.partitions=6',
          'transaction.state.log.replication.factor=1',
          'transaction.state.log.min.isr=1',
          'transaction.state.log.num.partitions=6',
          'share.coordinator.state.topic.replication.factor=1',
          'share.coordinator.state.topic.min.isr=1',
          // Tests create and join many groups; waiting for more members only slows them.
          'group.initial.rebalance.delay.ms=0',
          'delete.topic.enable=true',
          '',
          // Extra listeners and settings (e.g. a SASL_SSL listener for the security tests); a later line wins.
          existsSync(extraProps) ? readFileSync(extraProps, 'utf8') : '',
        ].join('\n'),
      );
      writeFileSync(
        log4j,
        [
          'Configuration:',
          '  Appenders:',
          '    Console:',
          '      name: STDOUT',
          '      PatternLayout:',
          '        pattern: "[%d] %p %m (%c)%n"',
          '  Loggers:',
          '    Root:',
          '      level: WARN',
          '      AppenderRef:',
          '        - ref: STDOUT',
          '    Logger:',
          '      - name: kafka.server.KafkaRaftServer',
          '        level: INFO',
          '',
        ].join('\n'),
      );
      if (!existsSync(join(data, 'meta.properties'))) {
        log('formatting Kafka storage (first start)');
        dir(data);
        const clusterId = kafkaClusterId();
        try {
          execFileSync(
            java,
            [
              '-cp',
              classpath,
              `-Dlog4j2.configurationFile=${log4j}`,
              'kafka.tools.StorageTool',
              'format',
              '-t',
              clusterId,
              '-c',
              props,
            ],
            { stdio: 'pipe' },
          );
        } catch (err) {
          throw new StackError(
            `kafka-storage format failed: ${`${(err as { stderr?: Buffer }).stderr ?? ''}`.trim().split('\n').at(-1)}`,
            err,
          );
        }
      }
    },
    start(paths) {
      return startDetached(paths, java, [
        '-Xms256m',
        '-Xmx1g',
        '-XX:+UseG1GC',
        '-Djava.awt.headless=true',
        `-Dlog4j2.configurationFile=${log4j}`,
        '-cp',
        classpath,
        'kafka.Kafka',
        props,
      ]);
    },
    async probe() {
      const info = await describeCluster(brokers);
      return `cluster ${info.clusterId}, ${info.brokers} broker(s), Kafka ${stack.kafkaVersion}`;
    },
  };
}

export function redisService(config: SluiceConfig): LocalService {
  const { stack } = config;
  const home = resolve(stack.dir, 'redis');
  const conf = join(home, 'redis.conf');
  return {
    name: 'redis',
    ports: [{ port: stack.redisPort, setting: 'SLUICE_STACK_REDIS_PORT' }],
    packages: { 'redis-server': 'redis-server' },
    prepare() {
      dir(home, 'data');
      writeFileSync(
        conf,
        [
          '# Written by `sluice stack up`.',
          'bind 127.0.0.1',
          `port ${stack.redisPort}`,
          `dir ${join(home, 'data')}`,
          'daemonize no',
          'logfile ""',
          // Dedup marks must survive a Redis restart: append-only file, fsync each second.
          'appendonly yes',
          'appendfsync everysec',
          'save ""',
          'protected-mode yes',
          '',
        ].join('\n'),
      );
    },
    start(paths) {
      return startDetached(paths, 'redis-server', [conf]);
    },
    async probe() {
      const info = await redisServerInfo({ redis: { url: `redis://127.0.0.1:${stack.redisPort}`, keyPrefix: '' } });
      return `Redis ${info.redis_version}, pid ${info.process_id}`;
    },
  };
}

export function clickHouseService(config: SluiceConfig): LocalService {
  const { stack } = config;
  const home = resolve(stack.dir, 'clickhouse');
  const settings = {
    url: `http://127.0.0.1:${stack.clickhouseHttpPort}`,
    username: LOCAL_CLICKHOUSE_USER,
    password: LOCAL_CLICKHOUSE_PASSWORD,
  };
  const sha256 = createHash('sha256').update(LOCAL_CLICKHOUSE_PASSWORD).digest('hex');
  return {
    name: 'clickhouse',
    ports: [
      { port: stack.clickhouseHttpPort, setting: 'SLUICE_STACK_CLICKHOUSE_HTTP_PORT' },
      { port: stack.clickhouseTcpPort, setting: 'SLUICE_STACK_CLICKHOUSE_TCP_PORT' },
    ],
    packages: { 'clickhouse-server': 'clickhouse-server', 'clickhouse-client': 'clickhouse-client' },
    prepare() {
      for (const sub of ['data', 'tmp', 'user_files', 'format_schemas', 'logs']) dir(home, sub);
      // The legacy <yandex> root is what 18.16 reads; current servers still accept it.
      writeFileSync(
        join(home, 'config.xml'),
        `<?xml version="1.0"?>
<!-- Written by \`sluice stack up\`: everything under the project's stack folder, loopback only. -->
<yandex>
  <logger>
    <level>warning</level>
    <log>${home}/logs/server.log</log>
    <errorlog>${home}/logs/server.err.log</errorlog>
    <size>50M</size>
    <count>2</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>${stack.clickhouseHttpPort}</http_port>
  <tcp_port>${stack.clickhouseTcpPort}</tcp_port>
  <path>${home}/data/</path>
  <tmp_path>${home}/tmp/</tmp_path>
  <user_files_path>${home}/user_files/</user_files_path>
  <format_schema_path>${home}/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <!-- Clients close idle keep-alive sockets after 2.5 s (@clickhouse/client's idle_socket_ttl). A server
       closing them first (3 s by default on 18.16) races a client reusing one on a loaded machine, and
       the request fails with "socket hang up": the client must always be the side that closes. -->
  <keep_alive_timeout>30</keep_alive_timeout>
</yandex>
`,
      );
      writeFileSync(
        join(home, 'users.xml'),
        `<?xml version="1.0"?>
<yandex>
  <profiles>
    <!-- enable_optimize_predicate_expression: a filter on a view or subquery is pushed into it (off by default on
         18.16, on in current releases). Without it the window views read their whole partial table on 18.16. -->
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
      <enable_optimize_predicate_expression>1</enable_optimize_predicate_expression>
    </default>
  </profiles>
  <users>
    <${LOCAL_CLICKHOUSE_USER}>
      <password_sha256_hex>${sha256}</password_sha256_hex>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </${LOCAL_CLICKHOUSE_USER}>
  </users>
  <quotas>
    <default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default>
  </quotas>
</yandex>
`,
      );
    },
    start(paths) {
      return startDetached(paths, 'clickhouse-server', [`--config-file=${join(home, 'config.xml')}`], { cwd: home });
    },
    async probe() {
      return `ClickHouse ${await clickHouseVersion(settings)}`;
    },
  };
}

/** The stack's broker listens in plaintext: TLS and SASL settings meant for another cluster are cleared (empty = unset). */
const LOCAL_PLAINTEXT_KAFKA = Object.fromEntries(
  [
    'SSL',
    'SSL_CA_FILE',
    'SSL_CERT_FILE',
    'SSL_KEY_FILE',
    'SSL_REJECT_UNAUTHORIZED',
    'SASL_MECHANISM',
    'SASL_USERNAME',
    'SASL_PASSWORD',
  ].map((s) => [`SLUICE_KAFKA_${s}`, '']),
);

/**
 * Sluice's own schema registry, run as `sluice registry serve` in the
 * background. It keeps its state in the stack's Kafka, so the serve process
 * itself waits (--wait) until Kafka answers: `stack up` can start all four
 * services at once.
 */
export function registryService(config: SluiceConfig): LocalService {
  const { stack } = config;
  const url = `http://127.0.0.1:${stack.registryPort}`;
  return {
    name: 'registry',
    ports: [{ port: stack.registryPort, setting: 'SLUICE_STACK_REGISTRY_PORT' }],
    packages: {},
    prepare() {},
    start(paths) {
      const cli = resolve(__dirname, '..', '..', 'bin', 'sluice.js');
      return startDetached(
        paths,
        process.execPath,
        [cli, 'registry', 'serve', '--port', String(stack.registryPort), '--wait', String(stack.startTimeoutSeconds)],
        { env: { ...process.env, ...LOCAL_PLAINTEXT_KAFKA, SLUICE_KAFKA_BROKERS: `127.0.0.1:${stack.kafkaPort}` } },
      );
    },
    async probe() {
      const response = await fetch(`${url}/subjects`, { signal: AbortSignal.timeout(2000) });
      if (!response.ok) throw new StackError(`registry answered HTTP ${response.status} on GET /subjects`);
      const subjects = (await response.json()) as string[];
      return `schema registry on ${url}, ${subjects.length} subject(s)`;
    },
  };
}

export function localServices(config: SluiceConfig): LocalService[] {
  return [kafkaService(config), redisService(config), clickHouseService(config), registryService(config)];
}

/**
 * A random Kafka cluster id (16 bytes, base64url, as `kafka-storage
 * random-uuid` prints). One starting with '-' would be read as an option by
 * the storage tool's argument parser (1 in 64 ids), so, as Kafka's own
 * Uuid.randomUuid does, draw again.
 */
export function kafkaClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}
