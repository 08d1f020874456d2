import type { SideRecord } from '../kafka/group';
import type { IdleRelease, SnapshotStore, UnknownSchema } from '../state';
import type { DeadLetter, LateEvent } from '../dlq';
import { WindowRowOrigin, type RowOrigin, type RowRefusal, type RowSink, type SideOutputs } from './ports';
import type { Checkpoint, PartitionIncarnation } from './task';

/** One partition's part of a commit: its new offset, and the side records of the work it covers. */
export interface PartitionCommit extends PartitionIncarnation {
  offset: string;
  /** The snapshot this commit makes the partition's restore point. */
  snapshot?: string;
  /** The partition's kept idle releases: the commit records those after the fallback it names. */
  releases: IdleRelease[];
  /** The schemas unknown to the live stream it keeps: the commit records those since the fallback it names. */
  unknownSchemas: UnknownSchema[];
  /** It carries the dead letters of a bounded run's close of every open window (see RestoredState.closedAtEnd). */
  closedAtEnd: boolean;
  records: SideRecord[];
}

export interface CheckpointPorts {
  sink: RowSink;
  side: SideOutputs;
  snapshots?: Pick<SnapshotStore, 'save'>;
  /**
   * Commits each partition's offset and its side records in one Kafka transaction per partition; the
   * last step. Resolves once every partition was committed or given back to be restored (a partition
   * whose transaction failed is restored from what Kafka has committed, and its work done again).
   */
  commit(partitions: PartitionCommit[]): Promise<void>;
  /**
   * Commits each partition's committed offset again, its metadata now holding the verdicts (see
   * Checkpoint.verdicts). Resolves with the partitions whose commit did not land (given back to be
   * restored, or no longer this member's): nothing more of theirs in the checkpoint is written or committed.
   */
  recordVerdicts(verdicts: Checkpoint['verdicts']): Promise<Set<number>>;
  /** Dead letters of rows refused in a checkpoint that does not commit: they wait for the partition's next commit. */
  defer(deadLetters: DeadLetter[], partitions: Checkpoint['partitions']): void;
  /** Every row of the checkpoint is written; what is left is saving window state and committing. */
  rowsWritten?(): void;
}

/** Steps of a checkpoint already done, so a retry after a failure does not repeat them. */
export interface CheckpointProgress {
  /** The verdicts the rows may follow from are in Kafka's committed metadata. */
  verdicts: boolean;
  tables: Set<string>;
  /** Every table's rows are written. */
  rows: boolean;
  snapshots: boolean;
  committed: boolean;
}

export function newProgress(): CheckpointProgress {
  return { verdicts: false, tables: new Set(), rows: false, snapshots: false, committed: false };
}

/**
 * The commit sequence of a stream, in one place.
 *
 * Invariant: an offset is committed only after every record before it is in
 * ClickHouse, and after the partition's window state as of that offset is
 * saved; it is committed in the same Kafka transaction as the dead letters
 * and late events of the records it covers, so a `read_committed` reader of
 * `<topic>.dlq` and `<topic>.late` sees each of them once. A crash at any
 * step leaves the previous committed offset and its snapshot in force, and
 * redoing the work from there yields the same rows (ClickHouse replaces them
 * by their deterministic identity) and side records that were never
 * committed. Dedup marks cannot hide an event whose effect was lost: a mark
 * names the record that claimed the id, and a redelivery of that same record
 * is let through again.
 *
 * A checkpoint taken without committing (see StreamTask.takeCheckpoint)
 * carries only rows: the next committing checkpoint covers their offsets.
 *
 * A row the sink refuses for good (a value its column cannot hold) becomes a
 * dead letter, named by what it was made from: the source record of a raw
 * row, the window of a window partial. It never stops the stream, and every
 * other row is written.
 *
 * Throws (retriably) at the first step that fails; calling again with the same
 * progress object resumes at that step.
 */
