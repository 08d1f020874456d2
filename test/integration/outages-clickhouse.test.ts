import { startPrivateStack, type PrivateStack } from '../helpers/private-stack';
import { expectOutageHandled, runOutage } from '../helpers/outage-run';

/**
 * DESIGN §3.8 on a private stack: ClickHouse stopped for 30 s mid-run. The
 * processor must pause (read nothing more, commit nothing), hold a bounded
 * number of rows, resume by itself when ClickHouse returns, and end with
 * exactly the generator's answer: nothing lost, nothing counted twice.
 */
describe('ClickHouse down for 30 s mid-run', () => {
  let stack: PrivateStack;
  beforeAll(async () => {
    stack = await startPrivateStack('out_ch');
  }, 150_000);
  afterAll(async () => stack?.teardown(), 60_000);

  it('pauses, stays bounded, resumes by itself and loses or duplicates nothing', async () => {
    const result = await runOutage(stack, 'clickhouse', { label: 'out_ch', before: 15_000, during: 40_000, outageMs: 30_000 });
    expectOutageHandled(result);
  }, 240_000);
});
