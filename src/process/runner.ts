import { SpanKind } from '@opentelemetry/api';
import { systemClock, type Clock } from '../clock';
import { describeError, SluiceError } from '../errors';
import {
  CommitFencedError,
  type Assignment,
  type BatchControl,
  type CommittedOffset,
  type GroupAdmin,
  type GroupConsumer,
  type PartitionTransactions,
  type StreamKafka,
} from '../kafka/group';
import type { ConsumedRecord } from '../kafka';
import { randomBytes } from 'node:crypto';
import {
  offsetOfSnapshot,
  snapshotId,
  snapshotsOf,
  releasesOf,
  unknownSchemasOf,
  closedAtEndOf,
  StateLostError,
  stateMetadata,
  type IdleRelease,
  type PartitionSnapshot,
  type SnapshotStore,
  type UnknownSchema,
} from '../state';
import type { Logger } from '../telemetry';
import { producerLinks, withSpan } from '../telemetry/tracing';
import {
  commitCheckpoint,
  newProgress,
  type CheckpointPorts,
  type CheckpointProgress,
  type PartitionCommit,
} from './checkpoint';
import { backoffMs, DependencyBackoff } from './backoff';
import { CheckpointSchedule } from './checkpoint-schedule';
import { assertIdleTimeout, type StreamDefinition } from './definition';
import type { ProcessingOptions } from './options';
import type { Checkpoint, PartitionIncarnation, StreamCounters, StreamTask } from './task';
import { lateShare } from './late-share';

/** The runner's tunables are declared with their defaults and bounds in ./options (PROCESSING_OPTIONS). */
export interface RunnerOptions extends ProcessingOptions {
  groupId: string;
  /** Stop at the end offsets captured at start, closing every open window (docs/design.md §3.10). */
  bounded: boolean;
  /**
   * The dedup and window-state epoch. Commits name it in their metadata, so a restore knows that a
   * snapshot of this epoch must exist for the committed offset (or an older one), and refuses to
   * start with empty windows when none does.
   */
  epoch?: number;
  /**
   * Bounded runs: stop at these offsets (per partition, the first offset not to process) instead of
   * the end offsets seen at start; records at or past them are never processed. Replays of a range use it.
   */
  endOffsets?: Map<number, bigint>;
  /**
   * Bounded runs: close every open window at the end (the default). false leaves windows the watermark
   * has not closed open (saved in the last snapshot), because their rows are not final yet: a replay of an
   * open range must not replace the live stream's rows with a window cut off at the replay's end.
   */
  closeWindowsAtEnd?: boolean;
}

/** A live view of the runner for metrics, health checks and the status page. */
export interface RunnerStatus {
  group: string;
  topic: string;
  assigned: number[];
  /** Assigned partitions not being read: paused (a failing checkpoint, piled-up rows) or being restored (e.g. after a commit that did not land). */
  paused: number[];
  /** Per partition: the first offset not yet processed. */
  positions: Record<number, string>;
  /** A checkpoint failed and is being retried (sink, side topics, Redis or Kafka unavailable). */
  checkpointPending: boolean;
  lastCheckpointAt: number;
  checkpoints: number;
  counters: StreamCounters;
  watermark: number | null;
  openWindows: number;
  pendingRows: number;
  stopping: boolean;
}

export interface RunSummary extends StreamCounters {
  seconds: number;
  checkpoints: number;
  /** Late events per event that reached the windows (see ./late-share); null before any did. */
  lateShare: number | null;
}

/** The ports a runner writes through; snapshots are absent for streams without windows. */
export type RunnerPorts = Omit<CheckpointPorts, 'commit' | 'snapshots' | 'defer' | 'recordVerdicts'> & {
  snapshots?: SnapshotStore;
};

/**
 * Records per processing step: one dedup round trip each, and small enough
 * that partitions processed concurrently interleave in event time instead of
 * one partition running far ahead of the others within a fetch.
 */
const CHUNK_RECORDS = 500;

/** A fetch that keeps failing is logged at most this often per partition. */
const FETCH_ERROR_LOG_MS = 30_000;

/** The partition's window state is gone from Redis and no older snapshot is left: starting empty would be wrong. */
export class StateMissingError extends SluiceError {
  constructor(topic: string, partition: number, offset: string) {
    super(
      'STATE_MISSING',
      `window state of ${topic}/${partition} for committed offset ${offset} is missing from Redis and no older snapshot is left: refusing to start with empty windows; restore Redis, or rebuild the affected range with 'sluice replay'`,
    );
    this.name = 'StateMissingError';
  }
}

/**
 * Runs a StreamTask as a member of a Kafka consumer group.
 *
 * Nothing here waits for long inside the consumer's batch callback: when the
 * sink or Redis is slow or down, the affected partitions are paused and the
 * callback returns, so heartbeats go on and the member is never kicked out of
 * the group for being slow. Paused partitions resume by themselves once the
 * pending checkpoint commits, re-reading from the first unprocessed offset.
 *
 * Each partition's processing is tied to one taking-over of it (the task's
 * incarnation): a checkpoint taken before the partition was revoked,
 * restored again, or handed back after this member was expelled from the
 * group never saves state or commits offsets for it.
 */
