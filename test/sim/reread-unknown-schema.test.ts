import { runScenario } from './scenario';

/**
 * Found by `npm run test:sim -- --seeds 25000`.
 *
 * Partition 0's offset 10 is written with a schema registered only at t+~100 s: the live stream (p1, p2,
 * p3) dead-letters it, and its redriven copy is counted later. Offset 12 is a straggler of minute
 * 12:39 (event time 12:39:26), counted in its window live. Redis loses its last second right after the
 * commit at 24; p3 restores the older snapshot (offset 7) and reads 7..23 again, now with the schema
 * registered. Offset 10 then decodes: its event of 12:41:03 moves the partition's watermark past 12:40,
 * minute 12:39 closes, and the straggler is judged late, its late event not published again (it was
 * counted live): window 12:39 |view| lost one event. The commit now records the live verdict (schema id,
 * through offset) and the re-read dead-letters offset 10 again.
 */
describe('seed 21906', () => {
  it('a re-read after Redis lost its latest state judges a record of a then-unknown schema as the live stream did', async () => {
    const result = await runScenario(21906);
    expect(result.failures).toEqual([]);
  }, 120_000);
});
