import type { Redis } from 'ioredis';
import { ServiceError } from '../errors';

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
 * is always the one that matches the committed offset: a crash after saving a
 * snapshot but before committing its offset finds the previous snapshot still
 * there, and it matches the (older) committed offset.
 */
export interface SnapshotStore {
  /** Saves each snapshot and drops the ones older than `committed` for that partition (one round trip). */
  save(entries: { ref: SnapshotRef; snapshot: PartitionSnapshot; committed?: string }[]): Promise<void>;
  load(ref: SnapshotRef, offset: string): Promise<PartitionSnapshot | undefined>;
}

export class RedisSnapshotStore implements SnapshotStore {
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
    const results = await this.exec(pipeline);
    const stale = this.redis.pipeline();
    let any = false;
    entries.forEach(({ ref, committed }, i) => {
      if (committed === undefined) return;
      const fields = (results[entries.length + i] as string[]) ?? [];
      const old = fields.filter((f) => BigInt(f) < BigInt(committed));
      if (old.length > 0) {
        stale.hdel(this.key(ref), ...old);
        any = true;
      }
    });
    if (any) await this.exec(stale);
  }

  async load(ref: SnapshotRef, offset: string): Promise<PartitionSnapshot | undefined> {
    try {
      const raw = await this.redis.hget(this.key(ref), offset);
      return raw === null ? undefined : (JSON.parse(raw) as PartitionSnapshot);
    } catch (err) {
      throw new ServiceError('redis', `cannot load window state from Redis: ${(err as Error).message}`, { retriable: true, cause: err });
    }
  }

  private async exec(pipeline: ReturnType<Redis['pipeline']>): Promise<unknown[]> {
    let results: [Error | null, unknown][] | null;
    try {
      results = await pipeline.exec();
    } catch (err) {
      throw new ServiceError('redis', `cannot save window state to Redis: ${(err as Error).message}`, { retriable: true, cause: err });
    }
    return (results ?? []).map(([err, value]) => {
      if (err) throw new ServiceError('redis', `cannot save window state to Redis: ${err.message}`, { retriable: true, cause: err });
      return value;
    });
  }
}

/** The in-memory twin, for the topology test driver and unit tests. */
export class MemorySnapshotStore implements SnapshotStore {
  private readonly data = new Map<string, Map<string, string>>();

  async save(entries: { ref: SnapshotRef; snapshot: PartitionSnapshot; committed?: string }[]): Promise<void> {
    for (const { ref, snapshot, committed } of entries) {
      const key = `${ref.topic}:${ref.partition}`;
      const fields = this.data.get(key) ?? new Map<string, string>();
      fields.set(snapshot.offset, snapshotText(snapshot));
      if (committed !== undefined) for (const f of [...fields.keys()]) if (BigInt(f) < BigInt(committed)) fields.delete(f);
      this.data.set(key, fields);
    }
  }

  async load(ref: SnapshotRef, offset: string): Promise<PartitionSnapshot | undefined> {
    const raw = this.data.get(`${ref.topic}:${ref.partition}`)?.get(offset);
    return raw === undefined ? undefined : (JSON.parse(raw) as PartitionSnapshot);
  }
}
