import { randomBytes } from 'node:crypto';
import { SluiceError, describeError, type ErrorCode } from '../errors';
import {
  REDIS_LOSS_WINDOW_MS,
  offsetOfSnapshot,
  snapshotId,
  type IdleRelease,
  type PartitionSnapshot,
  type UnknownSchema,
} from '../state';
import type { ConsumedRecord } from '../kafka';
import type { Row, StreamDefinition } from './definition';
import type { DeadLetter, LateEvent } from '../dlq';
import { WindowRowOrigin, type Decoder, type Deduplicator, type RowOrigin } from './ports';
import type { StreamWindows } from './windows';
import type { AggregationSpec, GroupFields } from '../window';

/** Counters a stream keeps; exported as metrics and printed by bounded runs. */
export interface StreamCounters {
  recordsIn: number;
  decoded: number;
  deduplicated: number;
  deadLettered: number;
  late: number;
  rawRows: number;
  windowRows: number;
  dedupFailOpen: number;
  /**
   * Valid events whose event time lies outside the run's event-time range (replays of a range only):
   * not part of the run, so not windowed or counted anywhere else (they claim their dedup ids, as
   * the live pass did, but their verdict is not counted).
   */
  outsideRange: number;
}

/** Counters at zero, with `counts` over them: a task starts from these. */
export const streamCounters = (counts: Partial<StreamCounters> = {}): StreamCounters => ({
  recordsIn: 0,
  decoded: 0,
  deduplicated: 0,
  deadLettered: 0,
  late: 0,
  rawRows: 0,
  windowRows: 0,
  dedupFailOpen: 0,
  outsideRange: 0,
  ...counts,
});

/** An event-time range [from, to) in epoch ms; null: open on that side. */
export interface TaskEventTimeRange {
  from: number | null;
  to: number | null;
}

export interface TaskOptions {
  /**
   * Only events with an event time inside this range are part of the run (a replay of a range).
   * Events outside it are skipped before windows: they neither move the watermark nor count as
   * late, so a range backfilled into partitions that already carry newer events is windowed from
   * its own events, as if the others were not there. They do claim their dedup ids (marks only,
   * counted nowhere), so the run decides duplicates as the live pass did for everything it reads:
   * a copy inside the range of an event first seen outside it stays a duplicate.
   */
  eventTimeRange?: TaskEventTimeRange;
}

/** Everything one partition produced since the last checkpoint, and where it got to. */
interface PartitionState {
  topic: string;
  partition: number;
  /**
   * The first offset not yet processed: what the next checkpoint commits, unless it is below the
   * committed offset (re-reading after an older snapshot): then the commit keeps the committed offset.
   */
  nextOffset: string;
  /** The offset Kafka holds as committed (consumption started there, or a commit since was acknowledged). */
  committedOffset: string;
  /**
   * The restore point of the last commit, then older committed ones down to the first whose commit
   * landed REDIS_LOSS_WINDOW_MS before it (the fallback a commit names); `at` is when the commit
   * landed (or the partition was restored), on the `elapsed` clock. Those a commit names are never pruned.
   */
  committedSnapshots: { id: string; at: number }[];
  /** Kafka's committed metadata names a snapshot (see RestoredState.unnamed). */
  stateNamed: boolean;
  /**
   * The last snapshot of the partition's window state this incarnation took or restored, and its
   * chain: the next incremental checkpoint extends it. None: the next one is a base.
   */
  head?: { id: string; chain: string[] };
  /** Outputs before this offset were handed to a checkpoint: where the next checkpoint's rows start. */
  flushedOffset: string;
  /**
   * Records before this offset already had their dead letters and late events published (their
   * offsets were committed). A restore from an older snapshot reprocesses them for their window
   * state and rows, but must not publish their side records a second time.
   */
  publishedBefore: bigint;
  /**
   * The offset at which a bounded run closed every open window and published the dead letters of the
   * rows ClickHouse refused (see RestoredState.closedAtEnd): closing them again there publishes nothing.
   */
  endClosedAt?: string;
  /** A bounded run closed every open window here: its next commit (the one carrying their dead letters) says so. */
  closedAtEnd: boolean;
  /**
   * The partition's idle releases (see IdleRelease) at or after the oldest kept committed snapshot's
   * offset: a commit records those after its fallback, which a restore from it must apply again.
   * At most MAX_KEPT_RELEASES.
   */
  releases: IdleRelease[];
  /** How many of `releases` this incarnation has applied: the others wait for the re-read to reach their offset. */
  releasesApplied: number;
  /**
   * The schemas the registry did not know when the live stream read records of them (see UnknownSchema),
   * kept like `releases`, at most MAX_KEPT_UNKNOWN_SCHEMAS.
   */
  unknownSchemas: UnknownSchema[];
  /** The entries of `unknownSchemas` this incarnation made: the ones its verdicts extend. */
  unknownSpansOpen: Set<UnknownSchema>;
  /**
   * How far each span (by `spanKey`) is in Kafka's committed metadata: recorded by a commit, by a
   * commit of the same offset before rows that follow a new verdict are written (see
   * Checkpoint.verdicts), or restored from the metadata.
   */
  unknownRecorded: Map<string, bigint>;
  /**
   * When this taking-over began, on the monotonic clock (`elapsed`, the codec's clock too): a registry's 404
   * asked before it may predate another member's decode (see notDecoded). A wall clock stepped back would
   * make an old 404 look newer.
   */
  takenAt: number;
  /** Which taking-over of the partition this is: a checkpoint taken under an earlier one must not save or commit. */
  incarnation: number;
  rows: Map<string, TableRows>;
  deadLetters: DeadLetter[];
  late: LateEvent[];
  /** State changed since the last committing checkpoint (records, or windows closed by the watermark). */
  dirty: boolean;
}

