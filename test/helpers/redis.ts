import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { SluiceConfig } from '../../src/config';
import { createRedis } from '../../src/redis';
import type { TestContext } from './context';
import { waitFor } from './processes';

/**
 * Creates an ACL user on the shared Redis with a fresh name and password, allowed the key patterns
 * `keys` and the command rules `rules` (after `reset on`), and returns the test's config logging in as
 * it through redis://user:pass@host. The caller deletes it (`ACL DELUSER`).
 */
export async function aclUserConfig(
  ctx: TestContext,
  keys: string[],
  rules: string[],
): Promise<{ user: string; password: string; config: SluiceConfig }> {
  const user = `sluice_test_${randomBytes(4).toString('hex')}`;
  const password = `acl-${randomBytes(8).toString('hex')}`;
  await ctx.redis.call('ACL', 'SETUSER', user, 'reset', 'on', `>${password}`, ...keys.map((k) => `~${k}`), ...rules);
  const url = new URL(ctx.config.redis.url);
  url.username = user;
  url.password = password;
  return { user, password, config: { ...ctx.config, redis: { ...ctx.config.redis, url: url.toString() } } };
}

/** Whether the Redis `config` names answers PING now (one attempt, no retries). */
export async function answersPing(config: Pick<SluiceConfig, 'redis'>): Promise<boolean> {
  const redis = createRedis(config, { retryStrategy: () => null, maxRetriesPerRequest: 0 });
  redis.on('error', () => undefined);
  const ok = await redis
    .connect()
    .then(() => redis.ping())
    .then(
      (pong) => pong === 'PONG',
      () => false,
    );
  redis.disconnect();
  return ok;
}

/** A redis-server of the test's own (its port and settings in `args`), once `ready()` says it answers. */
export async function spawnRedisServer(
  args: string[],
  ready: () => Promise<boolean>,
): Promise<{ process: ChildProcess; stop(signal?: NodeJS.Signals): Promise<void> }> {
  const server = spawn('redis-server', ['--bind', '127.0.0.1', '--save', '', ...args], { stdio: 'ignore' });
  await waitFor('a private redis-server to answer', ready, 20_000);
  return {
    process: server,
    async stop(signal = 'SIGTERM') {
      if (server.exitCode !== null || server.signalCode !== null) return;
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill(signal);
      await exited;
    },
  };
}
