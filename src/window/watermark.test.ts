import { WindowDefinitionError, WindowStateError } from './errors';
import { WatermarkTracker } from './watermark';

describe('WatermarkTracker', () => {
  it('per partition: max event time seen minus out-of-orderness, never decreasing', () => {
    const t = new WatermarkTracker({ outOfOrdernessMs: 100, idleTimeoutMs: 10_000 });
    t.assign(0, 0);
    expect(t.partitionWatermark(0)).toBe(-Infinity);
    t.observe(0, 1000, 0);
    expect(t.partitionWatermark(0)).toBe(900);
    t.observe(0, 500, 1); // out of order: does not move it back
    expect(t.partitionWatermark(0)).toBe(900);
    t.observe(0, 1500, 2);
    expect(t.partitionWatermark(0)).toBe(1400);
    expect(t.watermark(2)).toBe(1400);
  });

  it('stream watermark is the minimum over assigned partitions', () => {
    const t = new WatermarkTracker({ outOfOrdernessMs: 0, idleTimeoutMs: 10_000 });
    for (const p of [0, 1, 2]) t.assign(p, 0);
    t.observe(0, 300, 0);
    t.observe(1, 100, 0);
    expect(t.watermark(0)).toBe(-Infinity); // partition 2 has had no record
    t.observe(2, 200, 0);
    expect(t.watermark(0)).toBe(100);
    t.observe(1, 400, 0);
    expect(t.watermark(0)).toBe(200);
    t.revoke(2);
    expect(t.watermark(0)).toBe(300);
  });

  it('a partition that never had a record holds the watermark until the idle timeout, and not before', () => {
    const t = new WatermarkTracker({ outOfOrdernessMs: 0, idleTimeoutMs: 5000 });
    t.assign(0, 1000);
    t.assign(1, 1000);
    t.observe(0, 50_000, 1000);
    t.observe(0, 50_000, 5999); // partition 0 stays active
    expect(t.isIdle(1, 5999)).toBe(false);
    expect(t.watermark(5999)).toBe(-Infinity);
    expect(t.isIdle(1, 6000)).toBe(true); // exactly idleTimeoutMs after its assignment
    expect(t.watermark(6000)).toBe(50_000);
  });

  it('an idle partition stops holding the watermark back after the timeout; a record makes it count again', () => {
    const t = new WatermarkTracker({ outOfOrdernessMs: 0, idleTimeoutMs: 5000 });
    t.assign(0, 0);
    t.assign(1, 0);
    t.observe(0, 100, 0);
    t.observe(1, 100, 0);
    t.observe(0, 900, 2000); // partition 0 moves on; partition 1 goes quiet at 0
    expect(t.watermark(4999)).toBe(100);
    t.observe(0, 1000, 4999);
    expect(t.watermark(4999)).toBe(100); // 1 ms before partition 1's timeout
    expect(t.watermark(5000)).toBe(1000); // released
    // partition 1 comes back behind: it holds the stream again but the watermark does not go back
    t.observe(1, 300, 6000);
    expect(t.watermark(6000)).toBe(1000);
    t.observe(0, 2000, 6001);
    expect(t.watermark(6001)).toBe(1000); // held by partition 1 (at 300) from advancing
    t.observe(1, 1500, 6002);
    expect(t.watermark(6002)).toBe(1500);
  });

  it('time discounted as a stall of the process is not idleness; idleness from before it is kept', () => {
    const t = new WatermarkTracker({ outOfOrdernessMs: 0, idleTimeoutMs: 5000 });
    t.assign(0, 0);
    t.assign(1, 0);
    t.observe(0, 100, 0);
    t.observe(1, 100, 0);
    t.observe(0, 900, 3000); // partition 1 quiet since 0: 3 s of its 5 s
    t.discount(20_000, 23_000); // the process stopped from 3000 to 23000
    expect(t.isIdle(1, 23_000)).toBe(false);
    expect(t.isIdle(1, 24_999)).toBe(false); // 3 s before the stall + 1.999 s after it
    expect(t.isIdle(1, 25_000)).toBe(true);
    expect(t.isIdle(0, 25_000)).toBe(false); // partition 0 was read at 3000: 2 s of quiet after the stall
  });

  it('advances to the highest partition watermark once every partition is idle', () => {
    const t = new WatermarkTracker({ outOfOrdernessMs: 0, idleTimeoutMs: 1000 });
    t.assign(0, 0);
    t.assign(1, 0);
    t.assign(2, 0); // never has a record
    t.observe(0, 500, 0);
    t.observe(1, 200, 500);
    expect(t.watermark(0)).toBe(-Infinity);
    expect(t.watermark(1000)).toBe(200); // 0 and 2 idle, 1 active
    expect(t.watermark(1499)).toBe(200);
    expect(t.watermark(1500)).toBe(500); // all idle
    const empty = new WatermarkTracker({ outOfOrdernessMs: 0, idleTimeoutMs: 1000 });
    empty.assign(0, 0);
    expect(empty.watermark(5000)).toBe(-Infinity); // idle but nothing was ever read
  });

  it('snapshots and restores per partition', () => {
    const t = new WatermarkTracker({ outOfOrdernessMs: 10, idleTimeoutMs: 1000 });
    t.assign(0, 0);
    t.assign(1, 0);
    t.observe(0, 700, 0);
    const saved = JSON.parse(JSON.stringify(t.snapshot(0)));
    expect(saved).toEqual({ maxEventTimeMs: 700 });
    expect(t.snapshot(1)).toEqual({ maxEventTimeMs: null });
    const elsewhere = new WatermarkTracker({ outOfOrdernessMs: 10, idleTimeoutMs: 1000 });
    elsewhere.assign(0, 50, saved);
    expect(elsewhere.partitionWatermark(0)).toBe(690);
    expect(elsewhere.watermark(50)).toBe(690);
    expect(() => elsewhere.assign(1, 0, { maxEventTimeMs: 'x' })).toThrow(WindowStateError);
    expect(() => elsewhere.observe(7, 1, 0)).toThrow(/not assigned/);
  });

  it('validates its settings', () => {
    expect(() => new WatermarkTracker({ outOfOrdernessMs: -1, idleTimeoutMs: 1 })).toThrow(WindowDefinitionError);
    expect(() => new WatermarkTracker({ outOfOrdernessMs: 0, idleTimeoutMs: 0 })).toThrow(/idleTimeoutMs/);
  });
});