/** Why a record is a dead letter (its error class and what was wrong). */
type DeadLetterReason = { errorClass: ErrorCode; message: string };

/** Why a record did not decode, with the schema id when the registry did not know it (see UnknownSchema). */
class NotDecoded {
  constructor(
    readonly error: DeadLetterReason,
    readonly unknownSchema?: number,
  ) {}
}

/** A record's value (no wrapper: one per record would be garbage), or why it is a dead letter. */
type Decoding = Record<string, unknown> | NotDecoded;

/** Rows bound for one table, each with what it was made from (the dead letter names it if the sink refuses the row). */
interface TableRows {
  rows: Row[];
  origins: RowOrigin[];
}

/** A checkpoint's entry for one partition: which taking-over of the partition it belongs to. */
export interface PartitionIncarnation {
  topic: string;
  partition: number;
  incarnation: number;
}

/**
 * The outputs of a stretch of processing, and the offsets they cover. Committed by `commitCheckpoint`.
 * A checkpoint that does not commit (see `takeCheckpoint`) carries rows only: no side records, no
 * snapshots, no offsets.
 */
export interface Checkpoint {
  rows: Map<
    string,
    TableRows & { positions: { topic: string; partition: number; fromOffset: string; toOffset: string }[] }
  >;
  deadLetters: DeadLetter[];
  late: LateEvent[];
  snapshots: { ref: { topic: string; partition: number }; snapshot: PartitionSnapshot; incarnation: number }[];
  /**
   * Each partition's new offset, the snapshot that commit makes the restore point (absent without
   * windows) and the partition's kept idle releases and unknown schemas (see PartitionState).
   */
  offsets: (PartitionIncarnation & {
    offset: string;
    snapshot?: string;
    releases: IdleRelease[];
    unknownSchemas: UnknownSchema[];
    /** The commit carries the dead letters of a close of every open window here (see RestoredState.closedAtEnd). */
    closedAtEnd: boolean;
  })[];
  /** Per partition whose rows it carries: the incarnation they were made in, and the first offset whose side records are unpublished. */
  partitions: Map<number, { incarnation: number; publishedBefore: bigint }>;
  /**
   * The partitions among them with a verdict Kafka's committed metadata does not hold yet (a span of an
   * unknown schema begun or extended since their last commit), with what their last commit recorded.
   * Their rows may follow from the verdict: before any is written, the committed offset is committed
   * again with the verdict (see UnknownSchema), so that a member redoing the work after a crash judges
   * those records as this one did. Without it, a redo that decodes them (the schema registered since)
   * could judge a later record late that a row already in ClickHouse counted.
   */
  verdicts: (PartitionIncarnation & {
    /** The partition's committed offset, and the snapshot its commit made the restore point. */
    offset: string;
    snapshot?: string;
    releases: IdleRelease[];
    unknownSchemas: UnknownSchema[];
    closedAtEnd: boolean;
  })[];
}

export interface TaskPorts {
  decoder: Decoder;
  dedup?: Deduplicator;
  now(): number;
  /**
   * A clock that only moves forward at the pace of time (the process's monotonic clock), for how long
   * ago a commit landed (see REDIS_LOSS_WINDOW_MS): a wall clock stepped forward would make a snapshot
   * written moments ago look settled. `now` when not given (simulated time never jumps).
   */
  elapsed?(): number;
}

const nextOf = (offset: string) => (BigInt(offset) + 1n).toString();

/**
 * Idle releases a partition keeps for its commits' metadata (about 40 bytes each; Kafka bounds offset
 * metadata at 4 KB by default). With this many since the fallback, an idle partition's windows wait
 * for its own watermark instead, until commits settle and older releases go.
 */
export const MAX_KEPT_RELEASES = 32;

/**
 * Spans of a schema id unknown to the live stream a partition keeps for its commits' metadata (about 30
 * bytes each, 51 at most: with 32 releases and two snapshot ids the metadata stays under Kafka's 4 KB
 * default). An entry goes once every kept committed snapshot is past it: about two commit intervals while
 * commits run. More in that time (values that are not in the wire format but start with a zero byte
 * read as ids of their own) drop the oldest span before the committed offset: were its id registered
 * before a re-read after Redis lost its latest state, that re-read could count a record of the span the
 * live stream dead-lettered. With every kept span past the committed offset, a new one is not kept
 * instead: were its id registered before a member redid this one's work after a crash, the redo could
 * count a record of it.
 */
export const MAX_KEPT_UNKNOWN_SCHEMAS = 40;

/** What a partition is restored from: the snapshot, the fallback its commit named, the idle releases it recorded. */
export interface RestoredState {
  snapshot: PartitionSnapshot;
  /**
   * The older snapshot the last commit named, when `snapshot` is its restore point: that one may have
   * been written moments ago (a rebalance commit just before), and Redis could lose it with the next
   * commits' snapshots, so the fallback it was committed with stays the fallback until it settles.
   */
  fallback?: string;
  /** The idle releases the last commit recorded: those past the snapshot's offset are applied as the re-read reaches them. */
  releases?: IdleRelease[];
  /** The schemas unknown to the live stream the last commit recorded: the re-read dead-letters their records again. */
  unknownSchemas?: UnknownSchema[];
  /**
   * Kafka's committed metadata names no snapshot: the partition starts without state (`snapshot` is
   * empty, saved a moment ago). Verdicts recorded before its first commit name none either: naming that
   * one alone, with nothing older to fall back to, Redis losing it would stop the stream for good.
   */
  unnamed?: boolean;
  /**
   * The last commit carried the dead letters of a bounded run's close of every open window at the
   * committed offset: a redo that closes them there again (a retry after that commit's outcome was
   * unknown, or another bounded run with nothing new to read) must not publish them a second time.
   */
  closedAtEnd?: boolean;
}

