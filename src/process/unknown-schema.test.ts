import type { ConsumedRecord } from '../kafka';
import { parseAvroType } from '../schema/avro';
import { SchemaCodec } from '../schema/codec';
import { RegistryError, type RegistryClient } from '../schema/client';
import {
  MemorySnapshotStore,
  offsetOfSnapshot,
  snapshotsOf,
  stateMetadata,
  unknownSchemasOf,
  type UnknownSchema,
} from '../state';
import { count, defineWindows, tumbling, ungrouped } from '../window';
import { defineStream } from './definition';
import { StreamTask } from './task';
import { StreamWindows } from './windows';

/**
 * Found by a review of the first version of UnknownSchema, which kept one offset per id ("every record of
 * the id up to here was unknown"). With two members (two SchemaCodecs) the live stream can decode a record
 * of X at offset 1 and dead-letter one of X at offset 2: the second member's codec still holds X as
 * unknown (for 5 s after a 404) from a request made just before X was registered. A re-read from a
 * fallback before offset 1 then dead-lettered offset 1, which the live stream counted: lost. Spans per
 * taking-over keep offset 1 out; and a re-read by the member whose codec still remembers the 404 asks the
 * registry again for a record outside every span.
 */

interface Ev {
  id: string;
  n: number;
}
const MIN = 60_000;
const readerSchema = {
  type: 'record',
  name: 'Ev',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'n', type: 'double' },
  ],
};
const avro = parseAvroType(readerSchema as never);

const stream = defineStream<Ev>({
  name: 'unknown-schema-probe',
  source: { topic: 'in', schema: 'unused' },
  validate: (v) =>
    typeof v.id === 'string' && typeof v.n === 'number'
      ? { ok: true, event: { id: v.id, n: v.n } }
      : { ok: false, errors: ['id and n are required'] },
  eventTime: (e) => e.n,
  tables: [],
  windowed: {
    definition: defineWindows({
      assigner: tumbling(MIN),
      groupBy: ungrouped(),
      aggregate: { events: count<Ev>() },
      allowedLatenessMs: 0,
    }),
    outOfOrdernessMs: 0,
    idleTimeoutMs: 60_000,
    table: 'w',
    toRow: (w) => ({ start: w.windowStart, events: w.aggregates.events }),
  },
});

const T = 1_000_000; // schema 9 is registered at T
const clock = { now: 0 };
const registry = {
  async schemaById(id: number) {
    if (id === 1 || (id === 9 && clock.now >= T)) return JSON.stringify(readerSchema);
    throw new RegistryError(404, 40403, `Schema ${id} not found`);
  },
} as unknown as RegistryClient;

const wire = (schemaId: number, ev: Ev): Buffer => {
  const body = avro.toBuffer(ev);
  const out = Buffer.alloc(5 + body.length);
  out.writeInt32BE(schemaId, 1);
  body.copy(out, 5);
  return out;
};
const rec = (partition: number, offset: number, schemaId: number, ev: Ev): ConsumedRecord => ({
  topic: 'in',
  partition,
  offset: String(offset),
  timestamp: String(100 * MIN),
  key: null,
  value: wire(schemaId, ev),
  headers: {},
});

const member = () => {
  const codec = new SchemaCodec(registry, () => clock.now);
  return new StreamTask(
    stream,
    { decoder: codec.reading(readerSchema), now: () => clock.now, elapsed: () => clock.now },
    new StreamWindows(stream.windowed!, 'in'),
  );
};

/** What the runner does around a commit: save, name [restore point, fallback], filter, record metadata. */
async function commit(task: StreamTask<Ev>, store: MemorySnapshotStore, epoch = 0) {
  const cp = task.takeCheckpoint(true);
  await store.save(cp.snapshots);
  const o = cp.offsets.find((x) => x.partition === 0)!;
  const named = [o.snapshot!, task.fallbackSnapshot('in', 0, o.snapshot)].filter((s): s is string => !!s);
  const since = BigInt(offsetOfSnapshot(named.at(-1)!));
  const unknown = o.unknownSchemas.filter((u: UnknownSchema) => BigInt(u.through) >= since);
  const metadata = stateMetadata(epoch, named, [], unknown);
  task.committed('in', 0, o.offset, o.snapshot);
  return { cp, metadata, offset: o.offset };
}

