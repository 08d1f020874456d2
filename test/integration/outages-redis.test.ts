import { startPrivateStack, type PrivateStack } from '../helpers/private-stack';
import { PENDING_ROWS_BOUND, runOutage } from '../helpers/outage-run';

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
    const { figures, report, expected } = await runOutage(stack, 'redis', { label: 'out_redis', before: 15_000, during: 40_000, outageMs: 30_000 });
    console.log(JSON.stringify(figures));
    expect(figures.outageMs).toBeGreaterThanOrEqual(30_000);
    expect(figures.pausedAfterMs).toBeGreaterThanOrEqual(0); // every partition was paused
    // Consumption stopped before the input ran out, and nothing more was read once it had paused.
    expect(figures.processedDuringOutage).toBeLessThan(figures.producedDuringOutage);
    expect(figures.processedWhilePaused).toBe(0);
    expect(figures.committedDuringOutage).toBe(0);
    expect(figures.maxPendingRows).toBeLessThanOrEqual(PENDING_ROWS_BOUND);
    expect(figures.dedupFailOpen).toBe(0);

    expect(report.lostEvents).toEqual([]);
    expect(report.unexpectedEvents).toEqual([]);
    expect(report.duplicatedRows).toBe(0);
    expect(report.windowRowsFound).toBe(report.windowRowsExpected);
    expect(report.windowMismatches).toEqual([]);
    expect(new Set(report.deadLetters.map((r) => r.value?.toString('base64')))).toEqual(new Set(expected.deadLetters.map((d) => d.value)));
    expect(new Set(report.late.map((r) => r.key?.toString()))).toEqual(expected.lateEventIds);
  }, 240_000);
});