/**
 * The stream's processing, independent of Kafka: records in, rows, dead
 * letters, late events and partition snapshots out. The runner feeds it from
 * a consumer group; the test driver from in-memory lists.
 *
 * Each batch has an asynchronous phase (decode, dedup: round trips) followed
 * by a synchronous apply phase that updates windows, buffers and offsets
 * together, so a checkpoint taken between two awaits always sees buffers and
 * offsets that match.
 */
export class StreamTask<E, K extends GroupFields = GroupFields, A extends AggregationSpec<E> = AggregationSpec<E>> {
  private readonly partitions = new Map<string, PartitionState>();
  private incarnations = 0;
  readonly counters: StreamCounters = streamCounters();

  constructor(
    private readonly definition: StreamDefinition<E, K, A>,
    private readonly ports: TaskPorts,
    private readonly windows: StreamWindows<E, K, A> | undefined,
    private readonly options: TaskOptions = {},
  ) {}

  private elapsed(): number {
    return this.ports.elapsed ? this.ports.elapsed() : this.ports.now();
  }

  private static id(topic: string, partition: number): string {
    return `${topic}:${partition}`;
  }

  assigned(): { topic: string; partition: number }[] {
    return [...this.partitions.values()].map(({ topic, partition }) => ({ topic, partition }));
  }

  has(topic: string, partition: number): boolean {
    return this.partitions.has(StreamTask.id(topic, partition));
  }

  nextOffset(topic: string, partition: number): string | undefined {
    return this.partitions.get(StreamTask.id(topic, partition))?.nextOffset;
  }

  /**
   * Takes a partition over: `committedOffset` is what Kafka holds as committed, and processing
   * resumes at the restored snapshot's offset when one is given (the snapshot the last commit named,
   * or the one before it when that one is lost: then the records in between are processed again,
   * without publishing their side records again), else at the committed offset with empty windows.
   * The snapshot is the restore point the next commit names as the one before it.
   * Returns the offset processing resumes at.
   */
  assign(topic: string, partition: number, committedOffset: string, restored?: RestoredState): string {
    const snapshot = restored?.snapshot;
    const fallback = restored?.fallback;
    const resumeAt = snapshot?.offset ?? committedOffset;
    // A negative offset is a client's sentinel (never committed, reset to earliest), not a position: the
    // task would seek to it and commit it.
    if (BigInt(resumeAt) < 0n) throw new Error(`invariant: ${topic}/${partition} cannot resume at offset ${resumeAt}`);
    if (BigInt(resumeAt) > BigInt(committedOffset)) {
      throw new SluiceError(
        'STATE_AHEAD',
        `snapshot of ${topic}/${partition} at offset ${resumeAt} is past the committed offset ${committedOffset}`,
      );
    }
    const id = StreamTask.id(topic, partition);
    this.incarnations += 1;
    this.partitions.set(id, {
      topic,
      partition,
      nextOffset: resumeAt,
      committedOffset,
      committedSnapshots: snapshot
        ? [snapshot.id, ...(fallback !== undefined && fallback !== snapshot.id ? [fallback] : [])].map((id) => ({
            id,
            at: this.elapsed(),
          }))
        : [],
      stateNamed: snapshot !== undefined && !restored?.unnamed,
      head: snapshot && { id: snapshot.id, chain: snapshot.chain ?? [] },
      releases: restored?.releases ?? [],
      releasesApplied: 0,
      unknownSchemas: restored?.unknownSchemas ?? [],
      unknownSpansOpen: new Set(),
      unknownRecorded: new Map((restored?.unknownSchemas ?? []).map((u) => [spanKey(u), BigInt(u.through)])),
      takenAt: this.elapsed(),
      flushedOffset: resumeAt,
      publishedBefore: BigInt(committedOffset),
      endClosedAt: restored?.closedAtEnd ? committedOffset : undefined,
      closedAtEnd: false,
      incarnation: this.incarnations,
      rows: new Map(),
      deadLetters: [],
      late: [],
      // Reprocessing up to the committed offset must end in a commit even if nothing new arrives.
      dirty: resumeAt !== committedOffset,
    });
    this.windows?.assign(partition, snapshot, this.ports.now());
    this.applyReleases(this.partitions.get(id)!, BigInt(resumeAt));
    return resumeAt;
  }

  /**
   * Applies the partition's recorded idle releases at or before `position` not yet applied: re-reading
   * after an older snapshot, each at the offset the live stream released at, so that the records after
   * it are judged as they were. (One taken before the snapshot is already in it: applying it changes nothing.)
   */
  private applyReleases(state: PartitionState, position: bigint): void {
    const { releases } = state;
    while (state.releasesApplied < releases.length && BigInt(releases[state.releasesApplied]!.offset) <= position) {
      const { watermark } = releases[state.releasesApplied++]!;
      if (this.windows) this.emit(state, this.windows.release(state.partition, watermark, this.ports.now()).rows);
    }
  }

  /**
   * Whether an idle partition may close at the stream watermark now. Not while it re-reads records
   * below its committed offset: the live stream's releases are applied at their offsets instead, and
   * one more would judge those records differently. Not when it keeps as many releases as a commit
   * may record, unless this one only raises the last (same offset): then the partition is due a
   * commit, so that its commits settle and drop the older releases (an idle partition would not
   * commit again before its next record, and its windows would wait for that).
   */
  private mayRelease(partition: number): boolean {
    const state = this.stateOf(partition);
    if (!state || BigInt(state.nextOffset) < BigInt(state.committedOffset)) return false;
    if (state.releases.length < MAX_KEPT_RELEASES || state.releases.at(-1)!.offset === state.nextOffset) return true;
    state.dirty = true;
    return false;
  }

