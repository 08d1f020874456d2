import { KafkaJSSASLAuthenticationError } from 'kafkajs';
import { useHandshakeRecorder } from '../../../test/helpers/certs';
import { loadConfig } from '../../config';
import { ServiceError } from '../../errors';
import { processClientId } from '../client';
import { createKafkajs, explainKafkaError, kafkaSecurityOptions } from './client';

describe('Kafka client security options', () => {
  const { certs, server } = useHandshakeRecorder();

  const configFor = (env: NodeJS.ProcessEnv) =>
    loadConfig({ SLUICE_KAFKA_BROKERS: `127.0.0.1:${server().port}`, ...env });

  it('passes the CA, client certificate and key files as PEM text, and the SASL credentials', () => {
    const config = configFor({
      SLUICE_KAFKA_SSL: 'true',
      SLUICE_KAFKA_SSL_CA_FILE: certs.caFile,
      SLUICE_KAFKA_SSL_CERT_FILE: certs.clientCertFile,
      SLUICE_KAFKA_SSL_KEY_FILE: certs.clientKeyFile,
      SLUICE_KAFKA_SASL_MECHANISM: 'scram-sha-512',
      SLUICE_KAFKA_SASL_USERNAME: 'app',
      SLUICE_KAFKA_SASL_PASSWORD: 'pw',
    });
    const options = kafkaSecurityOptions(config.kafka);
    expect(options.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'app', password: 'pw' });
    const ssl = options.ssl as { ca: string[]; cert: string; key: string; rejectUnauthorized: boolean };
    expect(ssl.ca[0]).toContain('-----BEGIN CERTIFICATE-----');
    expect(ssl.cert).toContain('-----BEGIN CERTIFICATE-----');
    expect(ssl.key).toContain('PRIVATE KEY-----');
    expect(ssl.rejectUnauthorized).toBe(true);
    expect(kafkaSecurityOptions(configFor({}).kafka)).toEqual({});
  });

  it('a client built by createKafkajs completes a mutual TLS handshake with the configured files', async () => {
    const config = configFor({
      SLUICE_KAFKA_SSL: 'true',
      SLUICE_KAFKA_SSL_CA_FILE: certs.caFile,
      SLUICE_KAFKA_SSL_CERT_FILE: certs.clientCertFile,
      SLUICE_KAFKA_SSL_KEY_FILE: certs.clientKeyFile,
    });
    const before = server().handshakes.length;
    const admin = createKafkajs(config, { retry: { retries: 0 } }).admin();
    // The recorder is no broker: it hangs up after the handshake, so connect() fails after proving TLS worked.
    await expect(admin.connect()).rejects.toThrow();
    await admin.disconnect();
    expect(server().handshakes.slice(before)).toContain('sluice-client');
  });

  it('a server certificate from an untrusted CA fails in one line naming kafka.ssl.caFile', async () => {
    const config = configFor({ SLUICE_KAFKA_SSL: 'true', SLUICE_KAFKA_SSL_CA_FILE: certs.otherCaFile });
    const admin = createKafkajs(config, { retry: { retries: 0 } }).admin();
    const failure = await admin.connect().then(
      () => undefined,
      (err: unknown) => err,
    );
    await admin.disconnect();
    expect(failure).toBeInstanceOf(ServiceError);
    expect((failure as Error).message).toMatch(
      /^Kafka at 127\.0\.0\.1:\d+: TLS handshake failed \(.*certificate.*\): check kafka\.ssl\.caFile \(SLUICE_KAFKA_SSL_CA_FILE\)$/,
    );
  });

  it('explains a refused SASL login naming the settings, never the password, and not retriable', () => {
    const config = configFor({
      SLUICE_KAFKA_SASL_MECHANISM: 'scram-sha-512',
      SLUICE_KAFKA_SASL_USERNAME: 'app',
      SLUICE_KAFKA_SASL_PASSWORD: 'pw-Secret-9',
    });
    // kafkajs's typings omit the constructor's message argument.
    const SaslError = KafkaJSSASLAuthenticationError as unknown as new (message: string) => Error;
    const refused = new SaslError(
      'SASL SCRAM SHA512 authentication failed: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512',
    );
    const explained = explainKafkaError(config.kafka, refused) as ServiceError;
    expect(explained).toBeInstanceOf(ServiceError);
    expect(explained.retriable).toBe(false);
    expect(explained.message).toBe(
      `Kafka at 127.0.0.1:${server().port} refused the SCRAM-SHA-512 login of user 'app' (Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512): check kafka.sasl.password (SLUICE_KAFKA_SASL_PASSWORD), kafka.sasl.username (SLUICE_KAFKA_SASL_USERNAME) and kafka.sasl.mechanism`,
    );
    expect(explained.message).not.toContain('pw-Secret-9');
    const other = new Error('The group is rebalancing');
    expect(explainKafkaError(config.kafka, other)).toBe(other);
  });
});

describe('processClientId', () => {
  it('names the host and pid of the process, so that group members tell processes apart', () => {
    expect(processClientId('sluice-event-counts', 'web-3', 4242)).toBe('sluice-event-counts@web-3#4242');
  });

  it('keeps an id that already names its process', () => {
    expect(processClientId('sluice-event-counts@web-3#4242', 'other', 1)).toBe('sluice-event-counts@web-3#4242');
  });
});
