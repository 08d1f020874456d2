import { headerString, DLQ_HEADERS } from '../../src/dlq';
import { TOPIC, World } from './world';
import { event, finish, produceAt, START, windowDiffs, world } from './edge-world';
import { encode, LATE_SCHEMA_ID, readerSchema } from './workload';

/**
 * Found by a review of the first version of UnknownSchema (one offset per id, "unknown up to here"). Each
 * member has its own SchemaCodec, and a codec holds an id the registry answered 404 for as unknown for 5 s,
 * even once it is registered.
 *
 * Member B reads a record of the late schema on its partition just before it is registered (404, cached).
 * Member A decodes a record x of the late schema on its partition Y just after it is registered: counted.
 * A leaves; B takes Y over and, within its 5 s, reads a record y of the late schema: it was a dead letter
 * (B's memory of the 404), and B's commit recorded (late schema, through y) and named A's fallback, from
 * before x. Redis loses its last second: the re-read from that fallback dead-lettered x too, which the
 * live stream counted: x's window was one event short, and x in no dead letter: lost. Now B asks the
 * registry again the first time the id is unknown in its taking-over of Y, and decodes y.
 */

const REGISTERED_AT = 30_000;

function lateSchemaAt(w: World, partition: number, atMs: number, n: number): void {
  w.scheduler.at(w.root, atMs - (w.scheduler.now() - START), () => {
    w.kafka.produce(TOPIC, partition, {
      timestamp: w.scheduler.now(),
      key: Buffer.from(`late-${n}`),
      value: encode(event(n, w.scheduler.now()), LATE_SCHEMA_ID),
      headers: {},
    });
  });
}

describe('unknown schema verdicts across two members', () => {
  it.each([
    ['Redis loses its last second', true],
    ['no Redis crash', false],
  ])(
    'a record the live stream counted is never dead-lettered, %s',
    async (_, crash) => {
      const w = world(2);
      w.registry.register(LATE_SCHEMA_ID, readerSchema, START + REGISTERED_AT);
      const expected = new Map<string, number>();
      const count = (p: number, t: number) => {
        const k = `p${p}@m${Math.floor((t - START) / 60_000)}`;
        expected.set(k, (expected.get(k) ?? 0) + 1);
      };
      let n = 0;
      for (let s = 1; s <= 900; s++)
        for (const p of [0, 1]) {
          produceAt(w, p, s * 200, event(++n, START + s * 200));
          count(p, START + s * 200);
        }
      const processing = { commitIntervalMs: 0, flushIntervalMs: 100 };
      const a = await w.drive(w.start({ processing }));
      await w.scheduler.runUntil(START + 10_000);
      const b = await w.drive(w.start({ processing }));
      await w.scheduler.runUntil(START + 20_000);
      const owned = (p: typeof a) => [...(p.runner as unknown as { assignment: Set<number> }).assignment];
      const [x] = owned(b); // B's partition
      const [y] = owned(a); // A's partition, handed to B
      expect([x, y].sort()).toEqual([0, 1]);

      lateSchemaAt(w, x!, REGISTERED_AT - 500, 10_001); // B: 404, held unknown until +4.5 s
      lateSchemaAt(w, y!, REGISTERED_AT + 500, 10_002); // A: decoded, counted
      count(y!, START + REGISTERED_AT + 500);
      w.scheduler.at(w.root, REGISTERED_AT + 1_000 - (w.scheduler.now() - START), () => void w.stop(a));
      lateSchemaAt(w, y!, REGISTERED_AT + 2_500, 10_003); // B: asks the registry again, decoded
      count(y!, START + REGISTERED_AT + 2_500);
      w.scheduler.at(w.root, REGISTERED_AT + 3_000 - (w.scheduler.now() - START), () => {
        if (!crash) return;
        w.redis.crash(1000);
        w.scheduler.at(w.root, 300, () => w.redis.restart());
      });
      await w.scheduler.runUntil(START + 200_000);
      await finish(w);

      const dlq = (w.kafka.topics.get(`${TOPIC}.dlq`) ?? []).flat();
      const dead = dlq.map(
        (r) =>
          `${headerString(r.headers, DLQ_HEADERS.sourcePartition)}@${headerString(r.headers, DLQ_HEADERS.sourceOffset)}`,
      );
      // The live verdicts: the record on x is a dead letter; 10_002 and 10_003 were counted.
      expect(dead.length).toBe(1);
      expect(windowDiffs(w, expected)).toEqual({});
    },
    120_000,
  );
});