  /** The partition's windows were released at `watermark` at its current offset: kept for its commits. */
  private recordRelease(state: PartitionState, watermark: number): void {
    // A raised last one replaces its entry: a checkpoint taken before keeps the release as it was then.
    const release = { offset: state.nextOffset, watermark };
    if (state.releases.at(-1)?.offset === state.nextOffset) state.releases[state.releases.length - 1] = release;
    else state.releases.push(release);
    state.releasesApplied = state.releases.length;
  }

  private stateOf(partition: number): PartitionState | undefined {
    for (const state of this.partitions.values()) if (state.partition === partition) return state;
    return undefined;
  }

  /** True while `incarnation` is the partition's current taking-over (it was not revoked or restored since). */
  isCurrent(topic: string, partition: number, incarnation: number): boolean {
    return this.partitions.get(StreamTask.id(topic, partition))?.incarnation === incarnation;
  }

  /** The restore point of the last commit, then the older committed snapshots a fallback is chosen from. */
  committedSnapshots(topic: string, partition: number): string[] {
    return this.partitions.get(StreamTask.id(topic, partition))?.committedSnapshots.map((s) => s.id) ?? [];
  }

  /**
   * The snapshot a commit whose restore point is `restorePoint` names after it: the newest committed one
   * whose commit landed at least REDIS_LOSS_WINDOW_MS ago, so that a Redis crash losing its latest writes
   * cannot take both (commits may follow each other faster: `--commit-interval 0`, rebalances), else the
   * oldest kept.
   */
  fallbackSnapshot(topic: string, partition: number, restorePoint: string | undefined): string | undefined {
    const state = this.partitions.get(StreamTask.id(topic, partition));
    if (!state) return undefined;
    const older = state.committedSnapshots.filter((s) => s.id !== restorePoint);
    return (older.find(settledAt(this.elapsed())) ?? older.at(-1))?.id;
  }

  /** The offset Kafka held as committed when this member last knew (assignment, or its own commit since). */
  committedOffset(topic: string, partition: number): string | undefined {
    return this.partitions.get(StreamTask.id(topic, partition))?.committedOffset;
  }

  /**
   * Moves a partition past offsets that hold no records (transaction markers, aborted records) when
   * they follow the last record processed: the next commit covers them, and a bounded run whose end
   * offset lies past them sees the partition finished.
   */
  skip(topic: string, partition: number, from: string, to: string): void {
    const state = this.partitions.get(StreamTask.id(topic, partition));
    if (!state || BigInt(state.nextOffset) < BigInt(from) || BigInt(to) <= BigInt(state.nextOffset)) return;
    state.nextOffset = to;
    state.dirty = true;
    this.applyReleases(state, BigInt(to));
  }

  /**
   * Gives a partition up, discarding what it produced since the last
   * checkpoint: its new owner starts from the committed offset and the
   * matching snapshot, so it redoes exactly that work.
   */
  revoke(topic: string, partition: number): void {
    this.partitions.delete(StreamTask.id(topic, partition));
    this.windows?.revoke(partition);
  }

