import { ConfigError } from '../errors';
import { loadConfig } from './load';

describe('ingest operator address settings', () => {
  it('default to loopback, on a port of their own', () => {
    const { ingest } = loadConfig({});
    expect(ingest.adminHost).toBe('127.0.0.1');
    expect(ingest.adminPort).toBe(9465);
    expect(ingest.adminPort).not.toBe(ingest.port);
  });

  it('are read from SLUICE_INGEST_ADMIN_HOST and SLUICE_INGEST_ADMIN_PORT', () => {
    const { ingest } = loadConfig({ SLUICE_INGEST_ADMIN_HOST: '10.0.0.7', SLUICE_INGEST_ADMIN_PORT: '19465' });
    expect(ingest.adminHost).toBe('10.0.0.7');
    expect(ingest.adminPort).toBe(19465);
  });

  it.each([
    [{ SLUICE_INGEST_ADMIN_PORT: 'metrics' }, /^invalid setting ingest\.adminPort \(SLUICE_INGEST_ADMIN_PORT\): /],
    [{ SLUICE_INGEST_ADMIN_PORT: '70000' }, /ingest\.adminPort \(SLUICE_INGEST_ADMIN_PORT\)/],
    [
      { SLUICE_INGEST_ADMIN_PORT: '8088' },
      /ingest\.adminPort \(SLUICE_INGEST_ADMIN_PORT\): .*must differ from ingest\.port/,
    ],
    [{ SLUICE_INGEST_PORT: '9465' }, /ingest\.adminPort: .*must differ from ingest\.port/],
  ])('refuse %p in one line naming the setting', (env, pattern) => {
    const attempt = () => loadConfig(env);
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(pattern);
    try {
      attempt();
    } catch (err) {
      expect((err as Error).message).not.toContain('\n');
    }
  });
});
