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
  /**
   * The partition's open windows: whole (format 1, or none), or one link of an incremental chain
   * (`WindowParts` when saved; `{ links }`, base first, when loaded).
   */
  windows: unknown;
  savedAt: number;
  /** An incremental link's chain: the snapshots it applies on top of, base first (absent or empty: it stands alone). */
  chain?: string[];
  /** An incremental link's number of parts, saved as fields `<id>/<n>` beside its record. */
  parts?: number;
}

/**
 * A link of incremental window state being encoded: its head (saved in the record) and its parts,
 * which resolve once encoded off the hot path. Saving awaits them.
 */
export class WindowParts {
  constructor(
    readonly head: unknown,
    readonly parts: Promise<string[]>,
  ) {}
}

/**
 * The fields a snapshot is saved as, its parts first and its record last: within one run of Redis a
 * record that survives implies its parts did. A restart between two of a save's pipelines can leave a
 * record without some parts; a load checks every part (and refuses it), and the save reports the restart.
 */
async function snapshotFields(snapshot: PartitionSnapshot): Promise<[string, string][]> {
  if (!(snapshot.windows instanceof WindowParts)) return [[snapshot.id, snapshotText(snapshot)]];
  const parts = await snapshot.windows.parts;
  const fields = parts.map((text, i): [string, string] => [partField(snapshot.id, i), text]);
  const record = { ...snapshot, windows: snapshot.windows.head, parts: parts.length };
  fields.push([snapshot.id, JSON.stringify(record)]);
  return fields;
}

const partField = (id: string, n: number) => `${id}/${n}`;
/** The snapshot a field belongs to (a part's field is `<id>/<n>`). */
const snapshotOfField = (field: string) => {
  const slash = field.indexOf('/');
  return slash < 0 ? field : field.slice(0, slash);
};

/**
 * The first of the snapshots `ids` that exists whole: for an incremental link, its record, every
 * link of its chain and every part of each. A missing piece makes the next id the candidate (the
 * same fallback as a lost snapshot). `read` fetches fields of the partition's hash in one round trip.
 */
async function loadFirst(
  ids: string[],
  read: (fields: string[]) => Promise<(string | null)[]>,
  remember: (id: string, chain: string[]) => void,
): Promise<PartitionSnapshot | undefined> {
  const heads = await read(ids);
  for (let c = 0; c < ids.length; c++) {
    if (heads[c] === null || heads[c] === undefined) continue;
    const head = JSON.parse(heads[c]!) as PartitionSnapshot;
    if (head.parts === undefined) {
      remember(head.id, []);
      return head;
    }
    const chain = head.chain ?? [];
    const records = chain.length > 0 ? await read(chain) : [];
    if (records.some((r) => r === null || r === undefined)) continue;
    const links = [...records.map((r) => JSON.parse(r!) as PartitionSnapshot), head];
    const fields = links.flatMap((link) => Array.from({ length: link.parts ?? 0 }, (_, n) => partField(link.id, n)));
    const parts = fields.length > 0 ? await read(fields) : [];
    if (parts.some((p) => p === null || p === undefined)) continue;
    let at = 0;
    const loaded = links.map((link) => {
      const n = link.parts ?? 0;
      at += n;
      return { windows: link.windows, parts: parts.slice(at - n, at) as string[] };
    });
    remember(head.id, chain);
    return { ...head, windows: { links: loaded } };
  }
  return undefined;
}

/**
 * Which of a partition's fields pruning may drop: those of snapshots before `offset`, except the
 * links of every chain a snapshot at or after it extends. Undefined (drop nothing) when a snapshot
 * at or after `offset` is one whose chain this process does not know (another member's).
 */
function prunable(fields: string[], offset: string, chains: Map<string, string[]> | undefined): string[] | undefined {
  const limit = BigInt(offset);
  const keep = new Set<string>();
  for (const field of fields) {
    const id = snapshotOfField(field);
    if (BigInt(offsetOfSnapshot(id)) < limit || keep.has(id)) continue;
    const chain = chains?.get(id);
    if (!chain) return undefined;
    keep.add(id);
    for (const link of chain) keep.add(link);
  }
  for (const id of [...(chains?.keys() ?? [])])
    if (BigInt(offsetOfSnapshot(id)) < limit && !keep.has(id)) chains!.delete(id);
  return fields.filter((f) => {
    const id = snapshotOfField(f);
    return BigInt(offsetOfSnapshot(id)) < limit && !keep.has(id);
  });
}