  /**
   * Processes consecutive records of one partition. Throws a retriable
   * SluiceError (and changes nothing) when a dependency is down: the caller
   * pauses the partition and offers the same records again later.
   */
  async processBatch(topic: string, partition: number, records: ConsumedRecord[]): Promise<void> {
    const state = this.partitions.get(StreamTask.id(topic, partition));
    if (!state || records.length === 0) return;
    // Records before nextOffset were already processed (a re-fetch after a pause). Offsets ascend
    // within a batch, so the usual case (nothing seen before) is decided by the first record alone.
    const next = BigInt(state.nextOffset);
    const fresh = BigInt(records[0]!.offset) >= next ? records : records.filter((r) => BigInt(r.offset) >= next);
    if (fresh.length === 0) return;

    // Asynchronous phase: nothing is changed until every round trip succeeded.
    type Outcome = {
      meta: ConsumedRecord;
      event?: E;
      error?: DeadLetterReason;
      /** Outside the run's event-time range: skipped (see TaskOptions.eventTimeRange). */
      outside?: boolean;
      /** The registry did not know the schema id the value names (kept for a re-read: see UnknownSchema). */
      unknownSchema?: number;
    };
    const outcomes: Outcome[] = [];
    for (const meta of fresh) {
      if (meta.value === null) {
        outcomes.push({ meta, error: { errorClass: 'VALUE_MISSING', message: 'record has no value (tombstone)' } });
        continue;
      }
      const unknownThen = state.unknownSchemas.length > 0 ? this.unknownWhenRead(state, meta) : undefined;
      if (unknownThen !== undefined) {
        outcomes.push({ meta, error: unknownThen });
        continue;
      }
      const decoding = this.decode(state, meta as ConsumedRecord & { value: Buffer });
      const value = decoding instanceof Promise ? await decoding : decoding;
      if (value instanceof NotDecoded) {
        outcomes.push({ meta, error: value.error, unknownSchema: value.unknownSchema });
        continue;
      }
      const validation = this.definition.validate(value);
      if (!validation.ok) {
        outcomes.push({ meta, error: { errorClass: 'EVENT_INVALID', message: validation.errors.join('; ') } });
        continue;
      }
      const ahead = this.aheadOfRecord(validation.event, meta);
      // An event outside the range is no part of the run, not even as a dead letter. It still claims
      // its dedup id (unless it is too far ahead, which the live pass dead-lettered unclaimed): the
      // live pass claimed it, so a copy of it inside the range was a duplicate there and must be here.
      if (!this.inRange(validation.event))
        outcomes.push({ meta, outside: true, ...(ahead ? {} : { event: validation.event }) });
      else outcomes.push(ahead ? { meta, error: ahead } : { meta, event: validation.event });
    }

    let keep: boolean[] | undefined;
    const dedup = this.definition.dedup;
    // Claims in record order, those outside the range included (marks only: their verdict is counted nowhere).
    const valid = outcomes.filter((o) => o.event !== undefined);
    if (dedup && this.ports.dedup && valid.length > 0) {
      // Every record claims as itself, where it was read. A redriven copy of a dead letter is a record
      // of its own: the first copy to claim the id wins and any other copy is a duplicate. (Claiming as
      // the original record would let every copy pass, and trusts headers anyone can write.)
      const claims = valid.map((o) => ({
        id: dedup.id(o.event as E),
        topic: o.meta.topic,
        partition: o.meta.partition,
        offset: o.meta.offset,
      }));
      try {
        keep = await this.ports.dedup.claim(claims);
      } catch (err) {
        // Fail-open lets records through while Redis is out, not while it refuses them for good.
        if (dedup.onUnavailable !== 'fail-open' || (err instanceof SluiceError && !err.retriable)) throw err;
        this.counters.dedupFailOpen += valid.filter((o) => !o.outside).length;
        keep = valid.map(() => true);
      }
    }

    // Synchronous apply phase.
    if (this.partitions.get(StreamTask.id(topic, partition)) !== state) return; // revoked while we awaited
    const now = this.ports.now();
    let v = 0;
    // Offsets ascend: usually the first record decides for all (one BigInt per batch, not per record).
    const publishAll = BigInt(fresh[0]!.offset) >= state.publishedBefore;
    for (const outcome of outcomes) {
      this.counters.recordsIn += 1;
      if (state.releasesApplied < state.releases.length) this.applyReleases(state, BigInt(outcome.meta.offset));
      const publish = publishAll || BigInt(outcome.meta.offset) >= state.publishedBefore;
      if (outcome.error) {
        this.counters.deadLettered += 1;
        if (outcome.unknownSchema !== undefined)
          this.recordUnknownSchema(state, outcome.unknownSchema, outcome.meta.offset);
        if (publish) state.deadLetters.push({ source: outcome.meta, ...outcome.error, attempt: 1 });
        continue;
      }
      if (outcome.outside) {
        if (outcome.event !== undefined) v++; // its claim was made; its verdict changes nothing
        this.counters.outsideRange += 1;
        // The partition is being read: reading only records outside the range must not make it idle
        // (an idle partition closes its windows at the other partitions' watermark, early for it).
        this.windows?.touch(partition, now);
        continue;
      }
      this.counters.decoded += 1;
      const event = outcome.event as E;
      if (keep && !keep[v++]) {
        this.counters.deduplicated += 1;
        continue;
      }
      if (this.definition.raw) {
        this.push(state, this.definition.raw.table, this.definition.raw.toRow(event, outcome.meta), outcome.meta);
        this.counters.rawRows += 1;
      }
      if (this.windows) {
        const late = this.windows.add(
          partition,
          event,
          this.definition.eventTime(event),
          now,
          recordTime(outcome.meta),
        );
        if (late) {
          this.counters.late += 1;
          if (publish) state.late.push({ source: outcome.meta, ...late });
        }
      }
    }
    state.nextOffset = nextOf(fresh[fresh.length - 1]!.offset);
    state.dirty = true;
    this.applyReleases(state, BigInt(state.nextOffset));
    this.closeWindows(now);
  }

  /**
   * The record's value, or why it is a dead letter; throws (or rejects with) a retriable error when the
   * registry is down. Without a promise when the codec knows the schema: no await per record.
   */
  private decode(state: PartitionState, meta: ConsumedRecord & { value: Buffer }): Decoding | Promise<Decoding> {
    let decoded: ReturnType<Decoder['decode']>;
    try {
      decoded = this.ports.decoder.decode(meta.value);
    } catch (err) {
      return this.notDecoded(state, meta, err);
    }
    if (!(decoded instanceof Promise)) return decoded;
    return decoded.catch((err: unknown) => this.notDecoded(state, meta, err));
  }

  /**
   * Why a record is a dead letter. The codec remembers a 404 for a few seconds and shares a request in
   * flight, so the registry may have been asked before this taking-over began, and since then another
   * member may have decoded the record: the one that read it before Redis lost its latest state (a
   * re-read outside every span the live stream recorded, see unknownWhenRead), or a former owner whose
   * work since the committed offset this one redoes (its rows may be in ClickHouse). Such an answer is
   * asked again; one given since the taking-over began stands: an id the registry did not know then, no
   * member that read the record before knew. A retriable failure of the request asks again when retried.
   */
  private notDecoded(
    state: PartitionState,
    meta: ConsumedRecord & { value: Buffer },
    err: unknown,
    rechecked = false,
  ): Decoding | Promise<Decoding> {
    if (err instanceof SluiceError && err.retriable) throw err;
    const errorClass = err instanceof SluiceError ? err.code : 'VALUE_UNDECODABLE';
    const error = { errorClass, message: describeError(err) };
    if (errorClass !== 'SCHEMA_UNKNOWN') return new NotDecoded(error);
    const unknownSchema = this.ports.decoder.schemaOf?.(meta.value);
    if (unknownSchema === undefined) return new NotDecoded(error);
    const askedAt = (err as { askedAt?: unknown }).askedAt;
    if (rechecked || typeof askedAt !== 'number' || askedAt >= state.takenAt)
      return new NotDecoded(error, unknownSchema);
    return Promise.resolve()
      .then(() => this.ports.decoder.decode(meta.value, { recheckUnknown: true }))
      .catch((again: unknown) => this.notDecoded(state, meta, again, true));
  }

