import { WindowStateError } from './errors';
import { HyperLogLog, estimateFromRegisters } from './hll';

function sketchOf(values: Iterable<string>, precision = 14): HyperLogLog {
  const sketch = new HyperLogLog(precision);
  for (const v of values) sketch.add(v);
  return sketch;
}

function range(from: number, to: number, prefix = 'user-'): string[] {
  return Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`);
}

describe('HyperLogLog', () => {
  it('estimates 100k distinct values within 3 standard errors (p=14: 1.04/128 = 0.81%)', () => {
    const sketch = sketchOf(range(0, 100_000));
    const relativeError = Math.abs(sketch.estimate() - 100_000) / 100_000;
    expect(relativeError).toBeLessThan((3 * 1.04) / Math.sqrt(2 ** 14));
  });

  it('stays within its bound at other precisions and for uuid-like values', () => {
    for (const p of [8, 11, 16]) {
      const values = range(0, 50_000, 'e3b0c442-98fc-1c14-9afb-');
      const error = Math.abs(sketchOf(values, p).estimate() - 50_000) / 50_000;
      expect(error).toBeLessThan((3 * 1.04) / Math.sqrt(2 ** p));
    }
  });

  it('counts small sets nearly exactly (linear counting) and ignores repeats', () => {
    expect(new HyperLogLog(14).estimate()).toBe(0);
    expect(sketchOf(['a', 'a', 'a']).estimate()).toBe(1);
    expect(Math.abs(sketchOf(range(0, 1000)).estimate() - 1000)).toBeLessThanOrEqual(10);
  });

  it('merge is exactly the sketch of the union', () => {
    const a = range(0, 60_000);
    const b = range(40_000, 120_000);
    const merged = sketchOf(a);
    merged.merge(sketchOf(b));
    const union = sketchOf([...a, ...b]);
    expect(Buffer.from(merged.registers()).equals(Buffer.from(union.registers()))).toBe(true);
    expect(merged.estimate()).toBe(union.estimate());
    // union has 120k values; the merged estimate is within the bound of that, not of 140k
    expect(Math.abs(merged.estimate() - 120_000) / 120_000).toBeLessThan(0.0244);
    // sparse into sparse, and sparse into dense, are unions as well
    const small = sketchOf(['x', 'y']);
    small.merge(sketchOf(['y', 'z']));
    expect(small.registers()).toEqual(sketchOf(['x', 'y', 'z']).registers());
    const big = sketchOf(a);
    big.merge(sketchOf(['new-1', 'new-2']));
    expect(big.registers()).toEqual(sketchOf([...a, 'new-1', 'new-2']).registers());
  });

  it('element-wise max of registers (the downstream merge) gives the union estimate', () => {
    const left = sketchOf(range(0, 30_000)).registers();
    const right = sketchOf(range(20_000, 50_000)).registers();
    const maxed = left.map((r, i) => Math.max(r, right[i]!));
    expect(estimateFromRegisters(maxed)).toBe(sketchOf(range(0, 50_000)).estimate());
  });

  it('round-trips through JSON, sparse while small and dense when large', () => {
    const small = sketchOf(['a', 'b', 'c']);
    const smallJson = JSON.parse(JSON.stringify(small.toJSON()));
    expect(smallJson).toHaveProperty('sparse');
    expect(HyperLogLog.fromJSON(smallJson).registers()).toEqual(small.registers());
    const large = sketchOf(range(0, 20_000));
    const largeJson = JSON.parse(JSON.stringify(large.toJSON()));
    expect(largeJson).toHaveProperty('dense');
    const restored = HyperLogLog.fromJSON(largeJson);
    expect(restored.registers()).toEqual(large.registers());
    expect(restored.toJSON()).toEqual(largeJson);
  });

  it('refuses malformed state', () => {
    expect(() => HyperLogLog.fromJSON({ p: 14, sparse: [1] })).toThrow(WindowStateError);
    expect(() => HyperLogLog.fromJSON({ p: 14, sparse: [99_999, 1] })).toThrow(/out of range/);
    expect(() => HyperLogLog.fromJSON({ p: 2, sparse: [] })).toThrow(/precision/);
    expect(() => HyperLogLog.fromJSON({ p: 10, dense: Buffer.alloc(10).toString('base64') })).toThrow(/registers/);
    expect(() => new HyperLogLog(17)).toThrow(RangeError);
    expect(() => sketchOf(['a'], 10).merge(sketchOf(['a'], 12))).toThrow(/precision/);
  });
});
