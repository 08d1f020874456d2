import { count, distinct, sum } from './aggregations';
import { tumbling } from './assigners';
import { defineWindows } from './definition';
import { WindowTestDriver, mergePartials } from './testing';

interface Click {
  type: string;
  user: string;
  amount: number | null;
}

function definition(earlyEmitIntervalMs?: number) {
  return defineWindows({
    assigner: tumbling(60_000),
    groupBy: { key: (e: Click) => e.type, fields: (e: Click) => ({ type: e.type }) },
    aggregate: { events: count(), users: distinct((e: Click) => e.user), amount: sum((e: Click) => e.amount) },
    allowedLatenessMs: 10_000,
    earlyEmitIntervalMs,
  });
}

const settings = { outOfOrdernessMs: 5_000, idleTimeoutMs: 30_000 };
const view = (user: string): Click => ({ type: 'view', user, amount: null });
const buy = (user: string, amount: number): Click => ({ type: 'buy', user, amount });

describe('WindowTestDriver', () => {
  it("closes a partition's windows at its own watermark without waiting for an empty partition, then routes late events", () => {
    const driver = new WindowTestDriver(definition(), { ...settings, partitions: [0, 1] });
    driver.pipe(0, view('u1'), 1_000);
    driver.pipe(0, buy('u2', 5), 30_000);
    driver.pipe(0, view('u1'), 59_999);
    driver.advanceTime(20_000);
    expect(driver.readOutput()).toEqual([]); // partition 0's watermark 54 999: [0, 60 000) is due at 70 000
    driver.pipe(0, view('u3'), 80_000); // partition 0's watermark: 75 000
    expect(driver.watermark).toBe(-Infinity); // the stream's: partition 1 has had no record yet
    driver.advanceTime(10_000); // 30 s after assignment partition 1 is idle and releases the stream watermark
    expect(driver.watermark).toBe(75_000);
    // A window's groups in the order they opened: view at 1 s, buy at 30 s.
    expect(driver.readOutput()).toEqual([
      {
        partition: 0,
        windowStart: 0,
        windowEnd: 60_000,
        key: 'view',
        fields: { type: 'view' },
        aggregates: { events: 2, users: ['u1'], amount: 0 },
        final: true,
      },
      {
        partition: 0,
        windowStart: 0,
        windowEnd: 60_000,
        key: 'buy',
        fields: { type: 'buy' },
        aggregates: { events: 1, users: ['u2'], amount: 5 },
        final: true,
      },
    ]);

    const late = driver.pipe(0, view('u4'), 59_000);
    expect(late).toEqual({
      partition: 0,
      event: view('u4'),
      windowStart: 0,
      windowEnd: 60_000,
      watermark: 75_000,
      eventTime: 59_000,
    });
    expect(driver.readLate()).toEqual([late]);

    driver.pipe(0, view('u5'), 61_000);
    driver.pipe(1, view('u9'), 62_000); // partition 1 is back, behind: the watermark does not go back
    expect(driver.watermark).toBe(75_000);
    expect(driver.openWindowCount()).toBe(2);
    driver.endOfInput();
    const rows = driver.readOutput();
    expect(rows.map((r) => [r.partition, r.windowStart, r.key, r.aggregates.events, r.aggregates.users])).toEqual([
      [0, 60_000, 'view', 2, ['u3', 'u5']],
      [1, 60_000, 'view', 1, ['u9']],
    ]);
    expect(
      mergePartials(driver.definition, rows).map((r) => [
        r.windowStart,
        r.key,
        r.aggregates.events,
        r.aggregates.users,
      ]),
    ).toEqual([[60_000, 'view', 3, ['u3', 'u5', 'u9']]]);
    expect(driver.readLate()).toEqual([]);
  });

  it('moves a partition to another process through its snapshot without loss or double counting', () => {
    const first = new WindowTestDriver(definition(), { ...settings, partitions: [0, 1] });
    first.pipe(1, buy('a', 1), 10_000);
    first.pipe(1, buy('b', 2), 20_000);
    const saved = first.revoke(1);
    expect(first.openWindowCount()).toBe(0); // partition 0 had nothing; partition 1 is gone

    const second = new WindowTestDriver(definition(), { ...settings, partitions: [] });
    second.assign(1, saved);
    second.pipe(1, buy('a', 4), 30_000);
    second.endOfInput();
    expect(second.readOutput()).toEqual([
      {
        partition: 1,
        windowStart: 0,
        windowEnd: 60_000,
        key: 'buy',
        fields: { type: 'buy' },
        aggregates: { events: 3, users: ['a', 'b'], amount: 7 },
        final: true,
      },
    ]);
  });

  it('emits early partials of changed windows at the configured interval, then the final row', () => {
    const driver = new WindowTestDriver(definition(10_000), { ...settings, partitions: [0] });
    driver.pipe(0, view('u1'), 1_000);
    expect(driver.readOutput().map((r) => [r.aggregates.events, r.final])).toEqual([[1, false]]);
    driver.pipe(0, view('u2'), 2_000);
    driver.advanceTime(9_999);
    expect(driver.readOutput()).toEqual([]);
    driver.advanceTime(1);
    expect(driver.readOutput().map((r) => [r.aggregates.events, r.final])).toEqual([[2, false]]);
    driver.advanceTime(10_000);
    expect(driver.readOutput()).toEqual([]); // unchanged since
    driver.pipe(0, view('u3'), 75_000); // watermark 70 000 closes [0, 60 000)
    expect(driver.readOutput().map((r) => [r.windowStart, r.aggregates.events, r.final])).toEqual([[0, 2, true]]);
    driver.advanceTime(10_000);
    expect(driver.readOutput().map((r) => [r.windowStart, r.aggregates.events, r.final])).toEqual([[60_000, 1, false]]);
  });
});