/**
 * JSON text made ahead of time (a large window state, serialised piece by
 * piece): written verbatim into the saved snapshot instead of being parsed
 * and stringified again. Plain `JSON.stringify` still gives the same text.
 */
/** How saving is cut into pipelines (specs lower it so that a save spans many). */
export const SAVING = {
  /** Text sent to Redis in one pipeline, in characters (UTF-16 units), at most (unless one field is larger). */
  pipelineBytes: 4 * 1024 * 1024,
};

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
  /**
   * The first of the snapshots `ids` (in that order) that exists, remembering which Redis it was read from
   * (the partition is watched from then on), unless `wanted()`, asked as the load ends, says the caller no
   * longer restores the partition: a restore given up or superseded meanwhile must not watch the partition
   * (one it no longer owns would be reported lost for good) nor re-watch it under a newer Redis run (that
   * would hide a restart from the restore that took over).
   */
  load(ref: SnapshotRef, ids: string[], wanted?: () => boolean): Promise<PartitionSnapshot | undefined>;
  /** Throws StateLostError when Redis restarted since any partition was restored. */
  check(): Promise<void>;
  /** The partition is no longer this process's: stop watching it. */
  forget(ref: SnapshotRef): void;
}

/**
 * A partition's windows closed at the stream watermark while it was idle (the other partitions moved
 * on without it): from `offset` on, its records were judged against `watermark`. The release is
 * timer-driven, so records read again after an older snapshot cannot bring it back; the commit
 * records it, and the re-read applies it at the same offset.
 */
export interface IdleRelease {
  offset: string;
  watermark: number;
}

/**
 * Records written with schema `schemaId`, from offset `from` through `through`, were dead letters when
 * the live stream read them: the registry did not know the id yet (as far as that member's codec knew).
 * A re-read after an older snapshot could decode them if the schema was registered since, and count them
 * (moving the partition's watermark, so that a record after them would be judged late where the live
 * stream counted it). The commit records the verdict, and the re-read dead-letters those records again.
 * One span per id and taking-over of the partition: within one codec an id goes from unknown to known
 * once, so every record of the id inside the span was unknown; another member's codec may have known it
 * before (a record it counted lies outside the span).
 */
export interface UnknownSchema {
  schemaId: number;
  from: string;
  through: string;
}

/**
 * Commit metadata naming the window-state snapshots of `epoch` to restore from: the one taken for
 * the committed offset, then an older committed one (the fallback when Redis lost the first; see
 * REDIS_LOSS_WINDOW_MS). A commit
 * taken while the partition re-read records after an older snapshot keeps Kafka's offset and names
 * the snapshot taken where the re-read got to, below it: restore resumes there either way.
 * After `/`, the idle releases since the fallback's offset (see IdleRelease), as `offset@watermark`;
 * after a second `/`, the schemas unknown to the live stream since then (see UnknownSchema), as
 * `schemaId@from-through`; after a third, `closed-at-end` when the commit carried the dead letters of a
 * bounded run's close of every open window.
 */
export function stateMetadata(
  epoch: number,
  snapshots: string[],
  releases: IdleRelease[] = [],
  unknownSchemas: UnknownSchema[] = [],
  closedAtEnd = false,
): string {
  const sections = [
    `sluice-state:${epoch}:${snapshots.join(':')}`,
    releases.map((r) => `${r.offset}@${r.watermark}`).join(','),
    unknownSchemas.map((u) => `${u.schemaId}@${u.from}-${u.through}`).join(','),
    closedAtEnd ? CLOSED_AT_END : '',
  ];
  while (sections.length > 1 && sections.at(-1) === '') sections.pop();
  return sections.join('/');
}

/**
 * The fourth section of a commit's metadata when the commit carried the dead letters of a bounded run's
 * close of every open window at its offset (see RestoredState.closedAtEnd). Versions that read three
 * sections ignore it.
 */
const CLOSED_AT_END = 'closed-at-end';

/** Whether a commit's metadata of this epoch says it carried the dead letters of a close of every open window. */
export function closedAtEndOf(metadata: string | null | undefined, epoch: number): boolean {
  return sectionOf(metadata, epoch, 3)[0] === CLOSED_AT_END;
}