export class StreamRunner<E> {
  private consumer?: GroupConsumer;
  private admin?: GroupAdmin;
  private transactions?: PartitionTransactions;
  private readonly topic: string;
  private assignment = new Set<number>();
  private memberId?: string;
  /** Per partition: its restore (or check) in progress; batches wait for every one of them. */
  private readonly ready = new Map<number, Promise<void>>();
  /** Per partition: the restore in progress (a later one supersedes it). */
  private readonly restoring = new Map<number, symbol>();
  /** Per partition: the committed offset as this member last knew it (restore, or its own commit since). */
  private readonly knownCommitted = new Map<number, string | undefined>();
  private readonly paused = new Set<number>();
  /** Per partition (-1: the whole fetch), when a fetch failure was last logged and how many since. */
  private readonly fetchErrors = new Map<number, { at: number; suppressed: number }>();
  /** When reading may be tried again after a dependency (Redis, the registry) failed. */
  private readonly readBackoff: DependencyBackoff;
  /** Partitions whose last commit did not land while the runner was stopping: a bounded run goes back to them. */
  private readonly lostWhileStopping = new Set<number>();
  private pending?: { checkpoint: Checkpoint; progress: CheckpointProgress; commit: boolean };
  private checkpointing?: Promise<void>;
  /**
   * A flush of rows only, beside a committing checkpoint that has written its rows and now saves window
   * state and commits (seconds, when it writes a base of a large state): the rows of windows closing
   * meanwhile need not wait for that. One at a time; a new checkpoint is taken only once it is done.
   */
  private flushingBeside?: Promise<void>;
  /** A flush beside a commit that failed, with how far it got: retried, alone, before anything else. */
  private besideFailed?: { checkpoint: Checkpoint; progress: CheckpointProgress };
  /** When to checkpoint, commit, check the state and retry a failed checkpoint; its timer drives `tick`. */
  private readonly schedule: CheckpointSchedule;
  /** An error that retrying cannot fix; the run has failed with it. */
  private fatal?: SluiceError;
  private stopping = false;
  /** The batch callbacks in progress, awaited before the final flush. */
  private readonly inflight = new Set<Promise<void>>();
  private readonly started: number;
  private endOffsets?: Map<number, bigint>;
  private finish!: (summary: RunSummary) => void;
  private fail!: (err: unknown) => void;
  /** Resolves when a bounded run has processed everything, or after stop(). */
  readonly done: Promise<RunSummary>;

  constructor(
    private readonly kafka: StreamKafka,
    private readonly definition: StreamDefinition<E>,
    private readonly task: StreamTask<E>,
    private readonly ports: RunnerPorts,
    private readonly options: RunnerOptions,
    private readonly log: Logger,
    private readonly clock: Clock = systemClock,
  ) {
    assertIdleTimeout(definition);
    this.topic = definition.source.topic;
    this.started = clock.now();
    this.schedule = new CheckpointSchedule(clock, {
      flushIntervalMs: options.flushIntervalMs,
      commitIntervalMs: options.commitIntervalMs,
      maxPendingRows: options.maxPendingRows,
      stateCheckIntervalMs: options.stateCheckIntervalMs,
      checkpointRetryBackoffMs: options.checkpointRetryBackoffMs,
      idleTimeoutMs: definition.windowed?.idleTimeoutMs,
    });
    // The timer's ticks call into the windows at least every tickMs: a gap of two is the process stalled.
    task.watchStalls(2 * this.schedule.tickMs);
    this.readBackoff = new DependencyBackoff(clock, options.readRetryBackoffMs, options.retryBackoffMaxMs);
    this.done = new Promise((resolve, reject) => {
      this.finish = resolve;
      this.fail = (err) => {
        if (err instanceof SluiceError && !this.fatal) this.fatal = err;
        reject(err);
      };
    });
    this.done.catch(() => undefined); // the caller awaits it; a failure before that is not unhandled
  }

  async start(): Promise<void> {
    this.admin = await this.kafka.admin();
    if (this.options.bounded && this.options.endOffsets) {
      this.endOffsets = new Map(this.options.endOffsets);
    } else if (this.options.bounded) {
      const offsets = await this.admin.topicOffsets(this.topic);
      this.endOffsets = new Map([...offsets].map(([p, o]) => [p, BigInt(o.high)]));
    }
    this.transactions = this.kafka.transactions({ groupId: this.options.groupId, topic: this.topic });
    const consumer = this.kafka.consumer({
      groupId: this.options.groupId,
      topic: this.topic,
      sessionTimeoutMs: this.options.sessionTimeoutMs,
    });
    this.consumer = consumer;
    await consumer.start({
      onAssignment: (assignment) => this.onAssignment(assignment),
      onBatch: (partition, records, control) => {
        const run = this.onBatch(partition, records, control);
        const tracked = run.catch(() => undefined);
        this.inflight.add(tracked);
        void tracked.then(() => this.inflight.delete(tracked));
        return run;
      },
      onCrash: (err) => this.fail(err),
      onFetchError: (partition, err) => this.fetchFailed(partition, err),
      onSkip: (partition, from, to) => {
        this.task.skip(this.topic, partition, from, this.boundedTo(partition, to));
        this.checkBoundedEnd();
      },
    });
    this.schedule.startTimer(() => void this.tick());
    this.log.info({ group: this.options.groupId, topic: this.topic, bounded: this.options.bounded }, 'stream started');
  }

  /**
   * The group's new assignment: drop what we lost, restore what we gained, and check what we kept.
   * A member expelled from the group (session timeout) joins again under a new member id: whatever it
   * held may have been processed and committed by others meanwhile, so it keeps nothing.
   */
  private onAssignment({ partitions, memberId }: Assignment): void {
    const expelled = this.memberId !== undefined && memberId !== this.memberId;
    this.memberId = memberId;
    const next = new Set(partitions);
    for (const p of this.assignment) if (expelled || !next.has(p)) this.release(p);
    const kept = expelled ? [] : [...next].filter((p) => this.assignment.has(p));
    const gained = [...next].filter((p) => !kept.includes(p));
    this.assignment = next;
    for (const p of gained) this.ready.set(p, this.restore(p));
    if (kept.length > 0) {
      const check = this.checkKept(kept).catch((err: unknown) => this.failUnlessStopping(err));
      for (const p of kept) this.ready.set(p, check);
    }
    // A client may keep a partition's pause across rebalances, while this runner forgets the pause of a
    // partition it loses (above): one paused when it went and handed back later would never be read
    // again. Gained partitions start unpaused; onBatch pauses them again if the sink is still behind.
    this.consumer?.resume(gained);
    // Nothing was read while the group rebalanced: that time is not idleness of the partitions we kept.
    this.task.resumeClock(this.clock.now());
    if (expelled)
      this.log.warn(
        { memberId },
        'this member was expelled from the group and joined again: restoring every partition',
      );
    this.log.info({ partitions: [...next].sort((a, b) => a - b) }, 'partitions assigned');
  }

