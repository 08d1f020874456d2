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

  it('closes every partition with the stream watermark and counts hopping windows an event missed', () => {
    const operator = new WindowOperator(definition, { outOfOrdernessMs: 0, idleTimeoutMs: 1000 });
    operator.assign(0, undefined, 0);
    operator.assign(1, undefined, 0);
    operator.add(0, 1, 12, 0); // partition 0 at watermark 12
    expect(operator.close(0)).toEqual([]); // partition 1 holds the stream at -Infinity
    operator.add(1, 1, 10, 0); // stream watermark 10: closes [0,10) nowhere (empty), [5,15) stays open
    expect(operator.watermark(0)).toBe(10);
    expect(operator.add(1, 1, 7, 0)).toBeUndefined(); // [0,10) closed, [5,15) open: accepted, one window missed
    expect(operator.missedWindowCount).toBe(1);
    expect(operator.add(1, 1, 3, 0)).toEqual({ windowStart: 0, windowEnd: 10, watermark: 10, eventTime: 3 });
    operator.add(0, 1, 30, 0);
    operator.add(1, 1, 30, 0); // stream watermark 30 closes [5,15), [10,20)
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
