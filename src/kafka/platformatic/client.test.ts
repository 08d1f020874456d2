import { useHandshakeRecorder } from '../../../test/helpers/certs';
import { loadConfig } from '../../config';
import { ServiceError } from '../../errors';
import { createKafka, nodeRunsPlatformatic } from '../client';
import { platformaticBaseOptions } from './connection';

// The library is an ES module Node.js before 22.22 cannot load: there only the kafkajs client runs.
const onPlatformatic = nodeRunsPlatformatic() ? describe : describe.skip;

onPlatformatic('the platformatic client', () => {
  const { certs, server } = useHandshakeRecorder();

  const configFor = (env: NodeJS.ProcessEnv) =>
    loadConfig({ SLUICE_KAFKA_BROKERS: `127.0.0.1:${server().port}`, SLUICE_KAFKA_CLIENT: 'platformatic', ...env });

  it('passes the CA, client certificate and key files as PEM text, the SASL credentials, and the process client id', () => {
    const config = configFor({
      SLUICE_KAFKA_SSL: 'true',
      SLUICE_KAFKA_SSL_CA_FILE: certs.caFile,
      SLUICE_KAFKA_SSL_CERT_FILE: certs.clientCertFile,
      SLUICE_KAFKA_SSL_KEY_FILE: certs.clientKeyFile,
      SLUICE_KAFKA_SASL_MECHANISM: 'scram-sha-512',
      SLUICE_KAFKA_SASL_USERNAME: 'app',
      SLUICE_KAFKA_SASL_PASSWORD: 'pw',
    });
    const options = platformaticBaseOptions(config.kafka, { clientId: 'sluice-test', retries: 0 });
    expect(options.sasl).toEqual({ mechanism: 'SCRAM-SHA-512', username: 'app', password: 'pw' });
    const tls = options.tls as { ca: string[]; cert: string; key: string; rejectUnauthorized: boolean };
    expect(tls.ca[0]).toContain('-----BEGIN CERTIFICATE-----');
    expect(tls.cert).toContain('-----BEGIN CERTIFICATE-----');
    expect(tls.key).toContain('PRIVATE KEY-----');
    expect(tls.rejectUnauthorized).toBe(true);
    expect(options.clientId).toMatch(/^sluice-test@.+#\d+$/);
    expect(options.retries).toBe(0);
    const plain = platformaticBaseOptions(configFor({}).kafka);
    expect(plain).not.toHaveProperty('tls');
    expect(plain).not.toHaveProperty('sasl');
  });

  it('an admin built by createKafka completes a mutual TLS handshake with the configured files', async () => {
    const config = configFor({
      SLUICE_KAFKA_SSL: 'true',
      SLUICE_KAFKA_SSL_CA_FILE: certs.caFile,
      SLUICE_KAFKA_SSL_CERT_FILE: certs.clientCertFile,
      SLUICE_KAFKA_SSL_KEY_FILE: certs.clientKeyFile,
    });
    const before = server().handshakes.length;
    const admin = createKafka(config, { retries: 0 }).admin();
    // The recorder is no broker: it hangs up after the handshake, so connect() fails after proving TLS worked.
    await expect(admin.connect()).rejects.toThrow();
    await admin.disconnect();
    expect(server().handshakes.slice(before)).toContain('sluice-client');
  });

  it('a server certificate from an untrusted CA fails in one line naming kafka.ssl.caFile', async () => {
    const config = configFor({ SLUICE_KAFKA_SSL: 'true', SLUICE_KAFKA_SSL_CA_FILE: certs.otherCaFile });
    for (const client of [
      createKafka(config, { retries: 0 }).admin(),
      createKafka(config, { retries: 0 }).producer(),
    ]) {
      const failure = await client.connect().then(
        () => undefined,
        (err: unknown) => err,
      );
      await client.disconnect();
      expect(failure).toBeInstanceOf(ServiceError);
      expect((failure as Error).message).toMatch(
        /^Kafka at 127\.0\.0\.1:\d+: TLS handshake failed \(.*certificate.*\): check kafka\.ssl\.caFile \(SLUICE_KAFKA_SSL_CA_FILE\)$/,
      );
    }
  });

  it("classifies a failed send of either library it uses (kafkajs's transactional producers)", () => {
    const kafka = createKafka(configFor({}));
    const kafkajsTooLarge = Object.assign(new Error('too large'), { type: 'MESSAGE_TOO_LARGE' });
    expect(kafka.sendFailure(kafkajsTooLarge)).toBe('too-large');
    expect(kafka.sendFailure(new Error('Topic events.dlq not present in metadata'))).toBe('topic-missing');
    expect(kafka.sendFailure(new Error('Connection timeout'))).toBe('unavailable');
  });
});
