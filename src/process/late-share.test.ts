import { LATE_SHARE_WARNING, lateShare, lateShareWarning } from './late-share';
import { streamCounters as counters } from './task';

describe('late share', () => {
  it('is late events per event that reached the windows (duplicates and events outside the range are not)', () => {
    expect(lateShare(counters({ decoded: 1100, deduplicated: 100, late: 50, outsideRange: 500 }))).toBe(0.05);
    expect(lateShare(counters({}))).toBeNull();
  });

  it('warns above 1% only, naming the share and the replay that windows those events', () => {
    expect(LATE_SHARE_WARNING).toBe(0.01);
    expect(lateShareWarning(counters({ decoded: 1000, late: 10 }))).toBeUndefined();
    expect(lateShareWarning(counters({ decoded: 1000, late: 5 }))).toBeUndefined();
    const warning = lateShareWarning(counters({ decoded: 1000, late: 487 }), 'event-counts');
    expect(warning).toMatch(/^48\.7% of the events were late \(487 of 1000; more than 1\.0%\)/);
    expect(warning).toContain("'sluice replay event-counts --from <start> --to <end> --yes'");
  });
});