/** The snapshots a commit's metadata names, if it names any of this epoch. */
export function snapshotsOf(metadata: string | null | undefined, epoch: number): string[] | undefined {
  const prefix = `sluice-state:${epoch}:`;
  if (!metadata?.startsWith(prefix)) return undefined;
  const ids = metadata.slice(prefix.length).split('/')[0]!.split(':').filter(Boolean);
  return ids.length > 0 ? ids : undefined;
}

/** The idle releases a commit's metadata of this epoch records (none when it names none). */
export function releasesOf(metadata: string | null | undefined, epoch: number): IdleRelease[] {
  return sectionOf(metadata, epoch, 1).map((entry) => {
    // The watermark as JavaScript prints a number: exponent forms included (`2e+21`, an event stamped far ahead).
    const match = /^(\d+)@([^@]+)$/.exec(entry);
    const watermark = Number(match?.[2]);
    if (!match || !Number.isFinite(watermark)) throw malformed('idle release', entry, metadata!);
    return { offset: match[1]!, watermark };
  });
}

/** The schemas unknown to the live stream that a commit's metadata of this epoch records (none when it names none). */
export function unknownSchemasOf(metadata: string | null | undefined, epoch: number): UnknownSchema[] {
  return sectionOf(metadata, epoch, 2).map((entry) => {
    const match = /^(-?\d+)@(\d+)-(\d+)$/.exec(entry);
    if (!match) throw malformed('unknown schema', entry, metadata!);
    return { schemaId: Number(match[1]), from: match[2]!, through: match[3]! };
  });
}

/** The entries of the metadata's `index`th `/`-separated section, when the metadata is this epoch's. */
function sectionOf(metadata: string | null | undefined, epoch: number, index: number): string[] {
  if (!metadata?.startsWith(`sluice-state:${epoch}:`)) return [];
  const listed = metadata.split('/')[index];
  return listed ? listed.split(',') : [];
}