  /**
   * The dead-letter reason of a record the live stream read while the registry did not know its schema
   * (see UnknownSchema): re-read after an older snapshot, it is judged as it was then, even if the schema
   * was registered since.
   */
  private unknownWhenRead(state: PartitionState, meta: ConsumedRecord): DeadLetterReason | undefined {
    const schemaId = this.ports.decoder.schemaOf?.(meta.value!);
    const offset = BigInt(meta.offset);
    const span = state.unknownSchemas.find(
      (u) => u.schemaId === schemaId && BigInt(u.from) <= offset && offset <= BigInt(u.through),
    );
    if (!span) return undefined;
    return {
      errorClass: 'SCHEMA_UNKNOWN',
      message: `schema id ${schemaId} was not in the schema registry when this record was first read (error 40403)`,
    };
  }

  /**
   * A record of `schemaId` at `offset` was dead-lettered because the registry did not know that id: kept for
   * the partition's commits, extending this incarnation's span of the id (see UnknownSchema).
   */
  private recordUnknownSchema(state: PartitionState, schemaId: number, offset: string): void {
    // Only a restore from window state re-reads records (and commits prune spans as snapshots settle).
    if (!this.windows) return;
    for (const open of state.unknownSpansOpen) {
      if (open.schemaId !== schemaId) continue;
      if (BigInt(offset) > BigInt(open.through)) open.through = offset;
      return;
    }
    if (state.unknownSchemas.length >= MAX_KEPT_UNKNOWN_SCHEMAS) {
      // The oldest before the committed offset goes: only a re-read after Redis lost the latest state needs
      // it. One past it may be all a member redoing this one's uncommitted work has (see Checkpoint.verdicts),
      // and rows that follow from it may be written: with only such spans kept, the new one is not kept.
      const committed = BigInt(state.committedOffset);
      const behind = state.unknownSchemas.filter((u) => BigInt(u.through) < committed);
      if (behind.length === 0) return;
      const oldest = behind.reduce((a, b) => (BigInt(b.through) < BigInt(a.through) ? b : a));
      state.unknownSchemas.splice(state.unknownSchemas.indexOf(oldest), 1);
      state.unknownSpansOpen.delete(oldest);
    }
    const span = { schemaId, from: offset, through: offset };
    state.unknownSchemas.push(span);
    state.unknownSpansOpen.add(span);
  }

  private inRange(event: E): boolean {
    const range = this.options.eventTimeRange;
    if (!range) return true;
    const t = this.definition.eventTime(event);
    return (range.from === null || t >= range.from) && (range.to === null || t < range.to);
  }

  /** The dead-letter reason when the event's time is too far ahead of its record's timestamp (see WindowOutput.maxEventTimeAheadMs). */
  private aheadOfRecord(event: E, meta: ConsumedRecord): DeadLetterReason | undefined {
    const limit = this.definition.windowed?.maxEventTimeAheadMs;
    if (limit === undefined) return undefined;
    const eventTime = this.definition.eventTime(event);
    const recordTime = Number(meta.timestamp);
    if (!(eventTime - recordTime > limit)) return undefined;
    return {
      errorClass: 'EVENT_TIME_AHEAD',
      message: `event time ${new Date(eventTime).toISOString()} is more than ${limit} ms ahead of the record timestamp ${new Date(recordTime).toISOString()}`,
    };
  }

  /** Emits every window the stream watermark has passed (also called on a timer, for idle partitions). */
  closeWindows(now: number = this.ports.now()): void {
    if (!this.windows) return;
    for (const { partition, rows, releasedTo } of this.windows.close(now, (p) => this.mayRelease(p))) {
      const state = this.stateOf(partition);
      if (!state) continue;
      if (releasedTo !== undefined) this.recordRelease(state, releasedTo);
      this.emit(state, rows);
    }
  }

  /** A gap of more than `stallAfterMs` between two calls is a stall of the process, not idleness (see StreamWindows.watchStalls). */
  watchStalls(stallAfterMs: number): void {
    this.windows?.watchStalls(stallAfterMs);
  }

  /** Consumption resumes after a pause the runtime imposed: paused time does not make partitions idle. */
  resumeClock(now: number = this.ports.now()): void {
    this.windows?.resumeClock(now);
  }

  /** End of a bounded run: every open window closes as if the watermark reached the end of time. */
  closeAllWindows(): void {
    if (!this.windows) return;
    for (const { partition, rows } of this.windows.closeAll(this.ports.now())) {
      const state = this.stateOf(partition);
      if (!state) continue;
      this.emit(state, rows, state.endClosedAt === state.nextOffset);
      state.closedAtEnd = true;
    }
  }

  private emit(state: PartitionState, rows: { row: Row; origin: RowOrigin }[], published = false): void {
    if (rows.length === 0 || !this.windows) return;
    const republished = published || BigInt(state.nextOffset) < state.publishedBefore;
    for (const { row, origin } of rows) {
      if (republished && origin instanceof WindowRowOrigin) origin.republished = true;
      this.push(state, this.windows.table, row, origin);
    }
    this.counters.windowRows += rows.length;
    state.dirty = true;
  }

  private push(state: PartitionState, table: string, row: Row, origin: RowOrigin): void {
    const entry = state.rows.get(table);
    if (entry) {
      entry.rows.push(row);
      entry.origins.push(origin);
    } else state.rows.set(table, { rows: [row], origins: [origin] });
  }

