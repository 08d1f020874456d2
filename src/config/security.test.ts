import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../errors';
import { loadConfig, readSettingFile, redactConfig } from './load';

/** Settings for TLS and SASL: validated at start-up, naming the setting and the variable; secrets never printed. */
describe('security settings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-security-config-'));
  const pem = join(dir, 'ca.pem');
  writeFileSync(pem, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  const notPem = join(dir, 'notes.txt');
  writeFileSync(notPem, 'hello\n');
  const missing = join(dir, 'missing.pem');

  it('reads Kafka SASL_SSL settings from the environment', () => {
    const config = loadConfig({
      SLUICE_KAFKA_SSL: 'true',
      SLUICE_KAFKA_SSL_CA_FILE: pem,
      SLUICE_KAFKA_SASL_MECHANISM: 'scram-sha-512',
      SLUICE_KAFKA_SASL_USERNAME: 'app',
      SLUICE_KAFKA_SASL_PASSWORD: 'kafka-pw-1',
    });
    expect(config.kafka.ssl).toEqual({ enabled: true, caFile: pem, rejectUnauthorized: true });
    expect(config.kafka.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'app', password: 'kafka-pw-1' });
  });

  it('leaves TLS and SASL off when nothing is set', () => {
    const config = loadConfig({});
    expect(config.kafka.ssl).toBeUndefined();
    expect(config.kafka.sasl).toBeUndefined();
    expect(config.redis.tls).toBeUndefined();
    expect(config.clickhouse.tls).toBeUndefined();
  });

  it.each([
    [
      { SLUICE_KAFKA_SSL: 'true', SLUICE_KAFKA_SSL_CA_FILE: missing },
      /kafka\.ssl\.caFile \(SLUICE_KAFKA_SSL_CA_FILE\): cannot read .*missing\.pem \(ENOENT\)/,
    ],
    [
      { SLUICE_KAFKA_SSL: 'true', SLUICE_KAFKA_SSL_CA_FILE: notPem },
      /kafka\.ssl\.caFile \(SLUICE_KAFKA_SSL_CA_FILE\): .*not a PEM file/,
    ],
    [{ SLUICE_KAFKA_SSL_CA_FILE: pem }, /kafka\.ssl\.enabled: certificate files are set but TLS is off/],
    [{ SLUICE_KAFKA_SSL: 'true', SLUICE_KAFKA_SSL_CERT_FILE: pem }, /kafka\.ssl\.keyFile: certFile is set/],
    [{ SLUICE_KAFKA_SSL: 'maybe' }, /kafka\.ssl\.enabled \(SLUICE_KAFKA_SSL\)/],
    [
      { SLUICE_KAFKA_SASL_MECHANISM: 'gssapi', SLUICE_KAFKA_SASL_USERNAME: 'u', SLUICE_KAFKA_SASL_PASSWORD: 'p' },
      /kafka\.sasl\.mechanism \(SLUICE_KAFKA_SASL_MECHANISM\)/,
    ],
    [{ SLUICE_KAFKA_SASL_MECHANISM: 'plain', SLUICE_KAFKA_SASL_USERNAME: 'u' }, /kafka\.sasl\.password: /],
    [{ SLUICE_REDIS_TLS_CA_FILE: pem }, /redis\.tls: TLS files are set but redis\.url is not rediss:\/\//],
    [{ SLUICE_REDIS_URL: 'rediss://r:6380', SLUICE_REDIS_TLS_KEY_FILE: pem }, /redis\.tls\.certFile: keyFile is set/],
    [
      { SLUICE_CLICKHOUSE_TLS_CA_FILE: pem },
      /clickhouse\.tls: TLS files are set but clickhouse\.url is not https:\/\//,
    ],
    [
      {
        SLUICE_CLICKHOUSE_URL: 'https://ch:8443',
        SLUICE_CLICKHOUSE_TLS_CERT_FILE: pem,
        SLUICE_CLICKHOUSE_TLS_KEY_FILE: pem,
      },
      /clickhouse\.tls\.caFile/,
    ],
  ])('fails fast on %j naming the setting', (env, pattern) => {
    const attempt = () => loadConfig(env);
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(pattern);
  });

  it('never echoes the SASL password in a validation error', () => {
    // A password with a bad mechanism beside it: the error is about the mechanism and shows no secret.
    const attempt = () =>
      loadConfig({
        SLUICE_KAFKA_SASL_MECHANISM: 'md5',
        SLUICE_KAFKA_SASL_USERNAME: 'u',
        SLUICE_KAFKA_SASL_PASSWORD: 'pw-Never-Shown',
      });
    expect(attempt).toThrow(/kafka\.sasl\.mechanism/);
    expect(() => attempt()).not.toThrow(/pw-Never-Shown/);
  });

  it('accepts rediss:// and https:// with their certificate files', () => {
    const config = loadConfig({
      SLUICE_REDIS_URL: 'rediss://app:pw@r:6380',
      SLUICE_REDIS_TLS_CA_FILE: pem,
      SLUICE_REDIS_TLS_REJECT_UNAUTHORIZED: 'false',
      SLUICE_CLICKHOUSE_URL: 'https://ch:8443',
      SLUICE_CLICKHOUSE_TLS_CA_FILE: pem,
      SLUICE_CLICKHOUSE_TLS_CERT_FILE: pem,
      SLUICE_CLICKHOUSE_TLS_KEY_FILE: pem,
    });
    expect(config.redis.tls).toEqual({ caFile: pem, rejectUnauthorized: false });
    expect(config.clickhouse.tls).toEqual({ caFile: pem, certFile: pem, keyFile: pem });
  });

  it('redacts the SASL password, the ClickHouse password and the Redis URL password', () => {
    const config = loadConfig({
      SLUICE_KAFKA_SASL_MECHANISM: 'scram-sha-256',
      SLUICE_KAFKA_SASL_USERNAME: 'app',
      SLUICE_KAFKA_SASL_PASSWORD: 'kafka-Secret-1',
      SLUICE_CLICKHOUSE_PASSWORD: 'ch-Secret-2',
      SLUICE_REDIS_URL: 'redis://app:redis-Secret-3@r:6379',
    });
    const text = JSON.stringify(redactConfig(config));
    for (const secret of ['kafka-Secret-1', 'ch-Secret-2', 'redis-Secret-3']) expect(text).not.toContain(secret);
    expect(redactConfig(config).kafka.sasl).toEqual({ mechanism: 'scram-sha-256', username: 'app', password: '***' });
  });

  it('readSettingFile names the setting and its variable when the file went away', () => {
    expect(() => readSettingFile(missing, 'redis.tls.caFile')).toThrow(
      /^redis\.tls\.caFile \(SLUICE_REDIS_TLS_CA_FILE\): cannot read .* \(ENOENT\)$/,
    );
  });
});
