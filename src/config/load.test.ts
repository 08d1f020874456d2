import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../errors';
import { loadConfig, redactConfig } from './load';

describe('loadConfig', () => {
  it('derives service URLs from the stack ports when nothing else is set', () => {
    const config = loadConfig({ SLUICE_STACK_KAFKA_PORT: '19092', SLUICE_STACK_CLICKHOUSE_HTTP_PORT: '18123' });
    expect(config.kafka.brokers).toEqual(['127.0.0.1:19092']);
    expect(config.clickhouse.url).toBe('http://127.0.0.1:18123');
    expect(config.redis.url).toBe('redis://127.0.0.1:6379');
  });

  it('lets the environment override the file, and the file override defaults', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-config-'));
    const file = join(dir, 'sluice.yaml');
    writeFileSync(file, 'clickhouse:\n  database: analytics\n  username: reader\nkafka:\n  brokers: [k1:9092]\n');
    const config = loadConfig({
      SLUICE_CONFIG: file,
      SLUICE_CLICKHOUSE_USER: 'writer',
      SLUICE_KAFKA_BROKERS: 'a:1, b:2',
    });
    expect(config.clickhouse.database).toBe('analytics');
    expect(config.clickhouse.username).toBe('writer');
    expect(config.kafka.brokers).toEqual(['a:1', 'b:2']);
  });

  it.each([
    ['SLUICE_CLICKHOUSE_URL', 'ftp://x', /clickhouse\.url \(SLUICE_CLICKHOUSE_URL\)/],
    ['SLUICE_STACK_REDIS_PORT', '70000', /stack\.redisPort \(SLUICE_STACK_REDIS_PORT\)/],
    ['SLUICE_KAFKA_BROKERS', 'localhost', /kafka\.brokers\.0 \(SLUICE_KAFKA_BROKERS\)/],
    ['SLUICE_CLICKHOUSE_DATABASE', 'drop table;', /clickhouse\.database \(SLUICE_CLICKHOUSE_DATABASE\)/],
    ['SLUICE_LOG_LEVEL', 'loud', /log\.level \(SLUICE_LOG_LEVEL\)/],
  ])('rejects %s=%s naming the setting and the variable', (name, value, pattern) => {
    const attempt = () => loadConfig({ [name]: value });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(pattern);
  });

  it('names the file and the setting for a bad value in a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-config-'));
    const file = join(dir, 'sluice.json');
    writeFileSync(file, JSON.stringify({ redis: { url: 'http://nope' } }));
    expect(() => loadConfig({ SLUICE_CONFIG: file })).toThrow(`redis.url (in ${file})`);
  });

  it('rejects unknown settings instead of ignoring a typo', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-config-'));
    const file = join(dir, 'sluice.yaml');
    writeFileSync(file, 'clickhouse:\n  pasword: x\n');
    expect(() => loadConfig({ SLUICE_CONFIG: file })).toThrow(/clickhouse/);
  });

  it('never shows secrets in the redacted form', () => {
    const config = loadConfig({ SLUICE_CLICKHOUSE_PASSWORD: 's3cret', SLUICE_REDIS_URL: 'redis://u:hunter2@r:6379' });
    const text = JSON.stringify(redactConfig(config));
    expect(text).not.toContain('s3cret');
    expect(text).not.toContain('hunter2');
  });
});
