import { count } from './aggregations';
import { hopping } from './assigners';
import { defineWindows, ungrouped } from './definition';
import { WindowStateError } from './errors';
import { WindowOperator } from './operator';

describe('WindowOperator', () => {
  const definition = defineWindows({
    assigner: hopping(10, 5),
    groupBy: ungrouped<number>(),
    aggregate: { n: count() },
    allowedLatenessMs: 0,
  });

  it('closes each partition at its own watermark and counts hopping windows an event missed', () => {
    const operator = new WindowOperator(definition, { outOfOrdernessMs: 0, idleTimeoutMs: 1000 });
    operator.assign(0, undefined, 0);
    operator.assign(1, undefined, 0);
    operator.add(0, 1, 12, 0); // partition 0 at watermark 12
    expect(operator.close(0)).toEqual([]); // partition 0 at 12 closes nothing yet; partition 1 holds the stream at -Infinity
    operator.add(1, 1, 10, 0); // partition 1 at 10 (and the stream): [0,10) is closed for it, [5,15) stays open
    expect(operator.watermark(0)).toBe(10);
    expect(operator.add(1, 1, 7, 0)).toBeUndefined(); // [0,10) closed, [5,15) open: accepted, one window missed
    expect(operator.missedWindowCount).toBe(1);
    expect(operator.add(1, 1, 3, 0)).toEqual({ windowStart: 0, windowEnd: 10, watermark: 10, eventTime: 3 });
    operator.add(0, 1, 30, 0);
    operator.add(1, 1, 30, 0); // both partitions at 30 close [5,15), [10,20)
    expect(operator.close(0).map((e) => [e.partition, e.windows.map((w) => [w.windowStart, w.aggregates.n])])).toEqual([
      [
        0,
        [
          [5, 1],
          [10, 1],
        ],
      ],
      [
        1,
        [
          [5, 2],
          [10, 1],
        ],
      ],
    ]);
    expect(() => operator.add(2, 1, 1, 0)).toThrow(WindowStateError);
  });
});

describe('WindowOperator verdicts do not depend on how partitions interleave', () => {
  const definition = defineWindows({
    assigner: hopping(10, 10),
    groupBy: ungrouped<number>(),
    aggregate: { n: count() },
    allowedLatenessMs: 0,
  });

  it('judges a late event of a partition late even while another partition has not reported yet', () => {
    const operator = new WindowOperator(definition, { outOfOrdernessMs: 0, idleTimeoutMs: 1000 });
    operator.assign(0, undefined, 0);
    operator.assign(1, undefined, 0); // no record yet: the stream watermark is -Infinity
    operator.add(0, 1, 100, 0);
    expect(operator.watermark(0)).toBe(-Infinity);
    // 90 behind its own partition: late for partition 0 whatever partition 1 does.
    expect(operator.add(0, 1, 10, 0)).toEqual({ windowStart: 10, windowEnd: 20, watermark: 100, eventTime: 10 });
  });

  it('keeps the windows of a partition taken over behind the stream watermark open until its own watermark passes them', () => {
    // A rebalance hands this process partition 1, restored at a committed offset whose
    // watermark (20) is behind partition 0 (100): the same events must get the same
    // verdicts as in a run where partition 1 never moved.
    const operator = new WindowOperator(definition, { outOfOrdernessMs: 0, idleTimeoutMs: 1000 });
    operator.assign(0, undefined, 0);
    operator.add(0, 1, 100, 0);
    expect(operator.watermark(0)).toBe(100);
    const moved = new WindowOperator(definition, { outOfOrdernessMs: 0, idleTimeoutMs: 1000 });
    moved.assign(1, undefined, 0);
    moved.add(1, 1, 25, 0);
    moved.add(1, 1, 20, 0);
    operator.assign(1, JSON.parse(JSON.stringify(moved.snapshot(1))), 10);
    operator.close(20); // partition 1 is not idle: nothing of it may close at partition 0's watermark
    expect(operator.add(1, 1, 28, 30)).toBeUndefined(); // [20,30) is still open, as it would be without the move
    operator.add(1, 1, 45, 40);
    expect(operator.close(40).map((e) => [e.partition, e.windows.map((w) => [w.windowStart, w.aggregates.n])])).toEqual(
      [[1, [[20, 3]]]],
    );
  });

  it('releases an idle partition at the stream watermark', () => {
    const operator = new WindowOperator(definition, { outOfOrdernessMs: 0, idleTimeoutMs: 1000 });
    operator.assign(0, undefined, 0);
    operator.assign(1, undefined, 0);
    operator.add(0, 1, 5, 0); // partition 0 stays at 5
    operator.add(1, 1, 50, 0);
    expect(operator.close(500)).toEqual([]); // nobody idle yet: partition 0's window [0,10) stays open
    operator.add(1, 1, 60, 1500);
    // Partition 0 idle since 0: the stream watermark is partition 1's 60, and it closes [0,10) in partition 0 too.
    expect(operator.close(1500).map((e) => [e.partition, e.windows.map((w) => w.windowStart)])).toEqual([
      [0, [0]],
      [1, [50]],
    ]);
  });
});