describe('records of a schema registered while two members read it (two codecs)', () => {
  it.each([
    ['a third member', false],
    ['the member whose codec still holds the id as unknown', true],
  ])('a record the live stream decoded is decoded again by a re-read from the fallback, by %s', async (_, byB) => {
    const store = new MemorySnapshotStore();
    const ref = { topic: 'in', partition: 0 };
    const p0 = [
      rec(0, 0, 1, { id: 'a', n: MIN + 1 }),
      rec(0, 1, 9, { id: 'x', n: MIN + 2 }),
      rec(0, 2, 9, { id: 'y', n: MIN + 3 }),
    ];

    // Member B owns partition 1 and reads a record of schema 9 just before it is registered: 404, cached 5 s.
    clock.now = T - 100;
    const b = member();
    b.assign('in', 1, '0');
    await b.processBatch('in', 1, [rec(1, 0, 9, { id: 'q', n: MIN })]);
    expect(b.counters.deadLettered).toBe(1);

    // Member A owns partition 0: offset 0, commit; schema 9 registered; offset 1 decodes and is counted; commit.
    clock.now = T - 50;
    const a = member();
    a.assign('in', 0, '0');
    await a.processBatch('in', 0, p0.slice(0, 1));
    await commit(a, store);
    clock.now = T + 100;
    await a.processBatch('in', 0, p0.slice(1, 2));
    expect(a.counters.deadLettered).toBe(0); // x decoded live
    const aCommit = await commit(a, store);
    expect(aCommit.offset).toBe('2');

    // Rebalance: partition 0 moves to B (restored from A's restore point, fallback kept), within the 5 s.
    clock.now = T + 1_000;
    const named = snapshotsOf(aCommit.metadata, 0)!;
    b.assign('in', 0, '2', {
      snapshot: (await store.load(ref, named))!,
      fallback: named[1],
      releases: [],
      unknownSchemas: unknownSchemasOf(aCommit.metadata, 0),
    });
    await b.processBatch('in', 0, p0.slice(2));
    const bCommit = await commit(b, store);
    // y was a dead letter live (B's codec still held schema 9 as unknown), published once.
    expect(
      bCommit.cp.deadLetters.filter((d) => d.source.partition === 0).map((d) => [d.source.offset, d.errorClass]),
    ).toEqual([['2', 'SCHEMA_UNKNOWN']]);
    // Live: minute 1 = a + x (y a dead letter).
    // B's commit records 9@2 and names A's fallback (offset 1), before x.
    expect(unknownSchemasOf(bCommit.metadata, 0)).toEqual([{ schemaId: 9, from: '2', through: '2' }]);
    const bNamed = snapshotsOf(bCommit.metadata, 0)!;
    expect(offsetOfSnapshot(bNamed[1]!)).toBe('1');

    // B's own windows, closed here: minute 1 counts a and x.
    const live = member();
    live.assign('in', 0, '3', { snapshot: (await store.load(ref, [bNamed[0]!]))! });
    live.closeAllWindows();
    expect(
      live
        .takeCheckpoint(false)
        .rows.get('w')!
        .rows.filter((r) => r.start === MIN),
    ).toEqual([{ start: MIN, events: 2 }]);

    // Redis loses its last second (B's snapshot): B itself (whose codec holds schema 9 as unknown until
    // T + 4.9 s) or a new member C restores the fallback and re-reads 1..2.
    clock.now = T + 1_500;
    const c = byB ? b : member();
    const fallback = (await store.load(ref, [bNamed[1]!]))!;
    expect(c.assign('in', 0, '3', { snapshot: fallback, unknownSchemas: unknownSchemasOf(bCommit.metadata, 0) })).toBe(
      '1',
    );
    await c.processBatch('in', 0, p0.slice(1));
    c.closeAllWindows();
    const out = c.takeCheckpoint(true);
    const minute1 = out.rows.get('w')!.rows.filter((r) => r.start === MIN);
    // What the promise asks: minute 1 counts a and x, as the live stream did.
    expect({ minute1, published: out.deadLetters.length }).toEqual({
      minute1: [{ start: MIN, events: 2 }],
      published: 0,
    });
  });
});
