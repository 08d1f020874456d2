import { Writable } from 'node:stream';
import { createLogger, scrubSecrets } from './logger';
import { recentProblems } from './recent';

function capture(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join('')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('logger', () => {
  it('writes JSON lines with secrets redacted by path and cut out of URLs', () => {
    const out = capture();
    const log = createLogger('info', {}, out.stream);
    const config = {
      clickhouse: { url: 'http://ch:8123', username: 'sluice', password: 'pw-in-config' },
      redis: { url: 'redis://:pw-in-url@redis:6379' },
    };
    log.info(
      { config, headers: { authorization: 'Bearer key-in-header' } },
      'config loaded from redis://user:pw-in-message@host:6379',
    );
    const text = JSON.stringify(out.lines());
    for (const secret of ['pw-in-config', 'pw-in-url', 'key-in-header', 'pw-in-message'])
      expect(text).not.toContain(secret);
    const [line] = out.lines();
    expect(line).toMatchObject({ level: 30, service: 'sluice', msg: 'config loaded from redis://user:***@host:6379' });
    expect((line!.config as { redis: { url: string } }).redis.url).toBe('redis://:***@redis:6379');
    // The caller's object is left as it was.
    expect(config.redis.url).toBe('redis://:pw-in-url@redis:6379');
  });

  it('keeps warnings and errors for the status page, newest first', () => {
    const out = capture();
    const log = createLogger('info', {}, out.stream);
    log.warn({ err: 'connect ECONNREFUSED redis://:hidden@r:6379' }, 'first problem');
    log.error(new Error('boom'), 'second problem');
    log.info('not a problem');
    const [second, first] = recentProblems(2);
    expect(second).toMatchObject({ level: 'error', msg: 'second problem' });
    expect(first).toMatchObject({
      level: 'warn',
      msg: 'first problem',
      err: 'connect ECONNREFUSED redis://:***@r:6379',
    });
  });

  it('scrubs only the password part of a URL', () => {
    expect(scrubSecrets('http://a:b@h/x and https://h/y')).toBe('http://a:***@h/x and https://h/y');
  });
});
