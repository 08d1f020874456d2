import type { Redis } from 'ioredis';
import { ServiceError, SluiceError } from '../errors';

/**
 * What a partition's processing state was right after the record before
 * `offset`: the state to restore when consumption resumes at `offset`.
 */
export interface PartitionSnapshot {
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
 * Snapshots are keyed by the offset they belong to, so the snapshot restored
 * is always one that matches a committed position: a crash after saving a
 * snapshot but before committing its offset finds the previous snapshot still
 * there, and it matches the (older) committed offset.
 *
 * Redis may lose its last writes (AOF `everysec` loses up to a second on a
 * crash; a failover loses what the replica had not received). So:
 * - `load` returns the newest snapshot at or before the committed offset: when
 *   the one for the committed offset is lost, an older one is restored and the
 *   records in between are processed again;
 * - `save` never prunes the snapshot that such a fallback needs (the newest
 *   one at or below the committed offset);
 * - a Redis that restarted since a partition was restored may have lost dedup
 *   marks and snapshots written before its crash: `save` and `check` then
 *   throw StateLostError, and the runtime restores every partition it owns
 *   from what is left (processing again re-writes the lost marks). Writes
 *   survive in order, so a surviving snapshot implies that every dedup mark
 *   written before it survived too.
 */
export interface SnapshotStore {
  /**
   * Saves each snapshot and drops the ones older than `committed` for that partition, keeping the
   * newest one at or below it (one round trip). Throws StateLostError when Redis restarted since a
   * saved partition was restored.
   */
  save(entries: { ref: SnapshotRef; snapshot: PartitionSnapshot; committed?: string }[]): Promise<void>;
  /** The newest snapshot at or before `offset`, remembering which Redis it was read from. */
  load(ref: SnapshotRef, offset: string): Promise<PartitionSnapshot | undefined>;
  /** Throws StateLostError when Redis restarted since any partition was restored. */
  check(): Promise<void>;
  /** The partition is no longer this process's: stop watching it. */
  forget(ref: SnapshotRef): void;
}

/** Redis restarted (and may have lost recent writes) since these partitions were restored: restore them again. */
export class StateLostError extends SluiceError {
  constructor(readonly refs: SnapshotRef[]) {
    super('STATE_LOST', `Redis restarted since partitions ${refs.map((r) => `${r.topic}/${r.partition}`).join(', ')} were restored and may have lost their latest state: restoring them again`, {
      retriable: true,
    });
    this.name = 'StateLostError';
  }
}

/** The offsets (hash fields) to prune: those below `committed`, except the newest of them when none equals it. */
export function prunable(fields: string[], committed: string): string[] {
  const limit = BigInt(committed);
  const below = fields.filter((f) => BigInt(f) < limit);
  if (fields.some((f) => BigInt(f) === limit) || below.length === 0) return below;
  const newest = below.reduce((a, b) => (BigInt(a) > BigInt(b) ? a : b));
  return below.filter((f) => f !== newest);
}

/** The newest field at or before `offset`, if any. */
function newestAtOrBefore(fields: string[], offset: string): string | undefined {
  const limit = BigInt(offset);
  let best: string | undefined;
  for (const f of fields) if (BigInt(f) <= limit && (best === undefined || BigInt(f) > BigInt(best))) best = f;
  return best;
}

/** The `run_id` line of `INFO server`: a new one at every start of the Redis process (or after a failover). */
function runIdOf(info: unknown): string {
  const match = /run_id:([0-9a-f]+)/.exec(String(info));
  if (!match) throw new ServiceError('redis', 'Redis did not report its run_id (INFO server): cannot tell whether it lost writes');
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

  async save(entries: { ref: SnapshotRef; snapshot: PartitionSnapshot; committed?: string }[]): Promise<void> {
    if (entries.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const { ref, snapshot } of entries) pipeline.hset(this.key(ref), snapshot.offset, snapshotText(snapshot));
    // Which older snapshots can go is only known after reading the fields; that read is cheap and in the same trip.
    for (const { ref } of entries) pipeline.hkeys(this.key(ref));
    // Read after the writes: if Redis is still the run the partitions were restored from, nothing written before them was lost.
    pipeline.info('server');
    const results = await this.exec(pipeline, 'save window state to');
    this.throwIfRestarted(runIdOf(results[2 * entries.length]));
    const stale = this.redis.pipeline();
    let any = false;
    entries.forEach(({ ref, committed }, i) => {
      if (committed === undefined) return;
      const old = prunable((results[entries.length + i] as string[]) ?? [], committed);
      if (old.length > 0) {
        stale.hdel(this.key(ref), ...old);
        any = true;
      }
    });
    if (any) await this.exec(stale, 'save window state to');
  }

  async load(ref: SnapshotRef, offset: string): Promise<PartitionSnapshot | undefined> {
    const [fields, info] = await this.exec(this.redis.pipeline().hkeys(this.key(ref)).info('server'), 'load window state from');
    const field = newestAtOrBefore((fields as string[]) ?? [], offset);
    const raw = field === undefined ? null : (await this.exec(this.redis.pipeline().hget(this.key(ref), field), 'load window state from'))[0];
    this.restoredUnder.set(this.key(ref), { ref, runId: runIdOf(info) });
    return raw === null || raw === undefined ? undefined : (JSON.parse(raw as string) as PartitionSnapshot);
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
      throw new ServiceError('redis', `cannot ${what} Redis: ${(err as Error).message}`, { retriable: true, cause: err });
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

  async save(entries: { ref: SnapshotRef; snapshot: PartitionSnapshot; committed?: string }[]): Promise<void> {
    for (const { ref, snapshot, committed } of entries) {
      const key = `${ref.topic}:${ref.partition}`;
      const fields = this.data.get(key) ?? new Map<string, string>();
      fields.set(snapshot.offset, snapshotText(snapshot));
      if (committed !== undefined) for (const f of prunable([...fields.keys()], committed)) fields.delete(f);
      this.data.set(key, fields);
    }
  }

  async load(ref: SnapshotRef, offset: string): Promise<PartitionSnapshot | undefined> {
    const fields = this.data.get(`${ref.topic}:${ref.partition}`);
    const field = fields && newestAtOrBefore([...fields.keys()], offset);
    return field === undefined ? undefined : (JSON.parse(fields!.get(field)!) as PartitionSnapshot);
  }

  async check(): Promise<void> {}

  forget(): void {}
}
