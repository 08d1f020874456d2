import { randomBytes } from 'node:crypto';
import type { SluiceConfig } from '../../src/config';
import type { TestContext } from './context';

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
