import type { Redis } from 'ioredis';
import { ServiceError, SluiceError } from '../errors';

/**
 * What a partition's processing state was right after the record before
 * `offset`: the state to restore when consumption resumes at `offset`.
 */
export interface PartitionSnapshot {
  /** Unique per save: commits name the snapshot they make the restore point (and the one before). */
  id: string;
  offset: string;
  /** The partition's watermark tracker state. */
  watermark: unknown;
  /** The partition's open windows. */
  windows: unknown;
  savedAt: number;
}

/**
 * JSON text made ahead of time (a large window state, serialised piece by
 * piece): written verbatim into the saved snapshot instead of being parsed
 * and stringified again. Plain `JSON.stringify` still gives the same text.
 */
export class JsonText {
  constructor(readonly text: string) {}

  toJSON(): unknown {
    return JSON.parse(this.text);
  }
}

/** The text a snapshot is saved as: `JSON.stringify(snapshot)`, with `windows` copied in when it is JsonText. */
export function snapshotText(snapshot: PartitionSnapshot): string {
  if (!(snapshot.windows instanceof JsonText)) return JSON.stringify(snapshot);
  // `windows: undefined` is left out by JSON.stringify; the text goes in its place, before the closing brace.
  const rest = JSON.stringify({ ...snapshot, windows: undefined });
  return `${rest.slice(0, -1)},"windows":${snapshot.windows.text}}`;
}

export interface SnapshotRef {
  topic: string;
  partition: number;
}

/**
 * Window-state snapshots, each saved under an id of its own. A commit names,
 * in its offset metadata, the snapshot it makes the restore point and the
 * one before it; restore loads the first of those two that exists. (A
 * snapshot is not keyed by its offset alone: the state at one offset depends
 * on when it was taken, since windows also close on a timer, and a snapshot
 * whose commit failed must never replace the committed one.)
 *
 * Redis may lose its last writes (AOF `everysec` loses up to a second on a
 * crash; a failover loses what the replica had not received). So:
 * - the snapshot before the committed one is kept: when the committed one is
 *   lost, the older one is restored and the records since processed again;
 * - a Redis that restarted since a partition was restored may have lost dedup
 *   marks and snapshots written before its crash: `save` and `check` then
 *   throw StateLostError, and the runtime restores every partition it owns
 *   from what is left (processing again re-writes the lost marks). Writes
 *   survive in order, so a surviving snapshot implies that every dedup mark
 *   written before it survived too.
 */
export interface SnapshotStore {
  /** Saves each snapshot (one round trip). Throws StateLostError when Redis restarted since a saved partition was restored. */
  save(entries: { ref: SnapshotRef; snapshot: PartitionSnapshot }[]): Promise<void>;
  /**
   * Drops the partition's snapshots taken before `offset`. Called after a commit landed, with the
   * offset of the older of the two snapshots that commit names: only a member that could commit
   * prunes, and never what a later owner saved (its snapshots are at later offsets).
   */
  prune(ref: SnapshotRef, offset: string): Promise<void>;
  /** The first of the snapshots `ids` (in that order) that exists, remembering which Redis it was read from. */
  load(ref: SnapshotRef, ids: string[]): Promise<PartitionSnapshot | undefined>;
  /** Throws StateLostError when Redis restarted since any partition was restored. */
  check(): Promise<void>;
  /** The partition is no longer this process's: stop watching it. */
  forget(ref: SnapshotRef): void;
}

/**
 * Commit metadata naming the window-state snapshots of `epoch` to restore from: the one taken for
 * the committed offset, then the one before it (the fallback when Redis lost the first).
 */
export function stateMetadata(epoch: number, snapshots: string[]): string {
  return `sluice-state:${epoch}:${snapshots.join(':')}`;
}

/** The snapshots a commit's metadata names, if it names any of this epoch. */
export function snapshotsOf(metadata: string | null | undefined, epoch: number): string[] | undefined {
  const prefix = `sluice-state:${epoch}:`;
  if (!metadata?.startsWith(prefix)) return undefined;
  const ids = metadata.slice(prefix.length).split(':').filter(Boolean);
  return ids.length > 0 ? ids : undefined;
}

/** Redis restarted (and may have lost recent writes) since these partitions were restored: restore them again. */
export class StateLostError extends SluiceError {
  constructor(readonly refs: SnapshotRef[]) {
    super(
      'STATE_LOST',
      `Redis restarted since partitions ${refs.map((r) => `${r.topic}/${r.partition}`).join(', ')} were restored and may have lost their latest state: restoring them again`,
      {
        retriable: true,
      },
    );
    this.name = 'StateLostError';
  }
}

/** A new snapshot's id: its offset first (pruning reads it back), then what makes it unique. */
export function snapshotId(offset: string, savedAt: number, tag: string): string {
  return `${offset}.${savedAt.toString(36)}.${tag}`;
}

/**
 * When the restore point a commit's metadata names was saved, whatever the epoch: the live stream
 * had processed exactly the records before the committed offset then (a commit saves its snapshot
 * at the checkpoint it commits). Undefined when the metadata names no snapshot (no window state).
 */
