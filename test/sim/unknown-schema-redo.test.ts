import { headerString, DLQ_HEADERS } from '../../src/dlq';
import { TOPIC } from './world';
import {
  event,
  finish,
  lateCount,
  produceAt,
  produceLateSchemaAt,
  START,
  windowDiffs,
  windowsWritten,
  world,
} from './edge-world';
import { LATE_SCHEMA_ID, readerSchema } from './workload';

/**
 * Found by a review. Member A reads record x, of a schema the registry learns only later: a dead letter.
 * Records after it, on time for minute 12:01, are counted; minute 12:01 closes and its row is flushed to
 * ClickHouse (rows are written between commits), and A dies before its next commit. B takes the partition
 * over from A's last commit once the schema is registered and redoes A's work: it decoded x, whose record
 * and event stamped 12:03:10 moved the watermark past minute 12:01's end plus 60 s, so the 75 later
 * records of that minute were late. B's row of the minute's views replaced A's without them (published
 * late instead); the minute's only click, a straggler read after x, had no row of B's: A's row stayed in
 * ClickHouse counting it, and it was published late too. Now the committed offset is committed again with the verdict
 * before a row that may follow from it is written, and B dead-letters x as A did.
 */

const REGISTERED_AT = 150_000;
const X_AT = 105_000;

describe('a redo of a dead member’s work', () => {
  it('judges a record of a then-unknown schema as the dead member did', async () => {
    const w = world(1);
    w.registry.register(LATE_SCHEMA_ID, readerSchema, START + REGISTERED_AT);
    const expected = new Map<string, number>();
    const count = (t: number) => {
      const k = `p0@m${Math.floor((t - START) / 60_000)}`;
      expected.set(k, (expected.get(k) ?? 0) + 1);
    };
    for (let s = 1; s <= 1500; s++) {
      produceAt(w, 0, s * 200, event(s, START + s * 200));
      count(START + s * 200);
    }
    // x: stamped 12:03:10, record and event (a producer's clock 85 s ahead), so that decoded it moves the
    // watermark past minute 12:01's end plus 60 s; a dead letter while the schema is unknown.
    produceLateSchemaAt(w, 0, X_AT, 10_001, START + 190_000);
    // A straggler of minute 12:01 read after x, the minute's only click: on time for A.
    produceAt(w, 0, X_AT + 5_000, event(10_002, START + 62_000, 'click'));
    count(START + 62_000);

    // Rows flushed as soon as they wait; commits far apart, so A dies with its rows written past its last commit.
    const a = await w.drive(w.start({ processing: { flushIntervalMs: 100, commitIntervalMs: 600_000 } }));
    // Minute 12:01 closes when the record stamped 12:03:00 is read; A dies two seconds after.
    w.scheduler.at(w.root, 182_000 - (w.scheduler.now() - START), () => w.kill(a));
    await w.scheduler.runUntil(START + 183_000);
    expect(windowsWritten(w).has('p0@m1')).toBe(true);
    await w.drive(w.start({ processing: { flushIntervalMs: 100, commitIntervalMs: 5_000 } }));
    await w.scheduler.runUntil(START + 400_000);
    await finish(w);

    const dlq = (w.kafka.topics.get(`${TOPIC}.dlq`) ?? []).flat();
    expect(dlq.map((r) => headerString(r.headers, DLQ_HEADERS.sourceOffset))).toHaveLength(1);
    expect(lateCount(w)).toBe(0);
    expect(windowDiffs(w, expected)).toEqual({});
  }, 120_000);
});