  /** Gives a partition up: what it produced since the last checkpoint is dropped, its next owner redoes it. */
  private release(partition: number): void {
    this.task.revoke(this.topic, partition);
    this.ready.delete(partition);
    this.paused.delete(partition);
    this.knownCommitted.delete(partition);
    this.ports.snapshots?.forget({ topic: this.topic, partition });
    void this.transactions?.release(partition);
  }

  /**
   * Partitions this member kept through a rebalance are still its own only if nobody else committed
   * them meanwhile; one that was committed elsewhere is restored from that commit.
   */
  private async checkKept(partitions: number[]): Promise<void> {
    const committed = await this.retrying('check the committed offsets of kept partitions', () =>
      this.admin!.committedOffsets(this.options.groupId, this.topic),
    );
    for (const p of partitions) {
      if (!this.assignment.has(p) || !this.task.has(this.topic, p)) continue;
      const offset = committed.get(p)?.offset;
      if (offset !== this.knownCommitted.get(p)) {
        this.log.warn(
          { partition: p, committed: offset, expected: this.knownCommitted.get(p) },
          'a kept partition was committed by another member meanwhile: restoring it',
        );
        this.restoreAgain(p);
      } else {
        // The client may go back to the committed offset after a rebalance: read on where the task is.
        this.consumer?.seek(p, this.task.nextOffset(this.topic, p)!);
      }
    }
  }

  /**
   * Loads a partition's committed offset and the newest window-state snapshot at or before it, and
   * resumes reading where that snapshot was taken.
   */
  private async restore(partition: number): Promise<void> {
    const ref = { topic: this.topic, partition };
    const ticket = Symbol('restore');
    this.restoring.set(partition, ticket);
    // Still the partition's restore: not superseded by a newer one, nor given up. Only then does a load watch
    // the partition for a Redis restart (SnapshotStore.load).
    const current = () => this.restoring.get(partition) === ticket && this.assignment.has(partition);
    try {
      const result = await this.retrying(`restore partition ${partition}`, async () => {
        // Superseded or given up (perhaps while this waited to try again): no more fencing, loading or saving
        // for it; fencing would take the partition's transactions from the member that owns it now.
        if (!current()) return undefined;
        // Taking the partition's transactions over first fences every earlier owner and completes its
        // last transaction, so the committed offset read next is final.
        await this.transactions!.fence(partition);
        const committed: CommittedOffset | undefined = (
          await this.admin!.committedOffsets(this.options.groupId, this.topic)
        ).get(partition);
        const ends = (await this.admin!.topicOffsets(this.topic)).get(partition)!;
        const offset = committed?.offset ?? ends.low;
        if (BigInt(offset) > BigInt(ends.high))
          // The records the group committed past are not there: the topic was deleted and created again, or
          // its log truncated. Records written since, up to the committed offset, would pass unread.
          this.log.warn(
            { partition, committed: offset, end: ends.high },
            "the committed offset is past the partition's end (the topic was recreated or truncated): records up to the committed offset will not be read; reset the group's offsets (sluice groups --set) to read them",
          );
        const snapshots = this.ports.snapshots;
        if (!snapshots || !this.definition.windowed) return { committed, offset, restored: undefined };
        const epoch = this.options.epoch;
        const named = epoch === undefined ? undefined : snapshotsOf(committed?.metadata, epoch);
        // The verdicts the commit recorded, with or without a snapshot (see RestoredState.unnamed).
        const verdicts =
          epoch === undefined
            ? {}
            : {
                releases: releasesOf(committed?.metadata, epoch),
                unknownSchemas: unknownSchemasOf(committed?.metadata, epoch),
                closedAtEnd: closedAtEndOf(committed?.metadata, epoch),
              };
        if (named) {
          const snapshot = await snapshots.load(ref, named, current);
          if (!snapshot) throw new StateMissingError(this.topic, partition, offset);
          return {
            committed,
            offset,
            restored: {
              snapshot,
              // Restored the restore point (perhaps written moments ago): the fallback it was committed with stays one.
              fallback: snapshot.id === named[0] ? named[1] : undefined,
              ...verdicts,
            },
          };
        }
        // A partition starting without state saves that empty state first: should Redis later lose
        // the first snapshot committed after it, this one is the fallback (else there would be none).
        const empty: PartitionSnapshot = {
          id: snapshotId(offset, this.clock.now(), randomBytes(3).toString('hex')),
          offset,
          savedAt: this.clock.now(),
          watermark: null,
          windows: undefined,
        };
        await snapshots.load(ref, [], current); // watches this Redis run for the partition, as a restore does
        await snapshots.save([{ ref, snapshot: empty }]);
        return { committed, offset, restored: { snapshot: empty, ...verdicts, unnamed: true } };
      });
      if (!result || !current()) return;
      const { committed, offset, restored } = result;
      const resumeAt = this.task.assign(this.topic, partition, offset, restored);
      this.knownCommitted.set(partition, committed?.offset);
      this.consumer?.seek(partition, resumeAt);
      if (resumeAt !== offset) {
        this.log.warn(
          { partition, committed: offset, resumeAt },
          'the window state for the committed offset is lost (Redis lost recent writes): restored an older snapshot, processing the records since again',
        );
      } else this.log.info({ partition, offset, restored: restored !== undefined }, 'partition restored');
    } catch (err) {
      this.failUnlessStopping(err);
    } finally {
      if (this.restoring.get(partition) === ticket) this.restoring.delete(partition);
    }
  }

