import { startPrivateStack, type PrivateStack } from '../helpers/private-stack';
import { expectOutageHandled, runOutage } from '../helpers/outage-run';

/**
 * DESIGN §3.4 and §3.8 on a private stack: Redis (dedup marks and window
 * state) stopped for 30 s mid-run, then started again from its AOF. The
 * processor must pause rather than let events through (read nothing more,
 * commit nothing), resume by itself, and end with exactly the generator's
 * answer; first-half records re-sent during the outage are suppressed only if
 * the dedup marks survived the restart.
 */
describe('Redis down for 30 s mid-run', () => {
  let stack: PrivateStack;
  beforeAll(async () => {
    stack = await startPrivateStack('out_redis');
  }, 150_000);
  afterAll(async () => stack?.teardown(), 60_000);

  it('pauses, stays bounded, resumes by itself and loses or duplicates nothing', async () => {
    const result = await runOutage(stack, 'redis', { label: 'out_redis', before: 15_000, during: 40_000, outageMs: 30_000 });
    expectOutageHandled(result);
  }, 240_000);
});
