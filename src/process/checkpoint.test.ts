import type { ConsumedRecord } from '../kafka';
import { commitCheckpoint, newProgress, type CheckpointPorts, type PartitionCommit } from './checkpoint';
import type { Checkpoint } from './task';

const record = (partition: number, offset: number): ConsumedRecord => ({
  topic: 'in',
  partition,
  offset: String(offset),
  timestamp: '0',
  key: null,
  value: Buffer.from('v'),
  headers: {},
});

/** Two partitions, each with a raw row, a dead letter, a snapshot and a new offset; partition 0 has a verdict to record. */
function twoPartitions(): Checkpoint {
  const span = { schemaId: 9, from: '1', through: '1' };
  const partitions = [0, 1];
  return {
    rows: new Map([
      [
        'raw',
        {
          rows: partitions.map((p) => ({ p })),
          origins: partitions.map((p) => record(p, 1)),
          positions: partitions.map((p) => ({ topic: 'in', partition: p, fromOffset: '1', toOffset: '2' })),
        },
      ],
    ]),
    deadLetters: partitions.map((p) => ({
      source: record(p, 0),
      errorClass: 'SCHEMA_UNKNOWN',
      message: 'x',
      attempt: 1,
    })),
    late: [],
    snapshots: partitions.map((p) => ({
      ref: { topic: 'in', partition: p },
      snapshot: { id: `2.s${p}`, offset: '2', savedAt: 0, watermark: null, windows: undefined },
      incarnation: 1,
    })),
    offsets: partitions.map((p) => ({
      topic: 'in',
      partition: p,
      incarnation: 1,
      offset: '2',
      snapshot: `2.s${p}`,
      releases: [],
      unknownSchemas: p === 0 ? [span] : [],
      closedAtEnd: false,
    })),
    partitions: new Map(partitions.map((p) => [p, { incarnation: 1, publishedBefore: 0n }])),
    verdicts: [
      {
        topic: 'in',
        partition: 0,
        incarnation: 1,
        offset: '0',
        snapshot: '0.s',
        releases: [],
        unknownSchemas: [span],
        closedAtEnd: false,
      },
    ],
  };
}

function recordingPorts(verdictsLanded: boolean) {
  const seen = {
    order: [] as string[],
    rows: [] as unknown[],
    saved: [] as number[],
    committed: [] as PartitionCommit[],
  };
  const ports: CheckpointPorts = {
    sink: {
      async write(_table, rows) {
        seen.order.push('rows');
        seen.rows.push(...rows);
        return [];
      },
    },
    side: {
      records: (deadLetters) =>
        deadLetters.map((d) => ({ topic: 'in.dlq', key: null, value: d.source.value!, headers: {} })),
    },
    snapshots: {
      async save(entries) {
        seen.saved.push(...entries.map((e) => e.ref.partition));
      },
    },
    async recordVerdicts(verdicts) {
      seen.order.push('verdicts');
      return new Set(verdictsLanded ? [] : verdicts.map((v) => v.partition));
    },
    async commit(partitions) {
      seen.committed.push(...partitions);
    },
    defer: () => undefined,
  };
  return { ports, seen };
}

describe('commitCheckpoint with verdicts to record', () => {
  it('records them before any row is written', async () => {
    const { ports, seen } = recordingPorts(true);
    await commitCheckpoint(twoPartitions(), ports, newProgress());
    expect(seen.order).toEqual(['verdicts', 'rows']);
    expect(seen.rows).toEqual([{ p: 0 }, { p: 1 }]);
    expect(seen.committed.map((c) => [c.partition, c.records.length])).toEqual([
      [0, 1],
      [1, 1],
    ]);
  });

  it('writes, saves and commits nothing of a partition whose verdict commit did not land (found by a seventh review)', async () => {
    const { ports, seen } = recordingPorts(false);
    await commitCheckpoint(twoPartitions(), ports, newProgress());
    expect(seen.rows).toEqual([{ p: 1 }]);
    expect(seen.saved).toEqual([1]);
    // Even if the partition's transactions would take a commit next, its offset is not in it.
    expect(seen.committed.map((c) => [c.partition, c.records.length])).toEqual([[1, 1]]);
  });
});