export function stateSavedAt(metadata: string | null | undefined): number | undefined {
  const match = /^sluice-state:\d+:\d+\.([0-9a-z]+)\./.exec(metadata ?? '');
  if (!match) return undefined;
  const ms = parseInt(match[1]!, 36);
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/** The offset a snapshot id starts with. */
export function offsetOfSnapshot(id: string): string {
  return id.slice(0, id.indexOf('.'));
}

/** The `run_id` line of `INFO server`: a new one at every start of the Redis process (or after a failover). */
function runIdOf(info: unknown): string {
  const match = /run_id:([0-9a-f]+)/.exec(String(info));
  if (!match)
    throw new ServiceError(
      'redis',
      'Redis did not report its run_id (INFO server): cannot tell whether it lost writes',
    );
  return match[1]!;
}

export class RedisSnapshotStore implements SnapshotStore {
  /** Per partition: the Redis run it was restored from. */
  private readonly restoredUnder = new Map<string, { ref: SnapshotRef; runId: string }>();

  constructor(
    private readonly redis: Redis,
    /** e.g. `sluice:state:event-counts:0:` — stream and epoch included, so a replay starts clean. */
    private readonly keyPrefix: string,
  ) {}

  private key(ref: SnapshotRef): string {
    return `${this.keyPrefix}${ref.topic}:${ref.partition}`;
  }

  async save(entries: { ref: SnapshotRef; snapshot: PartitionSnapshot }[]): Promise<void> {
    if (entries.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const { ref, snapshot } of entries) pipeline.hset(this.key(ref), snapshot.id, snapshotText(snapshot));
    // Read after the writes: if Redis is still the run the partitions were restored from, nothing written before them was lost.
    pipeline.info('server');
    const results = await this.exec(pipeline, 'save window state to');
    this.throwIfRestarted(runIdOf(results[entries.length]));
  }

  async prune(ref: SnapshotRef, offset: string): Promise<void> {
    const [fields] = await this.exec(this.redis.pipeline().hkeys(this.key(ref)), 'prune window state in');
    const old = ((fields as string[]) ?? []).filter((f) => BigInt(offsetOfSnapshot(f)) < BigInt(offset));
    if (old.length > 0) await this.exec(this.redis.pipeline().hdel(this.key(ref), ...old), 'prune window state in');
  }

  async load(ref: SnapshotRef, ids: string[]): Promise<PartitionSnapshot | undefined> {
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hget(this.key(ref), id);
    pipeline.info('server');
    const results = await this.exec(pipeline, 'load window state from');
    this.restoredUnder.set(this.key(ref), { ref, runId: runIdOf(results[ids.length]) });
    const raw = results.slice(0, ids.length).find((r) => r !== null && r !== undefined);
    return raw === undefined ? undefined : (JSON.parse(raw as string) as PartitionSnapshot);
  }

  async check(): Promise<void> {
    if (this.restoredUnder.size === 0) return;
    const [info] = await this.exec(this.redis.pipeline().info('server'), 'check window state in');
    this.throwIfRestarted(runIdOf(info));
  }

  forget(ref: SnapshotRef): void {
    this.restoredUnder.delete(this.key(ref));
  }

  private throwIfRestarted(runId: string): void {
    const lost = [...this.restoredUnder.values()].filter((r) => r.runId !== runId).map((r) => r.ref);
    if (lost.length > 0) throw new StateLostError(lost);
  }

  private async exec(pipeline: ReturnType<Redis['pipeline']>, what: string): Promise<unknown[]> {
    let results: [Error | null, unknown][] | null;
    try {
      results = await pipeline.exec();
    } catch (err) {
      throw new ServiceError('redis', `cannot ${what} Redis: ${(err as Error).message}`, {
        retriable: true,
        cause: err,
      });
    }
    return (results ?? []).map(([err, value]) => {
      if (err) throw new ServiceError('redis', `cannot ${what} Redis: ${err.message}`, { retriable: true, cause: err });
      return value;
    });
  }
}

/** The in-memory twin, for the topology test driver and unit tests. It never loses anything. */
export class MemorySnapshotStore implements SnapshotStore {
  private readonly data = new Map<string, Map<string, string>>();

  async save(entries: { ref: SnapshotRef; snapshot: PartitionSnapshot }[]): Promise<void> {
    for (const { ref, snapshot } of entries) {
      const key = `${ref.topic}:${ref.partition}`;
      const fields = this.data.get(key) ?? new Map<string, string>();
      fields.set(snapshot.id, snapshotText(snapshot));
      this.data.set(key, fields);
    }
  }

  async prune(ref: SnapshotRef, offset: string): Promise<void> {
    const fields = this.data.get(`${ref.topic}:${ref.partition}`);
    for (const f of [...(fields?.keys() ?? [])]) if (BigInt(offsetOfSnapshot(f)) < BigInt(offset)) fields!.delete(f);
  }

  async load(ref: SnapshotRef, ids: string[]): Promise<PartitionSnapshot | undefined> {
    const fields = this.data.get(`${ref.topic}:${ref.partition}`);
    const raw = ids.map((id) => fields?.get(id)).find((r) => r !== undefined);
    return raw === undefined ? undefined : (JSON.parse(raw) as PartitionSnapshot);
  }

  async check(): Promise<void> {}

  forget(): void {}
}
