import type { SnapshotStore } from '../state';
import type { RowSink, SidePublisher } from './ports';
import type { Checkpoint } from './task';

export interface CheckpointPorts {
  sink: RowSink;
  side: SidePublisher;
  snapshots?: SnapshotStore;
  /** Commits consumer-group offsets; the last step. */
  commit(offsets: Checkpoint['offsets']): Promise<void>;
}

/** Steps of a checkpoint already done, so a retry after a failure does not repeat them. */
export interface CheckpointProgress {
  tables: Set<string>;
  deadLetters: boolean;
  late: boolean;
  snapshots: boolean;
  committed: boolean;
}

export function newProgress(): CheckpointProgress {
  return { tables: new Set(), deadLetters: false, late: false, snapshots: false, committed: false };
}

/** Side-topic records go in requests of this many, so one produce request stays well under Kafka's size limit. */
const SIDE_CHUNK = 500;

function chunks<T>(items: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += SIDE_CHUNK) out.push(items.slice(i, i + SIDE_CHUNK));
  return out;
}

/**
 * The commit sequence of a stream, in one place.
 *
 * Invariant: an offset is committed only after every record before it is in
 * ClickHouse, in `<topic>.dlq` or in `<topic>.late`, and after the partition's
 * window state as of that offset is saved. So a crash at any step leaves the
 * previous committed offset and its snapshot in force, and redoing the work
 * from there yields the same rows (ClickHouse replaces them by their
 * deterministic identity). Dedup marks cannot hide an event whose effect was
 * lost: a mark names the record that claimed the id, and a redelivery of that
 * same record is let through again.
 *
 * A checkpoint taken without committing (see StreamTask.takeCheckpoint)
 * carries no snapshots and no offsets: only its outputs are written, and the
 * next committing checkpoint covers their offsets.
 *
 * Throws (retriably) at the first step that fails; calling again with the same
 * progress object resumes at that step.
 */
export async function commitCheckpoint(checkpoint: Checkpoint, ports: CheckpointPorts, progress: CheckpointProgress): Promise<void> {
  for (const [table, { rows, positions }] of checkpoint.rows) {
    if (progress.tables.has(table) || rows.length === 0) continue;
    await ports.sink.write(table, rows, positions);
    progress.tables.add(table);
  }
  if (!progress.deadLetters) for (const part of chunks(checkpoint.deadLetters)) await ports.side.deadLetters(part);
  progress.deadLetters = true;
  if (!progress.late) for (const part of chunks(checkpoint.late)) await ports.side.late(part);
  progress.late = true;
  if (!progress.snapshots && ports.snapshots && checkpoint.snapshots.length > 0) await ports.snapshots.save(checkpoint.snapshots);
  progress.snapshots = true;
  if (!progress.committed && checkpoint.offsets.length > 0) await ports.commit(checkpoint.offsets);
  progress.committed = true;
}
