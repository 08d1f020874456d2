import { randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import {
  computeExpected,
  createEventEncoder,
  generateWorkload,
  toLogEntry,
  type ExpectedAnswer,
} from '../../src/generator';
import { ANALYTICS_EVENT_V2_SCHEMA, type AnalyticsEventV2 } from '../../streams/event-counts';
import { loadConfig, type SluiceConfig } from '../../src/config';
import { ServiceError } from '../../src/errors';
import { createKafka } from '../../src/kafka';
import { createEventProducer } from '../../src/produce';
import { createClickHouse } from '../../src/sink/clickhouse/client';
import { kafkaExtraPropertiesFile, runKafkaTool } from '../../src/stack';
import { makeCertificates, type TestCertificates } from '../helpers/certs';
import { freePorts, scopeOf, startPrivateStack, type PrivateStack } from '../helpers/private-stack';
import { spawnSluice, waitFor } from '../helpers/processes';
import { ingestAdminUrl, ingestUrl, postEvents, publishedPages, sampleEvent, stopChild } from '../helpers/secrets';
import { metricValue, observabilityUrl } from '../helpers/telemetry';
import { readTopic } from '../helpers/topics';
import { hashApiKey } from '../../src/ingest';
import { compareWithExpected, expectExactAnswer } from '../helpers/reference';

const USER = 'sluice-app';
const PASSWORD = `scram-${randomBytes(8).toString('hex')}`;

/**
 * A SASL_SSL listener (SCRAM-SHA-512 over TLS, PEM keystore) beside the stack's
 * PLAINTEXT one, which the broker and the registry keep using.
 */
function saslSslListener(stack: PrivateStack, port: number, certs: TestCertificates): string {
  const { kafkaPort, kafkaControllerPort } = stack.config.stack;
  return [
    `listeners=PLAINTEXT://127.0.0.1:${kafkaPort},CONTROLLER://127.0.0.1:${kafkaControllerPort},SASL_SSL://127.0.0.1:${port}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${kafkaPort},SASL_SSL://127.0.0.1:${port}`,
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL',
    'sasl.enabled.mechanisms=SCRAM-SHA-512',
    'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
    'listener.name.sasl_ssl.ssl.keystore.type=PEM',
    `listener.name.sasl_ssl.ssl.keystore.location=${certs.serverKeystoreFile}`,
    '',
  ].join('\n');
}

/**
 * Kafka over SASL_SSL with SCRAM-SHA-512, end to end on a private stack whose
 * broker gets such a listener: topics, the producer SDK and the reference
 * stream (`sluice run`) talk to it only through that listener, and the
 * result in ClickHouse is the generator's answer. A wrong password fails in
 * seconds with one line naming the setting, and no password is ever printed.
 */
describe('Kafka over SASL_SSL (SCRAM-SHA-512)', () => {
  let stack: PrivateStack;
  let env: NodeJS.ProcessEnv;
  let config: SluiceConfig;
  let saslPort: number;

  beforeAll(async () => {
    const certs = makeCertificates();
    stack = await startPrivateStack('sasl');
    [saslPort] = (await freePorts(1)) as [number];
    writeFileSync(kafkaExtraPropertiesFile(stack.config), saslSslListener(stack, saslPort, certs));
    // The stack writes server.properties at each start: a restart picks the listener up. The registry
    // is restarted after it (its reader does not survive a Kafka restart); nothing has used it yet.
    await stack.stop('registry');
    await stack.stop('kafka');
    await stack.start('kafka');
    await stack.start('registry');
    // SCRAM credentials through the admin API (AlterUserScramCredentials), as an operator would with kafka-configs.
    runKafkaTool(stack.config, 'kafka.admin.ConfigCommand', [
      '--bootstrap-server',
      stack.config.kafka.brokers[0]!,
      '--alter',
      '--entity-type',
      'users',
      '--entity-name',
      USER,
      '--add-config',
      `SCRAM-SHA-512=[iterations=4096,password=${PASSWORD}]`,
    ]);
    const scope = await scopeOf(stack, 'sasl_run');
    env = {
      ...scope.env,
      SLUICE_KAFKA_BROKERS: `127.0.0.1:${saslPort}`,
      SLUICE_KAFKA_SSL: 'true',
      SLUICE_KAFKA_SSL_CA_FILE: certs.caFile,
      SLUICE_KAFKA_SASL_MECHANISM: 'scram-sha-512',
      SLUICE_KAFKA_SASL_USERNAME: USER,
      SLUICE_KAFKA_SASL_PASSWORD: PASSWORD,
    };
    config = loadConfig(env);
  }, 240_000);
  afterAll(async () => stack?.teardown());

  it('creates topics, produces with the SDK and runs the reference stream into ClickHouse, all over SASL_SSL', async () => {
    const topic = 'sasl.events';
    const admin = createKafka(config, { retries: 2 }).admin();
    await admin.connect();
    await admin.createTopics([topic, `${topic}.dlq`, `${topic}.late`].map((t) => ({ topic: t, numPartitions: 1 })));
    await admin.disconnect();

    // The reference workload without poison (the SDK validates, so it cannot send poison), through the producer SDK,
    // with the schema the generator writes (v2: a v1 producer would drop every event's channel).
    const producer = createEventProducer<AnalyticsEventV2>({
      config,
      topic,
      schema: ANALYTICS_EVENT_V2_SCHEMA,
      keyField: 'event_id',
    });
    await producer.connect();
    const records = [
      ...generateWorkload({ count: 2000, seed: 91, poisonRatio: 0 }, createEventEncoder(producer.schemaId!)),
    ];
    const sent = await producer.sendBatch(records.map((r) => r.event!));
    await producer.close();
    expect(sent).toHaveLength(records.length);
    const expected: ExpectedAnswer = computeExpected(records.map(toLogEntry));

    const run = spawnSluice(
      ['run', 'event-counts', '--bounded', '--json', '--topic', topic, '--group', 'sasl.group', '--http-port', '0'],
      {
        ...env,
        SLUICE_LOG_LEVEL: 'debug',
      },
    );
    const code = await run.exited;
    const output = run.output.join('');
    expect({ code, output: code === 0 ? '' : output }).toEqual({ code: 0, output: '' });
    expect(output).not.toContain(PASSWORD);

    const clickhouse = createClickHouse(config.clickhouse, config.clickhouse.database);
    const report = await compareWithExpected(clickhouse, createKafka(config), topic, expected);
    await clickhouse.close();
    expect(report.rawEvents.distinct).toBe(expected.eventIds.size);
    expectExactAnswer(report);
  }, 120_000);

  it('the ingest API produces over SASL_SSL, and neither it nor the processor shows the password or the API key', async () => {
    const topic = 'sasl.ingest';
    const apiKey = `sk-${randomBytes(12).toString('hex')}`;
    const admin = createKafka(config).admin();
    await admin.connect();
    await admin.createTopics([topic, `${topic}.dlq`, `${topic}.late`].map((t) => ({ topic: t, numPartitions: 1 })));
    const secretsEnv = {
      ...env,
      SLUICE_LOG_LEVEL: 'debug',
      SLUICE_INGEST_API_KEYS: hashApiKey(apiKey),
      SLUICE_INGEST_TOPIC: topic,
    };
    const ingest = spawnSluice(['serve', '--port', '0'], secretsEnv);
    const processor = spawnSluice(
      [
        'run',
        'event-counts',
        '--topic',
        topic,
        '--group',
        'sasl.ingest.group',
        '--flush-interval',
        '300',
        '--http-port',
        '0',
      ],
      secretsEnv,
    );
    try {
      const ingestAt = await ingestUrl(ingest);
      const ids = [randomUUID(), randomUUID()];
      for (const id of ids) expect((await postEvents(ingestAt, apiKey, sampleEvent(id))).status).toBe(202);
      expect((await postEvents(ingestAt, `${apiKey}-x`, sampleEvent(randomUUID()))).status).toBe(401);
      const processorUrl = await observabilityUrl(processor);
      await waitFor(
        'the ingested events processed',
        async () =>
          metricValue(await (await fetch(`${processorUrl}/metrics`)).text(), 'sluice_records_in_total') === ids.length,
        30_000,
      );
      const pages = (await publishedPages(await ingestAdminUrl(ingest))) + (await publishedPages(processorUrl));
      const output = (await stopChild(ingest)) + (await stopChild(processor));
      expect((await readTopic(createKafka(config), topic)).map((r) => r.key!.toString())).toEqual(ids);
      for (const value of [PASSWORD, apiKey]) {
        expect(output).not.toContain(value);
        expect(pages).not.toContain(value);
      }
    } finally {
      await admin.disconnect();
      for (const child of [ingest, processor]) if (child.process.exitCode === null) child.process.kill('SIGKILL');
    }
  }, 90_000);

  it('refuses a client without credentials on the SASL_SSL listener', async () => {
    const anonymous = createKafka({ kafka: { ...config.kafka, sasl: undefined } }, { retries: 0 }).admin();
    // Kafka answers ApiVersions before authentication (so connect() may pass); anything else is refused.
    await expect(anonymous.connect().then(() => anonymous.listTopics())).rejects.toThrow();
    await anonymous.disconnect();
  }, 30_000);

  it('a wrong password fails in seconds with one line naming kafka.sasl.password, never printing a password', async () => {
    const wrong = `wrong-${randomBytes(8).toString('hex')}`;
    // In process, with kafkajs's default retries: refused at once, not after a retry loop.
    const admin = createKafka(loadConfig({ ...env, SLUICE_KAFKA_SASL_PASSWORD: wrong })).admin();
    const started = Date.now();
    const failure = await admin.connect().then(
      () => undefined,
      (err: unknown) => err,
    );
    const refusedAfterMs = Date.now() - started;
    await admin.disconnect();
    expect(failure).toBeInstanceOf(ServiceError);
    expect((failure as ServiceError).retriable).toBe(false);
    expect(refusedAfterMs).toBeLessThan(5000);

    // The processor a user would start: exits 1 with the one line, no stack trace, no secret.
    const spawned = Date.now();
    const child = spawnSluice(
      ['run', 'event-counts', '--topic', 'sasl.events', '--group', 'sasl.refused', '--http-port', '0'],
      {
        ...env,
        SLUICE_KAFKA_SASL_PASSWORD: wrong,
      },
    );
    const code = await child.exited;
    const exitedAfterMs = Date.now() - spawned;
    const output = child.output.join('');
    console.log(
      `wrong SASL password: refused in process after ${refusedAfterMs} ms; sluice run exited ${code} after ${exitedAfterMs} ms (start-up included), printing: ${output.trim()}`,
    );
    expect(code).toBe(1);
    // Start-up (tsx, ClickHouse migration, Redis) included; a retry loop would not end at all.
    expect(exitedAfterMs).toBeLessThan(30_000);
    expect(output.trim().split('\n')).toEqual([
      expect.stringMatching(
        /refused the SCRAM-SHA-512 login of user 'sluice-app' \(.*invalid credentials.*\): check kafka\.sasl\.password \(SLUICE_KAFKA_SASL_PASSWORD\)/,
      ),
    ]);
    expect(output).not.toContain(wrong);
    expect(output).not.toContain(PASSWORD);

    // The ingest API refuses to start the same way.
    const serve = spawnSluice(['serve', '--port', '0'], {
      ...env,
      SLUICE_KAFKA_SASL_PASSWORD: wrong,
      SLUICE_INGEST_API_KEYS: hashApiKey('k'),
      SLUICE_INGEST_TOPIC: 'sasl.events',
    });
    expect(await serve.exited).toBe(1);
    expect(serve.output.join('')).toMatch(
      /^sluice: Kafka at .* refused the SCRAM-SHA-512 login of user 'sluice-app' .*: check kafka\.sasl\.password \(SLUICE_KAFKA_SASL_PASSWORD\).*\n$/,
    );
    expect(serve.output.join('')).not.toContain(wrong);
  }, 60_000);
});