// Not retriable: restoring again reads the same metadata. The member stops and says why.
function malformed(what: string, entry: string, metadata: string): SluiceError {
  return new SluiceError(
    'WINDOW_STATE_INVALID',
    `the committed offset's metadata holds a malformed ${what} "${entry}" (${metadata}): reset the group's offsets or restore the state it names`,
  );
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

/**
 * How much of its latest writes Redis may lose in a crash: with AOF `everysec` a second usually, and
 * up to two when it postpones an fsync that is still running. A commit's fallback snapshot is one
 * whose commit landed at least this long before: were both named snapshots younger, one crash could
 * lose both (with commits less than this apart), and the partition could not restore. A failover to a
 * replica may lose more: not covered. Timed on the processor's monotonic clock, which a wall clock
 * stepped forward does not move.
 */
export const REDIS_LOSS_WINDOW_MS = 2000;

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
  /** Per partition: the chain of each snapshot this process saved or loaded, which pruning keeps. */
  private readonly chains = new Map<string, Map<string, string[]>>();

  constructor(
    private readonly redis: Redis,
    /** e.g. `sluice:state:event-counts:0:` — stream and epoch included, so a replay starts clean. */
    private readonly keyPrefix: string,
  ) {}

  private key(ref: SnapshotRef): string {
    return `${this.keyPrefix}${ref.topic}:${ref.partition}`;
  }

  private chainsOf(ref: SnapshotRef): Map<string, string[]> {
    const key = this.key(ref);
    return this.chains.get(key) ?? this.chains.set(key, new Map()).get(key)!;
  }

  async save(entries: { ref: SnapshotRef; snapshot: PartitionSnapshot }[]): Promise<void> {
    if (entries.length === 0) return;
    const fields = await Promise.all(entries.map(({ snapshot }) => snapshotFields(snapshot)));
    // In pipelines of bounded size, one after the other: the client builds each pipeline's whole text
    // before sending it, and a base of every open window in one would need several copies of it at once.
    // A record still follows its parts on the one connection, and a restart between two pipelines shows
    // in the run read after the last.
    let pipeline = this.redis.pipeline();
    let bytes = 0;
    for (let i = 0; i < entries.length; i++) {
      for (const [field, value] of fields[i]!) {
        if (bytes > 0 && bytes + value.length > SAVING.pipelineBytes) {
          await this.exec(pipeline, 'save window state to');
          pipeline = this.redis.pipeline();
          bytes = 0;
        }
        pipeline.hset(this.key(entries[i]!.ref), field, value);
        bytes += value.length;
      }
    }
    // Read after the writes: if Redis is still the run the partitions were restored from, nothing written before them was lost.
    pipeline.info('server');
    const results = await this.exec(pipeline, 'save window state to');
    this.throwIfRestarted(runIdOf(results.at(-1)));
    for (const { ref, snapshot } of entries) this.chainsOf(ref).set(snapshot.id, snapshot.chain ?? []);
  }

  async prune(ref: SnapshotRef, offset: string): Promise<void> {
    const [fields] = await this.exec(this.redis.pipeline().hkeys(this.key(ref)), 'prune window state in');
    const old = prunable((fields as string[]) ?? [], offset, this.chains.get(this.key(ref)));
    if (old && old.length > 0)
      await this.exec(this.redis.pipeline().hdel(this.key(ref), ...old), 'prune window state in');
  }

  async load(ref: SnapshotRef, ids: string[], wanted?: () => boolean): Promise<PartitionSnapshot | undefined> {
    const key = this.key(ref);
    let runId: string | undefined;
    // Each round trip reads the run too: the pieces of a chain must all come from one run of Redis.
    const read = async (fields: string[]) => {
      const pipeline = this.redis.pipeline();
      for (const f of fields) pipeline.hget(key, f);
      pipeline.info('server');
      const results = await this.exec(pipeline, 'load window state from');
      const run = runIdOf(results[fields.length]);
      if (runId !== undefined && run !== runId)
        throw new ServiceError('redis', 'Redis restarted while window state was loaded from it', { retriable: true });
      runId = run;
      return results.slice(0, fields.length) as (string | null)[];
    };
    const snapshot = await loadFirst(ids, read, (id, chain) => this.chainsOf(ref).set(id, chain));
    if (wanted?.() ?? true) this.restoredUnder.set(key, { ref, runId: runId! });
    return snapshot;
  }

  async check(): Promise<void> {
    if (this.restoredUnder.size === 0) return;
    const [info] = await this.exec(this.redis.pipeline().info('server'), 'check window state in');
    this.throwIfRestarted(runIdOf(info));
  }

  forget(ref: SnapshotRef): void {
    this.restoredUnder.delete(this.key(ref));
    this.chains.delete(this.key(ref));
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
  private readonly chains = new Map<string, Map<string, string[]>>();

  private chainsOf(key: string): Map<string, string[]> {
    return this.chains.get(key) ?? this.chains.set(key, new Map()).get(key)!;
  }

  async save(entries: { ref: SnapshotRef; snapshot: PartitionSnapshot }[]): Promise<void> {
    const fields = await Promise.all(entries.map(({ snapshot }) => snapshotFields(snapshot)));
    entries.forEach(({ ref, snapshot }, i) => {
      const key = `${ref.topic}:${ref.partition}`;
      const hash = this.data.get(key) ?? new Map<string, string>();
      for (const [field, value] of fields[i]!) hash.set(field, value);
      this.data.set(key, hash);
      this.chainsOf(key).set(snapshot.id, snapshot.chain ?? []);
    });
  }

  async prune(ref: SnapshotRef, offset: string): Promise<void> {
    const key = `${ref.topic}:${ref.partition}`;
    const fields = this.data.get(key);
    for (const f of prunable([...(fields?.keys() ?? [])], offset, this.chains.get(key)) ?? []) fields!.delete(f);
  }

  async load(ref: SnapshotRef, ids: string[]): Promise<PartitionSnapshot | undefined> {
    const key = `${ref.topic}:${ref.partition}`;
    const read = async (names: string[]) => names.map((n) => this.data.get(key)?.get(n) ?? null);
    return loadFirst(ids, read, (id, chain) => this.chainsOf(key).set(id, chain));
  }

  async check(): Promise<void> {}

  forget(ref: SnapshotRef): void {
    this.chains.delete(`${ref.topic}:${ref.partition}`);
  }

  /** Every field of the partition's hash, for specs. */
  fields(ref: SnapshotRef): string[] {
    return [...(this.data.get(`${ref.topic}:${ref.partition}`)?.keys() ?? [])];
  }

  /** Drops one field, as a Redis that lost the write would not have it (specs). */
  lose(ref: SnapshotRef, field: string): void {
    this.data.get(`${ref.topic}:${ref.partition}`)?.delete(field);
  }
}