  /** Event-time progress: the stream watermark and each partition's, and how many windows are open. */
  eventTime(now: number = this.ports.now()): { watermark: number | null; openWindows: number } {
    if (!this.windows) return { watermark: null, openWindows: 0 };
    const wm = this.windows.watermark(now);
    return { watermark: Number.isFinite(wm) ? wm : null, openWindows: this.windows.openWindows() };
  }

  /** Whether rows of the partition's closed windows wait for the sink. */
  hasWindowRows(topic: string, partition: number): boolean {
    const table = this.windows?.table;
    const rows = this.partitions.get(StreamTask.id(topic, partition))?.rows;
    return table !== undefined && (rows?.get(table)?.rows.length ?? 0) > 0;
  }

  /** Rows waiting for the sink; `records` leaves out the rows of closed windows (see Runner.sinkHoldsBack). */
  pendingRows(of: 'all' | 'records' = 'all'): number {
    let n = 0;
    for (const s of this.partitions.values())
      for (const [table, entry] of s.rows) if (of === 'all' || table !== this.windows?.table) n += entry.rows.length;
    return n;
  }

  /**
   * True when a checkpoint would have nothing to do: with `commit`, nothing
   * changed since the last committing checkpoint; without, no rows wait.
   */
  idle(commit = true): boolean {
    return [...this.partitions.values()].every((s) => (commit ? !s.dirty : !hasRows(s)));
  }

  /**
   * Hands over everything produced since the last checkpoint and starts new
   * buffers. Synchronous, so it cannot interleave with a batch's apply phase.
   *
   * With `commit` false the checkpoint carries only rows: they reach
   * ClickHouse without saving window state, publishing side records or
   * committing offsets. Committing saves window state (what changed since the
   * last commit, encoded off the hot path; docs/design.md §3.6), and side records must be
   * written in the same Kafka transaction as the offsets they cover, so the
   * runner does both less often than it flushes rows. A crash between two
   * commits redoes the work since the last one, and its rows again, which
   * row identity makes harmless (see `commitCheckpoint`).
   *
   * With `saveState` false a committing checkpoint saves no window state: the
   * snapshot saved for the same offset before stays the one to restore (the
   * end of a bounded run, whose force-closed windows must not be saved closed).
   */
  takeCheckpoint(commit = true, saveState = true): Checkpoint {
    const checkpoint: Checkpoint = {
      rows: new Map(),
      deadLetters: [],
      late: [],
      snapshots: [],
      offsets: [],
      partitions: new Map(),
      verdicts: [],
    };
    const now = this.ports.now();
    for (const state of this.partitions.values()) {
      if (commit ? !state.dirty : !hasRows(state)) continue;
      checkpoint.partitions.set(state.partition, {
        incarnation: state.incarnation,
        publishedBefore: state.publishedBefore,
      });
      if (unrecorded(state))
        checkpoint.verdicts.push({
          topic: state.topic,
          partition: state.partition,
          incarnation: state.incarnation,
          offset: state.committedOffset,
          snapshot: state.stateNamed ? state.committedSnapshots[0]?.id : undefined,
          // Those up to the committed offset, as its commit recorded: a redo that goes idle before one past
          // it would take that as applied (its own release comes first). Without one the redo keeps windows
          // open longer, and its rows replace this member's with more counted, nothing twice.
          releases: state.releases.filter((r) => BigInt(r.offset) <= BigInt(state.committedOffset)),
          unknownSchemas: state.unknownSchemas.map((u) => ({ ...u })),
          // What the committed metadata says, not this run's close: its dead letters are not in this commit.
          closedAtEnd: state.endClosedAt === state.committedOffset,
        });
      const position = {
        topic: state.topic,
        partition: state.partition,
        fromOffset: state.flushedOffset,
        toOffset: state.nextOffset,
      };
      for (const [table, { rows, origins }] of state.rows) {
        const entry = checkpoint.rows.get(table);
        if (entry) {
          for (let i = 0; i < rows.length; i++) {
            entry.rows.push(rows[i]!);
            entry.origins.push(origins[i]!);
          }
          entry.positions.push(position);
        } else checkpoint.rows.set(table, { rows, origins, positions: [position] });
      }
      state.rows = new Map();
      state.flushedOffset = state.nextOffset;
      if (!commit) continue;
      checkpoint.deadLetters.push(...state.deadLetters);
      checkpoint.late.push(...state.late);
      state.deadLetters = [];
      state.late = [];
      let snapshot: string | undefined;
      if (this.windows && saveState) {
        snapshot = snapshotId(state.nextOffset, now, randomBytes(3).toString('hex'));
        // A delta extends the last snapshot taken (whose commit precedes this one's, or the partition
        // was restored since); restore reads its chain from the base on (docs/design.md §3.6).
        const { watermark, windows, base } = this.windows.snapshot(state.partition, state.head === undefined);
        const chain = base ? [] : [...state.head!.chain, state.head!.id];
        checkpoint.snapshots.push({
          ref: { topic: state.topic, partition: state.partition },
          snapshot: { id: snapshot, offset: state.nextOffset, savedAt: now, watermark, windows, chain },
          incarnation: state.incarnation,
        });
        state.head = { id: snapshot, chain };
      }
      // Without a new snapshot (the end of a bounded run) the commit names the restore point it already has.
      // Re-reading records after an older snapshot (Redis lost the newer), the partition is still below the
      // offset Kafka has committed: committing where it is would move that offset back, and after a crash the
      // records in between would publish their dead letters and late events a second time. The commit keeps
      // Kafka's offset and names the new snapshot, older than it: a restore from there re-reads from the
      // snapshot's offset and publishes nothing below the committed one, as after the fallback itself.
      const behind = BigInt(state.nextOffset) < BigInt(state.committedOffset);
      const offset = behind ? state.committedOffset : state.nextOffset;
      checkpoint.offsets.push({
        topic: state.topic,
        partition: state.partition,
        offset,
        incarnation: state.incarnation,
        snapshot: snapshot ?? state.committedSnapshots[0]?.id,
        releases: [...state.releases],
        unknownSchemas: state.unknownSchemas.map((u) => ({ ...u })),
        // Kept by every commit of the marked offset, those that keep it while re-reading below it included.
        closedAtEnd: state.closedAtEnd || state.endClosedAt === offset,
      });
      state.dirty = false;
    }
    return checkpoint;
  }