  private failUnlessStopping(err: unknown): void {
    if (!this.stopping) this.fail(err);
  }

  /** Runs `work` until it succeeds, backing off; errors that retrying cannot fix are thrown. */
  private async retrying<T>(what: string, work: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await work();
      } catch (err) {
        if ((err instanceof SluiceError && !err.retriable) || this.stopping) throw err;
        this.log.warn({ err: describeError(err) }, `cannot ${what} yet; retrying`);
        await this.clock.sleep(backoffMs(attempt, this.options.restoreRetryBackoffMs, this.options.retryBackoffMaxMs));
      }
    }
  }

  /** Redis restarted since the partitions were restored: restore them all again from what it kept. */
  private restoreAll(err: StateLostError): void {
    this.log.warn(
      { err: describeError(err) },
      'Redis restarted and may have lost recent state: restoring every partition',
    );
    this.pending = undefined;
    this.besideFailed = undefined; // its records are all read again
    this.schedule.checkpointDropped();
    for (const p of [...this.assignment]) this.restoreAgain(p);
  }

  /**
   * Drops what a partition holds and restores it from what Kafka and Redis have. It is read again from
   * the restored offset: a pause the client kept for it is lifted (onBatch pauses it again if the sink is
   * still behind), or a partition paused during an outage would stay unread for good, and look idle.
   */
  private restoreAgain(partition: number): void {
    this.release(partition);
    this.ready.set(partition, this.restore(partition));
    this.consumer?.resume([partition]);
  }

  private async onBatch(partition: number, batch: ConsumedRecord[], control: BatchControl): Promise<void> {
    if (this.stopping || !control.isCurrent()) return;
    if (this.fatal) {
      // A stream that failed for good reads nothing more; its caller stops it (the CLI exits).
      this.pauseForRetry(partition, control);
      return;
    }
    // Every assigned partition, not only this one, must be restored first: the
    // stream watermark is a minimum over all of them, and one not yet tracked
    // would let another partition's watermark close its windows early.
    await Promise.all(this.ready.values());
    if (!this.task.has(this.topic, partition) || !control.isCurrent()) return;
    const next = this.task.nextOffset(this.topic, partition)!;
    if (BigInt(control.fetchedOffset) > BigInt(next) && !(await this.passDeleted(partition, next, control))) return;
    if (this.schedule.retrying || this.paused.has(partition) || this.sinkHoldsBack(partition)) {
      // The last checkpoint failed, or the sink is slower than the input: do not pile up more work behind it.
      this.pauseForRetry(partition, control);
      return;
    }
    const end = this.endOffsets?.get(partition);
    const lastFetched = batch.at(-1);
    const records: ConsumedRecord[] =
      end === undefined || (lastFetched && BigInt(lastFetched.offset) < end)
        ? batch
        : batch.filter((m) => BigInt(m.offset) < end);
    for (let i = 0; i < records.length; i += CHUNK_RECORDS) {
      const chunk = records.slice(i, i + CHUNK_RECORDS);
      // Partitions we paused are not idle, only unread: keep their clocks running, or the window close
      // after this chunk would release them at a stream watermark the unpaused partitions pushed ahead,
      // turning their on-time events late (the timer's close already waits while anything is paused).
      if (this.paused.size > 0) this.task.resumeClock(this.clock.now());
      try {
        await this.processTraced(partition, chunk);
        this.readBackoff.succeeded();
      } catch (err) {
        if (err instanceof SluiceError && err.retriable) {
          // Redis or the registry is down: read on only after a growing delay, not at the next tick.
          if (this.readBackoff.failed())
            this.log.warn({ partition, err: describeError(err) }, 'dependency unavailable; partition paused');
          this.pauseForRetry(partition, control);
          return;
        }
        if (err instanceof SluiceError) {
          // Refused for good (a Redis that will never run the dedup claim): stop loudly now, rather than
          // after the Kafka client's retries of the batch.
          this.log.error({ partition, err: describeError(err) }, 'processing failed for good; stopping the stream');
          this.fail(err);
          this.pauseForRetry(partition, control);
          return;
        }
        throw err;
      }
      control.resolve(chunk[chunk.length - 1]!.offset);
      await control.heartbeat();
      if (this.stopping || !control.isCurrent() || !this.task.has(this.topic, partition)) return;
    }
    // Markers after the last record (a transactional topic) are past too: the next offset follows the batch.
    const last = records.at(-1)?.offset;
    if (last !== undefined && BigInt(control.lastOffset) > BigInt(last))
      this.task.skip(
        this.topic,
        partition,
        (BigInt(last) + 1n).toString(),
        this.boundedTo(partition, (BigInt(control.lastOffset) + 1n).toString()),
      );
    this.maybeCheckpoint();
    this.checkBoundedEnd();
  }

  /**
   * The client fetched from past the task's next offset. Either it read on from a position of its own
   * (after a rebalance, say): the records in between exist, and it is sent back to them. Or they are
   * gone: Kafka deleted them (retention, DeleteRecords) before this group read them, the client found
   * its position out of range and reset it to the log start, as Kafka's consumers do with
   * auto.offset.reset=earliest. Seeking back then fails the same way for ever; the task moves over the
   * deleted offsets instead (the next commit covers them), with one warning naming them, and the batch
   * is processed. True when the batch may be processed.
   */
  private async passDeleted(partition: number, next: string, control: BatchControl): Promise<boolean> {
    let low: bigint | undefined;
    try {
      low = BigInt((await this.admin!.topicOffsets(this.topic)).get(partition)?.low ?? '0');
    } catch (err) {
      // Not known now: seeking back is always safe, and the next batch asks again.
      this.log.warn({ partition, err: describeError(err) }, 'cannot read the partition’s log start; seeking back');
    }
    if (this.stopping || !control.isCurrent() || this.task.nextOffset(this.topic, partition) !== next) return false;
    if (low === undefined || low <= BigInt(next)) {
      // The client read on from a position past the task's (records in between would be skipped): go back.
      this.log.warn(
        { partition, fetchedOffset: control.fetchedOffset, nextOffset: next },
        'the fetch position is past the partition’s next record: seeking back',
      );
      this.consumer?.seek(partition, next);
      return false;
    }
    // Gone are the offsets from the task's next one up to the log start, or up to the fetch when the log
    // start moved on after the client's reset (the batch holds the records from there).
    const fetched = BigInt(control.fetchedOffset);
    const end = low < fetched ? low : fetched;
    this.log.warn(
      { partition, deleted: { from: next, to: end.toString() }, fetchedOffset: control.fetchedOffset },
      `offsets ${next} to ${end - 1n} of ${this.topic}/${partition} were deleted by Kafka (retention or DeleteRecords) before this group read them: those records are lost to the stream; reading on from ${end}`,
    );
    this.task.skip(this.topic, partition, next, this.boundedTo(partition, end.toString()));
    this.checkBoundedEnd();
    if (this.stopping) return false;
    if (end < fetched) {
      this.consumer?.seek(partition, end.toString());
      return false;
    }
    return true;
  }

  /**
   * The client's fetches keep failing (for one partition, or for all): retried by the client, and
   * logged here at most once per `FETCH_ERROR_LOG_MS` per partition, with how many failed since.
   */
  private fetchFailed(partition: number | undefined, err: unknown): void {
    const key = partition ?? -1;
    const last = this.fetchErrors.get(key);
    const now = this.clock.now();
    if (last && now - last.at < FETCH_ERROR_LOG_MS) {
      last.suppressed += 1;
      return;
    }
    this.fetchErrors.set(key, { at: now, suppressed: 0 });
    this.log.warn(
      { partition, err: describeError(err), ...(last?.suppressed ? { failedSinceLastLog: last.suppressed } : {}) },
      'fetching from Kafka failed; the client retries',
    );
  }

  /** A bounded run never moves a partition past its end offset. */
  private boundedTo(partition: number, offset: string): string {
    const end = this.endOffsets?.get(partition);
    return end !== undefined && BigInt(offset) > end ? end.toString() : offset;
  }

  /** A CONSUMER span per chunk, linked to the producer spans named in the records' trace headers. */
  private processTraced(partition: number, chunk: ConsumedRecord[]): Promise<void> {
    return withSpan(
      `process ${this.topic}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          'messaging.system': 'kafka',
          'messaging.destination.partition.id': String(partition),
          'messaging.batch.message_count': chunk.length,
        },
      },
      async (span) => {
        // Reading links costs a header parse per record: only for spans that are recorded.
        if (span.isRecording()) span.addLinks(producerLinks(chunk));
        await this.task.processBatch(this.topic, partition, chunk);
      },
    );
  }

  private pauseForRetry(partition: number, control: BatchControl): void {
    this.paused.add(partition);
    control.pause();
  }

  /** Resumes every paused partition at its first unprocessed offset. */
  private resumePaused(): void {
    if (!this.consumer || this.paused.size === 0 || this.stopping || this.fatal || this.readBackoff.holding()) return;
    const partitions = [...this.paused];
    this.paused.clear();
    for (const p of partitions) {
      const offset = this.task.nextOffset(this.topic, p);
      if (offset !== undefined) this.consumer.seek(p, offset);
    }
    this.consumer.resume(partitions);
    this.task.resumeClock(this.clock.now());
  }

  private async tick(): Promise<void> {
    if (this.stopping) return;
    // While paused, partitions look idle only because we stopped reading them: close nothing on their account.
    if (!this.schedule.retrying && this.paused.size === 0) this.task.closeWindows(this.clock.now());
    this.maybeCheckpoint(true);
    // Partitions paused because rows piled up resume as soon as a checkpoint has taken the rows over,
    // not only once it is done: waiting for its inserts as well left the stream idle for seconds.
    if (!this.schedule.retrying && (!this.checkpointing || this.task.pendingRows() < this.options.maxPendingRows))
      this.resumePaused();
    this.checkBoundedEnd();
    await this.checkState();
  }

  /** A member with nothing to commit still learns of a Redis restart: its partitions' marks may be lost too. */
  private async checkState(): Promise<void> {
    const snapshots = this.ports.snapshots;
    if (!snapshots || this.checkpointing || !this.schedule.takeStateCheck()) return;
    try {
      await snapshots.check();
    } catch (err) {
      if (err instanceof StateLostError && !this.stopping) this.restoreAll(err);
      // Anything else (Redis down) is found by the next checkpoint, which pauses and retries.
    }
  }

  private maybeCheckpoint(timerTick = false): void {
    if (this.checkpointing) {
      this.maybeFlushBeside();
      return;
    }
    const due = this.schedule.checkpointDue({
      pendingCheckpoint: this.pending !== undefined || this.besideFailed !== undefined,
      pendingRows: this.task.pendingRows(),
      timerTick,
      idle: () => this.task.idle(),
    });
    if (due) {
      this.checkpointing = this.runCheckpoint('auto').finally(() => {
        this.checkpointing = undefined;
        // Rows that piled up meanwhile (a minute's windows closing in several partitions) are taken at
        // once: the reading they paused would otherwise wait for the timer's next tick, up to half a
        // flush interval. After a failure the timer's ticks retry; stopping takes over on its own.
        if (this.rowsPiledUp()) this.maybeCheckpoint();
      });
    }
  }

  /**
   * Reading `partition` waits for the sink: twice `maxPendingRows` rows wait, and reading it adds to them,
   * either because the rows of read records alone are that many or because its own closed windows are among
   * them. A partition that has not closed the minute yet reads on: the others' closing windows are open
   * state turned into rows (a quarter of a million at 500k open partials), and holding it back only
   * delayed its own close, which needs it to read past the minute first. Once it has closed, it waits too,
   * so what is held stays bounded by one close per partition beyond the limit.
   */
  private sinkHoldsBack(partition: number): boolean {
    const limit = 2 * this.options.maxPendingRows;
    return (
      this.task.pendingRows() >= limit &&
      (this.task.pendingRows('records') >= limit || this.task.hasWindowRows(this.topic, partition))
    );
  }

  /** At least `maxPendingRows` rows wait, and nothing (stopping, a failure, a retry) says to leave them to the timer. */
  private rowsPiledUp(): boolean {
    return (
      !this.stopping && !this.fatal && !this.schedule.retrying && this.task.pendingRows() >= this.options.maxPendingRows
    );
  }

  /**
   * Rows piled up while the checkpoint in flight, its rows written, saves state and commits: writes them
   * now rather than after it. Nothing is committed for them: their offsets are covered by a later commit,
   * taken only once they are written. A flush that fails is handled as a failed checkpoint: reading
   * pauses, and it is retried with its progress before any other checkpoint is taken (a failure for good
   * stops the stream, and no later commit passes its rows). Rows written but never committed are written
   * again after a crash, which row identity makes harmless.
   */
  private maybeFlushBeside(): void {
    if (this.flushingBeside || this.besideFailed || !this.pending?.progress.rows || !this.rowsPiledUp()) return;
    // Recording a verdict first would be a second transaction beside the pending one's: the rows wait for the next checkpoint.
    if (this.task.hasUnrecordedVerdicts()) return;
    const beside = { checkpoint: this.task.takeCheckpoint(false), progress: newProgress() };
    this.resumePaused();
    this.flushingBeside = commitCheckpoint(beside.checkpoint, this.checkpointPorts(), beside.progress)
      .catch((err: unknown) => {
        this.besideFailed = beside;
        if (this.failedForGood(err)) return;
        this.schedule.checkpointFailed();
        this.log.warn({ err: describeError(err) }, 'writing rows failed; consumption paused, will retry');
        this.pauseAll();
      })
      .finally(() => {
        this.flushingBeside = undefined;
      });
  }

  /**
   * Commits the pending checkpoint, or takes a new one and commits it: `commit` saves window state and
   * commits offsets with their side records, `flush` only writes rows, `side` commits without saving
   * window state, `auto` commits once the commit interval has passed. A flush beside the last one that
   * failed is retried first.
   * On failure the checkpoint is kept for the next attempt.
   */
  private async runCheckpoint(mode: 'commit' | 'flush' | 'side' | 'auto'): Promise<void> {
    await this.flushingBeside;
    const beside = this.besideFailed;
    if (beside) {
      try {
        await commitCheckpoint(beside.checkpoint, this.checkpointPorts(), beside.progress);
        if (this.besideFailed === beside) this.besideFailed = undefined;
        // It landed: the failure it paused reading for is over (a failed commit, if any, is tried next).
        this.schedule.checkpointDone(false);
      } catch (err) {
        await this.checkpointFailed(err);
        return;
      }
    }
    if (!this.pending) {
      const committing = mode === 'commit' || mode === 'side' || (mode === 'auto' && this.schedule.commitDue());
      if (this.task.idle(committing)) {
        this.schedule.checkpointSkipped(committing);
        if (beside) this.afterCheckpoint();
        return;
      }
      this.pending = {
        checkpoint: this.task.takeCheckpoint(committing, mode !== 'side'),
        progress: newProgress(),
        commit: committing,
      };
      // The rows that made partitions pause are the checkpoint's now: read on while it writes them.
      if (!this.schedule.retrying) this.resumePaused();
    }
    const pending = this.pending;
    try {
      await commitCheckpoint(pending.checkpoint, this.checkpointPorts(), pending.progress);
      if (this.pending === pending) this.pending = undefined;
      this.schedule.checkpointDone(pending.commit);
      this.afterCheckpoint();
    } catch (err) {
      await this.checkpointFailed(err);
    }
  }

  /** A checkpoint landed: reading goes on, unless a flush beside it failed meanwhile and waits for its retry. */
  private afterCheckpoint(): void {
    if (this.besideFailed) this.schedule.checkpointFailed();
    else this.resumePaused();
  }

  /** A checkpoint (or a flush beside one) failed: it is kept and retried after a delay, reading paused. */
  private async checkpointFailed(err: unknown): Promise<void> {
    if (err instanceof StateLostError) {
      if (!this.stopping) this.restoreAll(err);
      else {
        // Dropped: the partitions are processed to the end again (goBackToLost), reading unpaused.
        this.pending = undefined;
        this.schedule.checkpointDropped();
        for (const p of this.assignment) this.dropWhileStopping(p);
      }
      return;
    }
    if (this.failedForGood(err)) return;
    // Everything stays buffered; consumption is paused until the retry succeeds.
    this.schedule.checkpointFailed();
    this.log.warn({ err: describeError(err) }, 'checkpoint failed; consumption paused, will retry');
    this.pauseAll();
    await this.schedule.retryDelay();
  }

  /** Retrying cannot help: stop loudly rather than stall quietly. True when that is the case. */
  private failedForGood(err: unknown): boolean {
    if (!(err instanceof SluiceError) || err.retriable) return false;
    this.log.error({ err: describeError(err) }, 'checkpoint failed for good; stopping the stream');
    this.fail(err);
    return true;
  }

  private pauseAll(): void {
    if (this.consumer && this.assignment.size > 0 && !this.stopping) {
      for (const p of this.assignment) this.paused.add(p);
      this.consumer.pause([...this.assignment]);
    }
  }

  /** The checkpoint's ports: state is saved and offsets committed only for partitions in the incarnation that took the checkpoint. */
  private checkpointPorts(): CheckpointPorts {
    const snapshots = this.ports.snapshots;
    return {
      sink: this.ports.sink,
      side: this.ports.side,
      rowsWritten: () => this.maybeFlushBeside(),
      snapshots: snapshots && {
        save: (entries: Checkpoint['snapshots']) =>
          snapshots.save(entries.filter((e) => this.owns(e.ref.partition, e.incarnation))),
      },
      commit: (partitions) => this.commitPartitions(partitions),
      recordVerdicts: (verdicts) => this.recordVerdicts(verdicts),
      defer: (deadLetters, partitions) => this.task.defer(deadLetters, partitions),
    };
  }

  private owns(partition: number, incarnation: number): boolean {
    return this.assignment.has(partition) && this.task.isCurrent(this.topic, partition, incarnation);
  }

  /**
   * Commits each partition this member still owns, in the incarnation the checkpoint was taken in:
   * its side records and offset in one transaction. A partition whose transaction fails (fenced by
   * another member, or an outcome Kafka did not report) is restored from what Kafka has committed,
   * and its work since then done again; the other partitions are unaffected.
   */
  private async commitPartitions(partitions: PartitionCommit[]): Promise<void> {
    const owned = partitions.filter((o) => this.owns(o.partition, o.incarnation));
    const withState = this.withState();
    await Promise.all(
      owned.map(async (o) => {
        const { named, metadata } = this.commitMetadata(o);
        try {
          await this.transactions!.commit(o.partition, o.records, { offset: o.offset, metadata });
        } catch (err) {
          this.commitDidNotLand(o, err);
          return;
        }
        if (!this.owns(o.partition, o.incarnation)) return;
        this.task.committed(o.topic, o.partition, o.offset, o.snapshot);
        this.task.verdictsRecorded(o.topic, o.partition, o.incarnation, o.unknownSchemas);
        this.knownCommitted.set(o.partition, o.offset);
        // Only now, having committed, may this member drop older snapshots; failing to is harmless.
        if (withState && named.length > 0)
          void this.ports
            .snapshots!.prune({ topic: o.topic, partition: o.partition }, offsetOfSnapshot(named[named.length - 1]!))
            .catch(() => undefined);
      }),
    );
  }

  /**
   * Commits each partition's committed offset again, its metadata holding verdicts its rows about to be
   * written may follow from (see Checkpoint.verdicts). The partitions whose commit did not land are given
   * back to be restored, as after a failed commit, and their rows are not written.
   */
  private async recordVerdicts(verdicts: Checkpoint['verdicts']): Promise<Set<number>> {
    const unrecorded = new Set<number>();
    if (!this.withState()) {
      // Commits carry no state metadata here: nothing restores a verdict, and there is nothing to record.
      for (const v of verdicts) this.task.verdictsRecorded(v.topic, v.partition, v.incarnation, v.unknownSchemas);
      return unrecorded;
    }
    await Promise.all(
      verdicts.map(async (v) => {
        if (!this.owns(v.partition, v.incarnation)) {
          unrecorded.add(v.partition);
          return;
        }
        const { metadata } = this.commitMetadata(v);
        try {
          await this.transactions!.commit(v.partition, [], { offset: v.offset, metadata });
        } catch (err) {
          unrecorded.add(v.partition);
          this.commitDidNotLand(v, err);
          return;
        }
        if (!this.owns(v.partition, v.incarnation)) return;
        this.task.verdictsRecorded(v.topic, v.partition, v.incarnation, v.unknownSchemas);
        // Before a partition's first commit this one is its first: Kafka holds the offset now, not none.
        this.knownCommitted.set(v.partition, v.offset);
      }),
    );
    return unrecorded;
  }

  /** Whether commits name window-state snapshots and the verdicts a restore from them repeats. */
  private withState(): boolean {
    return !!this.ports.snapshots && this.options.epoch !== undefined && !!this.definition.windowed;
  }

  /**
   * A commit's metadata: the restore point, then an older one Redis cannot lose with it (the fallback if
   * it loses the first), with the idle releases a restore from the older one must apply again (see
   * IdleRelease) and the schemas unknown to the live stream whose records it must dead-letter again (see
   * UnknownSchema).
   */
  private commitMetadata(
    o: PartitionIncarnation & {
      snapshot?: string;
      releases: IdleRelease[];
      unknownSchemas: UnknownSchema[];
      closedAtEnd: boolean;
    },
  ): { named: string[]; metadata?: string } {
    const { snapshot } = o;
    const named =
      snapshot === undefined
        ? []
        : [snapshot, this.task.fallbackSnapshot(o.topic, o.partition, snapshot)].filter(
            (s): s is string => s !== undefined,
          );
    if (!this.withState()) return { named };
    const since = named.length > 0 ? BigInt(offsetOfSnapshot(named.at(-1)!)) : 0n;
    const releases = o.releases.filter((r) => BigInt(r.offset) >= since);
    const unknown = o.unknownSchemas.filter((u) => BigInt(u.through) >= since);
    return { named, metadata: stateMetadata(this.options.epoch!, named, releases, unknown, o.closedAtEnd) };
  }

  /** A partition's transaction failed (fenced by another member, or an outcome Kafka did not report). */
  private commitDidNotLand(o: PartitionIncarnation, err: unknown): void {
    if (!this.owns(o.partition, o.incarnation)) return;
    if (this.stopping) {
      this.dropWhileStopping(o.partition);
      return;
    }
    const fenced = err instanceof CommitFencedError;
    this.log[fenced ? 'info' : 'warn'](
      { partition: o.partition, err: describeError(err) },
      'commit did not land: restoring the partition from its committed offset',
    );
    this.restoreAgain(o.partition);
  }

  /**
   * A partition's checkpoint did not land while this member stops: the partition leaves the task at once,
   * so no later checkpoint of the stop commits its offset past the rows that one dropped (records read
   * meanwhile would make it dirty again). Its next owner, or goBackToLost, redoes it from its last commit.
   */
  private dropWhileStopping(partition: number): void {
    this.task.revoke(this.topic, partition);
    this.lostWhileStopping.add(partition);
  }

  private checkBoundedEnd(): void {
    if (!this.endOffsets || this.stopping) return;
    if (this.assignment.size < this.endOffsets.size) return; // a bounded run owns every partition
    for (const [partition, end] of this.endOffsets) {
      const next = this.task.nextOffset(this.topic, partition);
      if (next === undefined || BigInt(next) < end) return;
    }
    this.stopping = true;
    void this.finishBounded();
  }

  /**
   * Commits what was processed, then closes every open window and writes its rows without committing
   * again: the group's saved state stays as the input left it, so a later run (bounded or not) goes on
   * from there and closes those windows when its watermark passes them, instead of finding them closed
   * early and sending their on-time events to `.late`.
   */
  private async finishBounded(): Promise<void> {
    try {
      await this.quiesce();
      await this.flushAll(Number.POSITIVE_INFINITY);
      if (this.goBackToLost()) return;
      if (this.options.closeWindowsAtEnd !== false) {
        this.task.closeAllWindows();
        await this.flushAll(Number.POSITIVE_INFINITY, 'flush');
        // Rows ClickHouse refused among them are dead letters: commit those (at the same offsets)
        // without saving the closed windows.
        await this.flushAll(Number.POSITIVE_INFINITY, 'side');
        if (this.goBackToLost()) return;
      }
      await this.close();
      this.finish(this.summary());
    } catch (err) {
      this.fail(err);
    }
  }

  /**
   * A bounded run exits 0 only once everything it processed is committed. When a final commit did not
   * land (a transaction failed, Redis restarted), the partitions it covered are restored and processed
   * to the end again, and the run finishes once they are.
   */
  private goBackToLost(): boolean {
    if (this.lostWhileStopping.size === 0) return false;
    const lost = [...this.lostWhileStopping];
    this.lostWhileStopping.clear();
    this.log.warn({ partitions: lost }, 'a final commit did not land: processing those partitions to the end again');
    this.stopping = false;
    for (const p of lost) this.restoreAgain(p);
    this.consumer?.resume([...this.assignment]);
    return true;
  }

  /**
   * Stops taking new records but stays in the group, so the final commit is
   * still accepted as this member's (leaving first would fence it).
   */
  private async quiesce(): Promise<void> {
    if (this.consumer && this.assignment.size > 0) this.consumer.pause([...this.assignment]);
    await Promise.all(this.inflight);
    await this.checkpointing;
    await this.flushingBeside;
  }

  /** Commits (or with `flush`, writes the rows) until nothing is pending, retrying for up to `timeoutMs`. */
  private async flushAll(timeoutMs: number, mode: 'commit' | 'flush' | 'side' = 'commit'): Promise<void> {
    const deadline = this.clock.now() + timeoutMs;
    await this.checkpointing;
    while (this.pending || this.flushingBeside || this.besideFailed || !this.task.idle(mode !== 'flush')) {
      if (this.fatal) throw this.fatal;
      if (this.clock.now() > deadline)
        throw new SluiceError('SHUTDOWN_TIMEOUT', `could not flush and commit within ${timeoutMs} ms`);
      await this.runCheckpoint(mode);
    }
    if (this.fatal) throw this.fatal;
  }

  /** SIGTERM: stop fetching, flush and commit what was processed, leave the group. */
  async stop(): Promise<RunSummary> {
    if (!this.stopping) {
      this.stopping = true;
      try {
        await this.quiesce();
        await this.flushAll(this.options.shutdownTimeoutMs);
        this.finish(this.summary());
      } catch (err) {
        // What was not committed is redone by the partitions' next owner; the run itself failed.
        this.fail(err);
      } finally {
        await this.close();
      }
    }
    return this.done;
  }

  private async close(): Promise<void> {
    this.schedule.stopTimer();
    await this.transactions?.close().catch(() => undefined);
    await this.consumer?.disconnect().catch(() => undefined);
    await this.admin?.disconnect().catch(() => undefined);
  }

  status(): RunnerStatus {
    const positions: Record<number, string> = {};
    for (const p of this.assignment) {
      const next = this.task.nextOffset(this.topic, p);
      if (next !== undefined) positions[p] = next;
    }
    return {
      group: this.options.groupId,
      topic: this.topic,
      assigned: [...this.assignment].sort((a, b) => a - b),
      paused: [...this.assignment]
        .filter((p) => this.paused.has(p) || !this.task.has(this.topic, p))
        .sort((a, b) => a - b),
      positions,
      checkpointPending: this.schedule.retrying,
      lastCheckpointAt: this.schedule.lastCheckpointTime,
      checkpoints: this.schedule.checkpoints,
      counters: { ...this.task.counters },
      ...this.task.eventTime(this.clock.now()),
      pendingRows: this.task.pendingRows(),
      stopping: this.stopping,
    };
  }

  private summary(): RunSummary {
    return {
      ...this.task.counters,
      seconds: (this.clock.now() - this.started) / 1000,
      checkpoints: this.schedule.checkpoints,
      lateShare: lateShare(this.task.counters),
    };
  }
}
