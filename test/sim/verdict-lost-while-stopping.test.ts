import {
  event,
  finish,
  interceptCommits,
  produceAt,
  produceLateSchemaAt,
  START,
  windowDiffs,
  world,
} from './edge-world';

/**
 * Found by a review. A checkpoint first commits the verdicts its rows may follow from; when that commit
 * does not land, the partition's rows are dropped from the checkpoint. While the member was stopping, the
 * partition was only marked lost and stayed in the task: records read meanwhile made it dirty again, and
 * the stop's last checkpoint committed its offset past the dropped rows, with a Kafka client that accepts a
 * commit after one whose outcome was unknown (the shipped clients give the partition's producer up
 * instead). Now the partition leaves the task as soon as its commit fails while stopping.
 */
describe('a verdict commit that fails as the member stops', () => {
  it('commits nothing more of that partition, so its dropped rows are redone', async () => {
    const w = world(1);
    const expected = new Map<string, number>();
    for (let s = 1; s <= 1800; s++) {
      const t = START + s * 100;
      produceAt(w, 0, s * 100, event(s, t));
      const k = `p0@m${Math.floor((t - START) / 60_000)}`;
      expected.set(k, (expected.get(k) ?? 0) + 1);
    }
    // A record of a schema the registry never learns every second: nearly every checkpoint has a verdict to record.
    for (let n = 1; n <= 180; n++) produceLateSchemaAt(w, 0, n * 1000 + 50, 10_000 + n);

    const a = await w.drive(w.start({ processing: { flushIntervalMs: 100, commitIntervalMs: 600_000 } }));
    let failed = false;
    interceptCommits(a, async ({ partition, records }, pending, commit) => {
      if (!failed && pending.closing && records.length === 0 && pending.verdicts > 0) {
        // The verdict commit of the checkpoint holding minute 12:00's rows: it hangs while records are read,
        // the member is told to stop, and its outcome is unknown. The client stays usable for the next commit.
        failed = true;
        await w.scheduler.sleep(w.root, 300);
        void w.stop(a);
        await w.scheduler.sleep(w.root, 1);
        throw new Error(`transaction of partition ${partition} failed, outcome unknown`);
      }
      return commit();
    });
    await w.scheduler.runUntil(START + 200_000);
    expect(failed).toBe(true);
    await finish(w);
    expect(windowDiffs(w, expected)).toEqual({});
  }, 120_000);
});