export async function commitCheckpoint(
  checkpoint: Checkpoint,
  ports: CheckpointPorts,
  progress: CheckpointProgress,
): Promise<void> {
  const committing = checkpoint.offsets.length > 0;
  if (!progress.verdicts && checkpoint.verdicts.length > 0)
    withoutPartitions(checkpoint, await ports.recordVerdicts(checkpoint.verdicts));
  progress.verdicts = true;
  for (const [table, { rows, origins, positions }] of checkpoint.rows) {
    if (progress.tables.has(table) || rows.length === 0) continue;
    const refused = (await ports.sink.write(table, rows, positions))
      .filter((r) => !publishedBefore(origins[r.index]!, checkpoint))
      .map((r) => refusedRow(table, rows[r.index]!, origins[r.index]!, r));
    if (committing) checkpoint.deadLetters.push(...refused);
    else if (refused.length > 0) ports.defer(refused, checkpoint.partitions);
    progress.tables.add(table);
  }
  progress.rows = true;
  ports.rowsWritten?.();
  if (!progress.snapshots && ports.snapshots && checkpoint.snapshots.length > 0)
    await ports.snapshots.save(checkpoint.snapshots);
  progress.snapshots = true;
  if (!progress.committed && committing) await ports.commit(partitionCommits(checkpoint, ports.side));
  progress.committed = true;
}

/**
 * Drops everything of `partitions` from the checkpoint: the verdicts their rows may follow from were not
 * recorded, and they are restored (or no longer this member's). Their offsets go too, whatever a
 * transaction whose outcome was unknown would let through next: committing past rows not written would
 * lose them.
 */
function withoutPartitions(checkpoint: Checkpoint, partitions: Set<number>): void {
  if (partitions.size === 0) return;
  for (const [table, entry] of checkpoint.rows) {
    const keep = entry.origins.map((o) => !partitions.has(o.partition));
    checkpoint.rows.set(table, {
      rows: entry.rows.filter((_, i) => keep[i]),
      origins: entry.origins.filter((_, i) => keep[i]),
      positions: entry.positions.filter((p) => !partitions.has(p.partition)),
    });
  }
  checkpoint.offsets = checkpoint.offsets.filter((o) => !partitions.has(o.partition));
  checkpoint.snapshots = checkpoint.snapshots.filter((s) => !partitions.has(s.ref.partition));
  checkpoint.deadLetters = checkpoint.deadLetters.filter((d) => !partitions.has(d.source.partition));
  checkpoint.late = checkpoint.late.filter((l) => !partitions.has(l.source.partition));
}

/** Each partition's offset with the side records of its own records and windows. */
function partitionCommits(checkpoint: Checkpoint, side: SideOutputs): PartitionCommit[] {
  const byPartition = new Map<number, { deadLetters: DeadLetter[]; late: LateEvent[] }>();
  const of = (p: number) => byPartition.get(p) ?? byPartition.set(p, { deadLetters: [], late: [] }).get(p)!;
  for (const d of checkpoint.deadLetters) of(d.source.partition).deadLetters.push(d);
  for (const l of checkpoint.late) of(l.source.partition).late.push(l);
  return checkpoint.offsets.map((o) => {
    const outputs = byPartition.get(o.partition);
    return { ...o, records: outputs ? side.records(outputs.deadLetters, outputs.late) : [] };
  });
}

/** The row was made while records before the committed offset were processed again: its dead letter was published then. */
function publishedBefore(origin: RowOrigin, checkpoint: Checkpoint): boolean {
  if (origin instanceof WindowRowOrigin) return origin.republished;
  const published = checkpoint.partitions.get(origin.partition)?.publishedBefore;
  return published !== undefined && BigInt(origin.offset) < published;
}

/** The error class of rows the sink refused; such dead letters cannot be redriven into the source topic as they are. */
export const REFUSED_ROW_CLASS = 'SINK_ROW_REFUSED';

/**
 * The dead letter of a refused row. A raw row's is its source record,
 * untouched. A window partial has no record of its own: its dead letter
 * carries the row as JSON, and headers naming the table, the window and the
 * group, beside the usual ones naming the source partition.
 */
function refusedRow(table: string, row: Record<string, unknown>, origin: RowOrigin, refusal: RowRefusal): DeadLetter {
  const message = `${table} refused the row: ${refusal.problems.join('; ')}`;
  if (!(origin instanceof WindowRowOrigin))
    return { source: origin, errorClass: REFUSED_ROW_CLASS, message, attempt: 1 };
  return {
    source: {
      topic: origin.topic,
      partition: origin.partition,
      offset: '-1',
      timestamp: String(origin.windowEnd),
      key: Buffer.from(JSON.stringify(origin.fields)),
      value: Buffer.from(
        JSON.stringify(row, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v)),
      ),
      headers: {},
    },
    errorClass: REFUSED_ROW_CLASS,
    message,
    attempt: 1,
    headers: {
      'sluice.dlq.kind': 'window-partial',
      'sluice.dlq.table': table,
      'sluice.dlq.window.start': new Date(origin.windowStart).toISOString(),
      'sluice.dlq.window.end': new Date(origin.windowEnd).toISOString(),
    },
  };
}
