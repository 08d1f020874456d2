import { ManualClock } from '../sink/manual-clock';
import { backoffMs, DependencyBackoff } from './backoff';

describe('backoffMs', () => {
  it('doubles from the first wait up to the cap', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 50, 2000].map((attempt) => backoffMs(attempt, 200, 5000))).toEqual([
      200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000,
    ]);
  });
});

describe('DependencyBackoff', () => {
  /** How long reading is held back after the failure just recorded. */
  async function heldFor(clock: ManualClock, backoff: DependencyBackoff): Promise<number> {
    const from = clock.now();
    while (backoff.holding()) await clock.advance(10);
    return clock.now() - from;
  }

  it('holds reading back longer after each failure in a row, up to the cap, and reports only the first', async () => {
    const clock = new ManualClock(0);
    const backoff = new DependencyBackoff(clock, 250, 5000);
    expect(backoff.holding()).toBe(false);
    const firsts: boolean[] = [];
    const waits: number[] = [];
    for (let i = 0; i < 7; i++) {
      firsts.push(backoff.failed());
      waits.push(await heldFor(clock, backoff));
    }
    expect(firsts).toEqual([true, false, false, false, false, false, false]);
    expect(waits).toEqual([500, 1000, 2000, 4000, 5000, 5000, 5000]);
  });

  it('starts over after a success', async () => {
    const clock = new ManualClock(0);
    const backoff = new DependencyBackoff(clock, 250, 5000);
    backoff.failed();
    backoff.failed();
    backoff.succeeded();
    expect(backoff.failed()).toBe(true);
    expect(await heldFor(clock, backoff)).toBe(500);
  });
});