  /**
   * Dead letters found after their checkpoint was taken (rows the sink refused in a checkpoint that
   * did not commit) join the partition's next commit, if the partition is still in that incarnation
   * (else its new owner redoes the work and finds them again).
   */
  defer(deadLetters: DeadLetter[], incarnations: Checkpoint['partitions']): void {
    for (const d of deadLetters) {
      const state = this.partitions.get(StreamTask.id(d.source.topic, d.source.partition));
      if (!state || state.incarnation !== incarnations.get(d.source.partition)?.incarnation) continue;
      state.deadLetters.push(d);
      state.dirty = true;
    }
  }

  /** Kafka has `offset` as the partition's committed offset, with `snapshot` as its restore point: older snapshots may go from now on. */
  committed(topic: string, partition: number, offset: string, snapshot: string | undefined): void {
    const state = this.partitions.get(StreamTask.id(topic, partition));
    if (!state || BigInt(offset) < BigInt(state.committedOffset)) return;
    state.committedOffset = offset;
    if (snapshot !== undefined) state.stateNamed = true;
    if (snapshot !== undefined && snapshot !== state.committedSnapshots[0]?.id) {
      const now = this.elapsed();
      // Older ones stay down to the first settled one: the fallback of this commit's successors.
      const older = state.committedSnapshots;
      const settled = older.findIndex(settledAt(now));
      state.committedSnapshots = [{ id: snapshot, at: now }, ...(settled < 0 ? older : older.slice(0, settled + 1))];
      // Releases and unknown schemas before every kept snapshot's offset are in all of them: no restore needs them again.
      const oldest = state.committedSnapshots
        .map((s) => BigInt(offsetOfSnapshot(s.id)))
        .reduce((min, offset) => (offset < min ? offset : min));
      const stale = state.releases.findIndex((r) => BigInt(r.offset) >= oldest);
      const drop = stale < 0 ? state.releases.length : stale;
      state.releases = state.releases.slice(drop);
      state.releasesApplied = Math.max(0, state.releasesApplied - drop);
      state.unknownSchemas = state.unknownSchemas.filter((u) => BigInt(u.through) >= oldest);
      for (const span of state.unknownSpansOpen)
        if (!state.unknownSchemas.includes(span)) state.unknownSpansOpen.delete(span);
      const kept = new Set(state.unknownSchemas.map(spanKey));
      for (const key of state.unknownRecorded.keys()) if (!kept.has(key)) state.unknownRecorded.delete(key);
    }
  }

  /** Kafka's committed metadata of the partition, in this incarnation, holds `spans` (see Checkpoint.verdicts). */
  verdictsRecorded(topic: string, partition: number, incarnation: number, spans: UnknownSchema[]): void {
    const state = this.partitions.get(StreamTask.id(topic, partition));
    if (!state || state.incarnation !== incarnation) return;
    for (const span of spans) {
      const through = BigInt(span.through);
      if (through > (state.unknownRecorded.get(spanKey(span)) ?? -1n))
        state.unknownRecorded.set(spanKey(span), through);
    }
  }

  /** A partition has a verdict its committed metadata does not hold yet: rows written now could follow from it. */
  hasUnrecordedVerdicts(): boolean {
    for (const state of this.partitions.values()) if (unrecorded(state)) return true;
    return false;
  }

  /**
   * A commit of a partition this member still owns did not land (a rebalance
   * fenced it): the next committing checkpoint must cover the partition again,
   * even if no record arrives to make it dirty (at the end of the input, none will).
   */
  commitLost(topic: string, partition: number): void {
    const state = this.partitions.get(StreamTask.id(topic, partition));
    if (state) state.dirty = true;
  }
}

/** Whether a committed snapshot is past what a Redis crash at `now` could lose (see REDIS_LOSS_WINDOW_MS). */
function settledAt(now: number): (snapshot: { at: number }) => boolean {
  return (snapshot) => snapshot.at <= now - REDIS_LOSS_WINDOW_MS;
}

/**
 * The record's Kafka timestamp, when it has a usable one. It bounds how far the record's event
 * time may move its partition's watermark (see WindowOperator.add).
 */
function recordTime(meta: ConsumedRecord): number | undefined {
  const t = Number(meta.timestamp);
  return Number.isFinite(t) && t > 0 ? t : undefined;
}

/** A span's identity: its schema id and first offset (its end moves as the live stream extends it). */
function spanKey(span: UnknownSchema): string {
  return `${span.schemaId}@${span.from}`;
}

/** A span of the partition reaches further than its committed metadata records (see Checkpoint.verdicts). */
function unrecorded(state: PartitionState): boolean {
  return state.unknownSchemas.some((u) => (state.unknownRecorded.get(spanKey(u)) ?? -1n) < BigInt(u.through));
}

function hasRows(state: PartitionState): boolean {
  return state.rows.size > 0;
}
