import { hopping, session, tumbling, windowsOf } from './assigners';
import { WindowDefinitionError } from './errors';

describe('window assigners', () => {
  it('tumbling windows are [k·size, (k+1)·size) aligned to the epoch', () => {
    const w = tumbling(60_000);
    expect(windowsOf(w, 0)).toEqual([{ start: 0, end: 60_000 }]);
    expect(windowsOf(w, 59_999)).toEqual([{ start: 0, end: 60_000 }]);
    expect(windowsOf(w, 60_000)).toEqual([{ start: 60_000, end: 120_000 }]);
    // 1_700_000_012_345 = 28_333_333 minutes + 32_345 ms
    expect(windowsOf(w, 1_700_000_012_345)).toEqual([{ start: 1_699_999_980_000, end: 1_700_000_040_000 }]);
  });

  it('tumbling windows handle times before the epoch', () => {
    expect(windowsOf(tumbling(10), -1)).toEqual([{ start: -10, end: 0 }]);
    expect(windowsOf(tumbling(10), -10)).toEqual([{ start: -10, end: 0 }]);
    expect(windowsOf(tumbling(10), -11)).toEqual([{ start: -20, end: -10 }]);
  });

  it('an offset shifts the alignment', () => {
    const w = tumbling(10, { offsetMs: 3 });
    expect(windowsOf(w, 2)).toEqual([{ start: -7, end: 3 }]);
    expect(windowsOf(w, 3)).toEqual([{ start: 3, end: 13 }]);
    expect(windowsOf(w, 12)).toEqual([{ start: 3, end: 13 }]);
  });

  it('hopping windows: an event is in every window of size that starts at a multiple of advance before it', () => {
    const w = hopping(10, 5);
    expect(windowsOf(w, 0)).toEqual([
      { start: -5, end: 5 },
      { start: 0, end: 10 },
    ]);
    expect(windowsOf(w, 7)).toEqual([
      { start: 0, end: 10 },
      { start: 5, end: 15 },
    ]);
    // size not a multiple of advance: 10/3 -> 3 or 4 windows depending on the position
    expect(windowsOf(hopping(10, 3), 9)).toEqual([
      { start: 0, end: 10 },
      { start: 3, end: 13 },
      { start: 6, end: 16 },
      { start: 9, end: 19 },
    ]);
    expect(windowsOf(hopping(10, 3), 10)).toEqual([
      { start: 3, end: 13 },
      { start: 6, end: 16 },
      { start: 9, end: 19 },
    ]);
  });

  it('rejects impossible definitions with a message that says what to do', () => {
    expect(() => tumbling(0)).toThrow(WindowDefinitionError);
    expect(() => tumbling(1.5)).toThrow(/whole number/);
    expect(() => tumbling(10, { offsetMs: 10 })).toThrow(/offsetMs/);
    expect(() => hopping(10, 20)).toThrow(/must not exceed its size/);
    expect(() => session(-1)).toThrow(/session gap/);
  });
});
