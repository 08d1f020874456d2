import type { SnapshotStore } from '../state';
import { WindowRowOrigin, type DeadLetter, type RowOrigin, type RowRefusal, type RowSink, type SidePublisher } from './ports';
import type { Checkpoint } from './task';

export interface CheckpointPorts {
  sink: RowSink;
  side: SidePublisher;
  snapshots?: Pick<SnapshotStore, 'save'>;
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
 * A row the sink refuses for good (a value its column cannot hold) joins the
 * checkpoint's dead letters, named by what it was made from: the source
 * record of a raw row, the window of a window partial. It never stops the
 * stream, and every other row is written.
 *
 * Throws (retriably) at the first step that fails; calling again with the same
 * progress object resumes at that step.
 */
export async function commitCheckpoint(checkpoint: Checkpoint, ports: CheckpointPorts, progress: CheckpointProgress): Promise<void> {
  for (const [table, { rows, origins, positions }] of checkpoint.rows) {
    if (progress.tables.has(table) || rows.length === 0) continue;
    const refused = await ports.sink.write(table, rows, positions);
    for (const refusal of refused) checkpoint.deadLetters.push(refusedRow(table, rows[refusal.index]!, origins[refusal.index]!, refusal));
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

/** The error class of rows the sink refused; such dead letters cannot be redriven into the source topic as they are. */
export const REFUSED_ROW_CLASS = 'SinkRowRefused';

/**
 * The dead letter of a refused row. A raw row's is its source record,
 * untouched. A window partial has no record of its own: its dead letter
 * carries the row as JSON, and headers naming the table, the window and the
 * group, beside the usual ones naming the source partition.
 */
function refusedRow(table: string, row: Record<string, unknown>, origin: RowOrigin, refusal: RowRefusal): DeadLetter {
  const message = `${table} refused the row: ${refusal.problems.join('; ')}`;
  if (!(origin instanceof WindowRowOrigin)) return { source: origin, errorClass: REFUSED_ROW_CLASS, message, attempt: 1 };
  return {
    source: {
      topic: origin.topic,
      partition: origin.partition,
      offset: '-1',
      timestamp: String(origin.windowEnd),
      key: Buffer.from(JSON.stringify(origin.fields)),
      value: Buffer.from(JSON.stringify(row, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v))),
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
