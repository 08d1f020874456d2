import { useHandshakeRecorder } from '../../test/helpers/certs';
import { loadConfig } from '../config';
import { ServiceError } from '../errors';
import { createRedis, explainRedisError, redisTlsOptions } from './client';

describe('Redis client security options', () => {
  const { certs, server } = useHandshakeRecorder();

  it('gives no TLS options for redis:// and the configured files for rediss://', () => {
    expect(redisTlsOptions(loadConfig({ SLUICE_REDIS_URL: 'redis://127.0.0.1:6379' }).redis)).toBeUndefined();
    expect(redisTlsOptions(loadConfig({ SLUICE_REDIS_URL: 'rediss://127.0.0.1:6380' }).redis)).toEqual({
      rejectUnauthorized: true,
    });
    const tls = redisTlsOptions(
      loadConfig({
        SLUICE_REDIS_URL: 'rediss://127.0.0.1:6380',
        SLUICE_REDIS_TLS_CA_FILE: certs.caFile,
        SLUICE_REDIS_TLS_REJECT_UNAUTHORIZED: 'false',
      }).redis,
    );
    expect(tls).toEqual({ rejectUnauthorized: false, ca: [expect.stringContaining('-----BEGIN CERTIFICATE-----')] });
  });

  it('a client built by createRedis completes a mutual TLS handshake with the configured files', async () => {
    const config = loadConfig({
      SLUICE_REDIS_URL: `rediss://app:pw@127.0.0.1:${server().port}`,
      SLUICE_REDIS_TLS_CA_FILE: certs.caFile,
      SLUICE_REDIS_TLS_CERT_FILE: certs.clientCertFile,
      SLUICE_REDIS_TLS_KEY_FILE: certs.clientKeyFile,
    });
    const redis = createRedis(config, { retryStrategy: () => null, maxRetriesPerRequest: 0 });
    redis.on('error', () => undefined);
    const before = server().handshakes.length;
    // The recorder is no Redis: it hangs up after the handshake.
    await expect(redis.connect()).rejects.toThrow();
    redis.disconnect();
    expect(server().handshakes.slice(before)).toContain('sluice-client');
  });

  it('an untrusted server certificate fails in one line naming redis.tls.caFile', async () => {
    const config = loadConfig({
      SLUICE_REDIS_URL: `rediss://127.0.0.1:${server().port}`,
      SLUICE_REDIS_TLS_CA_FILE: certs.otherCaFile,
    });
    const redis = createRedis(config, { retryStrategy: () => null, maxRetriesPerRequest: 0 });
    redis.on('error', () => undefined);
    const failure = await redis.connect().then(
      () => undefined,
      (err: unknown) => err,
    );
    redis.disconnect();
    expect(failure).toBeInstanceOf(ServiceError);
    expect((failure as Error).message).toMatch(
      /^Redis at rediss:\/\/127\.0\.0\.1:\d+: TLS handshake failed \(.*certificate.*\): check redis\.tls\.caFile \(SLUICE_REDIS_TLS_CA_FILE\)$/,
    );
  });

  it('explains a refused login naming redis.url, with the password masked', () => {
    const settings = loadConfig({ SLUICE_REDIS_URL: 'redis://app:pw-Secret-5@r:6379' }).redis;
    const explained = explainRedisError(
      settings,
      new Error('WRONGPASS invalid username-password pair or user is disabled.'),
    ) as ServiceError;
    expect(explained).toBeInstanceOf(ServiceError);
    expect(explained.retriable).toBe(false);
    expect(explained.message).toBe(
      'Redis at redis://app:***@r:6379 refused the login (WRONGPASS): check the user and password in redis.url (SLUICE_REDIS_URL)',
    );
    const other = new Error('connect ECONNREFUSED 127.0.0.1:6379');
    expect(explainRedisError(settings, other)).toBe(other);
  });
});
