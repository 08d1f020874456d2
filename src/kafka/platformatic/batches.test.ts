import type { RecordsBatch } from '@platformatic/kafka';
import { committedBatches, MemberIdentity, readPartition, type FetchedPartition } from './batches';

const TRANSACTIONAL = 0x10;
const CONTROL = 0x20;

function batch(firstOffset: number, count: number, options: { producerId?: number; txn?: boolean } = {}): RecordsBatch {
  return {
    firstOffset: BigInt(firstOffset),
    length: 0,
    partitionLeaderEpoch: 0,
    magic: 2,
    crc: 0,
    attributes: options.txn ? TRANSACTIONAL : 0,
    lastOffsetDelta: count - 1,
    firstTimestamp: 1000n,
    maxTimestamp: 1000n,
    producerId: BigInt(options.producerId ?? -1),
    producerEpoch: 0,
    firstSequence: 0,
    records: Array.from({ length: count }, (_, i) => ({
      length: 0,
      attributes: 0,
      timestampDelta: BigInt(i),
      offsetDelta: i,
      key: Buffer.from(`k${firstOffset + i}`),
      value: Buffer.from(`v${firstOffset + i}`),
      headers: [[Buffer.from('h'), Buffer.from('x')]],
    })),
  };
}

function marker(offset: number, producerId: number, kind: 'commit' | 'abort'): RecordsBatch {
  const key = Buffer.alloc(4);
  key.writeInt16BE(0, 0);
  key.writeInt16BE(kind === 'abort' ? 0 : 1, 2);
  const b = batch(offset, 1, { producerId, txn: true });
  return { ...b, attributes: TRANSACTIONAL | CONTROL, records: [{ ...b.records[0]!, key, value: null, headers: [] }] };
}

const partition = (records: RecordsBatch[], aborted: { producerId: number; firstOffset: number }[] = []) =>
  ({
    partitionIndex: 3,
    errorCode: 0,
    highWatermark: 100n,
    lastStableOffset: 100n,
    logStartOffset: 0n,
    preferredReadReplica: -1,
    abortedTransactions: aborted.map((a) => ({ producerId: BigInt(a.producerId), firstOffset: BigInt(a.firstOffset) })),
    records,
  }) as FetchedPartition;

const offsets = (read: ReturnType<typeof readPartition>) => read.records.map((r) => Number(r.offset));

describe('readPartition', () => {
  it('delivers the records from the fetch offset on, as ConsumedRecords, and where the next fetch starts', () => {
    const read = readPartition('t', 2n, partition([batch(0, 5), batch(5, 2)]));
    expect(offsets(read)).toEqual([2, 3, 4, 5, 6]);
    expect(read.next).toBe(7n);
    expect(read.records[0]).toEqual({
      topic: 't',
      partition: 3,
      offset: '2',
      timestamp: '1002',
      key: Buffer.from('k2'),
      value: Buffer.from('v2'),
      headers: { h: Buffer.from('x') },
    });
  });

  it('moves over commit markers without delivering them: a batch of only markers has no records but a next offset', () => {
    const read = readPartition('t', 10n, partition([marker(10, 7, 'commit')]));
    expect(read.records).toEqual([]);
    expect(read.next).toBe(11n);
    const trailing = readPartition(
      't',
      0n,
      partition([batch(0, 3, { producerId: 7, txn: true }), marker(3, 7, 'commit')]),
    );
    expect(offsets(trailing)).toEqual([0, 1, 2]);
    expect(trailing.next).toBe(4n);
  });

  it('has no next offset for an empty response', () => {
    expect(readPartition('t', 5n, partition([]))).toEqual({ records: [] });
  });

  it('repeats a header as a list', () => {
    const b = batch(0, 1);
    b.records[0]!.headers = [
      [Buffer.from('h'), Buffer.from('a')],
      [Buffer.from('h'), Buffer.from('b')],
    ];
    expect(readPartition('t', 0n, partition([b])).records[0]!.headers).toEqual({
      h: [Buffer.from('a'), Buffer.from('b')],
    });
  });
});

describe('committedBatches (read_committed as Kafka’s consumer filters)', () => {
  it('drops every aborted transaction of a producer, also when one producer aborted twice in a response', () => {
    const batches = [
      batch(0, 2, { producerId: 7, txn: true }),
      marker(2, 7, 'abort'),
      batch(3, 2, { producerId: 7, txn: true }),
      marker(5, 7, 'commit'),
      batch(6, 2, { producerId: 7, txn: true }),
      marker(8, 7, 'abort'),
      batch(9, 1, { producerId: 8, txn: true }),
      marker(10, 8, 'commit'),
    ];
    const read = readPartition(
      't',
      0n,
      partition(batches, [
        { producerId: 7, firstOffset: 0 },
        { producerId: 7, firstOffset: 6 },
      ]),
    );
    expect(offsets(read)).toEqual([3, 4, 9]);
    expect(read.next).toBe(11n);
  });

  it('drops an aborted transaction whose abort marker is beyond the response', () => {
    const kept = committedBatches(
      [batch(0, 2, { producerId: 7, txn: true }), batch(2, 2, { producerId: 7, txn: true })],
      [{ producerId: 7n, firstOffset: 0n }],
    );
    expect(kept).toEqual([]);
  });

  it('keeps non-transactional records and other producers’ records inside an aborted range', () => {
    const kept = committedBatches(
      [
        batch(0, 1, { producerId: 7, txn: true }),
        batch(1, 1),
        batch(2, 1, { producerId: 9, txn: true }),
        marker(3, 7, 'abort'),
      ],
      [{ producerId: 7n, firstOffset: 0n }],
    );
    expect(kept.map((b) => Number(b.firstOffset))).toEqual([1, 2]);
  });

  it('a producer aborted later in the response keeps its committed records before', () => {
    const kept = committedBatches(
      [
        batch(0, 1, { producerId: 7, txn: true }),
        marker(1, 7, 'commit'),
        batch(2, 1, { producerId: 7, txn: true }),
        marker(3, 7, 'abort'),
      ],
      [{ producerId: 7n, firstOffset: 2n }],
    );
    expect(kept.map((b) => Number(b.firstOffset))).toEqual([0]);
  });
});

describe('MemberIdentity', () => {
  it('reports the library’s id until the membership is lost, then a new id for every loss', () => {
    const identity = new MemberIdentity();
    expect(identity.of('m-1')).toBe('m-1');
    identity.lost();
    const first = identity.of('m-1');
    expect(first).not.toBe('m-1');
    identity.lost();
    expect(identity.of('m-1')).not.toBe(first);
    // A new id from the library (classic protocol after expulsion) is a new id as well.
    expect(identity.of('m-2')).not.toBe(identity.of('m-1'));
  });
});
