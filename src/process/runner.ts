import type { Admin, Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { describeError, SluiceError } from '../errors';
import type { SnapshotStore } from '../state';
import { SpanKind } from '@opentelemetry/api';
import type { Logger } from '../telemetry';
import { failSpan, producerLinks, tracer } from '../telemetry/tracing';
import { commitCheckpoint, newProgress, type CheckpointPorts, type CheckpointProgress } from './checkpoint';
import type { RecordMeta, StreamDefinition } from './definition';
import type { Checkpoint, StreamCounters, StreamTask } from './task';

export interface RunnerOptions {
  groupId: string;
  /** Stop at the end offsets captured at start, closing every open window (DESIGN §3.10). */
  bounded: boolean;
  /** Checkpoint at least this often (ClickHouse prefers about one insert per second per table). */
  flushIntervalMs: number;
  /**
   * Save window state and commit offsets at least this often; the checkpoints in between only write
   * outputs. A commit snapshots every dirty partition's whole window state, so its cost grows with the
   * open windows, not with the records since the last one (cf. Kafka Streams' commit.interval.ms).
   */
  commitIntervalMs: number;
  /** ... or as soon as this many rows wait for the sink. */
  maxPendingRows: number;
  /** SIGTERM: how long the final flush and commit may take before giving up. */
  shutdownTimeoutMs: number;
  sessionTimeoutMs: number;
  /**
   * Bounded runs: stop at these offsets (per partition, the first offset not to process) instead of
   * the end offsets seen at start; records at or past them are never processed. Replays of a range use it.
   */
  endOffsets?: Map<number, bigint>;
  /**
   * Bounded runs: close every open window at the end (the default). false leaves windows the watermark
   * has not closed open (saved in the last snapshot), because their rows are not final yet: a replay of a
   * range must not replace the live stream's rows with a window cut off at the replay's end.
   */
  closeWindowsAtEnd?: boolean;
}

/** A live view of the runner for metrics, health checks and the status page. */
export interface RunnerStatus {
  group: string;
  topic: string;
  assigned: number[];
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
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Records per processing step: one dedup round trip each, and small enough
 * that partitions processed concurrently interleave in event time instead of
 * one partition running far ahead of the others within a fetch.
 */
const CHUNK_RECORDS = 500;

/**
 * Runs a StreamTask as a member of a Kafka consumer group.
 *
 * Nothing here waits for long inside the consumer's batch callback: when the
 * sink or Redis is slow or down, the affected partitions are paused and the
 * callback returns, so heartbeats go on and the member is never kicked out of
 * the group for being slow. Paused partitions resume by themselves once the
 * pending checkpoint commits, re-reading from the first unprocessed offset.
 */
export class StreamRunner<E> {
  private consumer?: Consumer;
  private admin?: Admin;
  private readonly topic: string;
  private assignment = new Set<number>();
  private readonly ready = new Map<number, Promise<void>>();
  private readonly paused = new Set<number>();
  private pending?: { checkpoint: Checkpoint; progress: CheckpointProgress; commit: boolean };
  private checkpointing?: Promise<void>;
  /** The pending checkpoint failed at least once and has not committed since: consumption stays paused. */
  private failing = false;
  /** A checkpoint error that retrying cannot fix; the run has failed with it. */
  private fatal?: SluiceError;
  private lastCheckpointAt = Date.now();
  private lastCommitAt = Date.now();
  private timer?: NodeJS.Timeout;
  private stopping = false;
  private checkpoints = 0;
  /** The batch callback in progress, awaited before the final flush. */
  private inflight: Promise<void> = Promise.resolve();
  private readonly started = Date.now();
  private endOffsets?: Map<number, bigint>;
  private finish!: (summary: RunSummary) => void;
  private fail!: (err: unknown) => void;
  /** Resolves when a bounded run has processed everything, or after stop(). */
  readonly done: Promise<RunSummary>;

  constructor(
    private readonly kafka: Kafka,
    private readonly definition: StreamDefinition<E>,
    private readonly task: StreamTask<E>,
    private readonly ports: Omit<CheckpointPorts, 'commit'> & { snapshots?: SnapshotStore },
    private readonly options: RunnerOptions,
    private readonly log: Logger,
  ) {
    this.topic = definition.source.topic;
    this.done = new Promise((resolve, reject) => {
      this.finish = resolve;
      this.fail = reject;
    });
  }

  async start(): Promise<void> {
    this.admin = this.kafka.admin();
    await this.admin.connect();
    if (this.options.bounded && this.options.endOffsets) {
      this.endOffsets = new Map(this.options.endOffsets);
    } else if (this.options.bounded) {
      const offsets = await this.admin.fetchTopicOffsets(this.topic);
      this.endOffsets = new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
    }
    const consumer = this.kafka.consumer({
      groupId: this.options.groupId,
      sessionTimeout: this.options.sessionTimeoutMs,
      heartbeatInterval: Math.min(3000, Math.floor(this.options.sessionTimeoutMs / 3)),
      maxWaitTimeInMs: 200,
      // Every assigned partition must fit in one fetch: a partition left out of the first fetches
      // holds the stream watermark at -Infinity while the others run ahead (DESIGN §3.5).
      maxBytesPerPartition: 1024 * 1024,
      maxBytes: 64 * 1024 * 1024,
      retry: { retries: 8 },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => this.onAssignment(payload.memberAssignment[this.topic] ?? []));
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (!payload.restart) this.fail(payload.error);
    });
    await consumer.connect();
    await consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      // Partitions are processed side by side in small chunks (see onBatch), so event time advances
      // evenly across them and the stream watermark (their minimum) is known early.
      partitionsConsumedConcurrently: 8,
      eachBatch: (payload) => {
        const run = this.onBatch(payload);
        this.inflight = run.catch(() => undefined);
        return run;
      },
    });
    this.timer = setInterval(() => void this.tick(), Math.max(50, Math.floor(this.options.flushIntervalMs / 2)));
    this.log.info({ group: this.options.groupId, topic: this.topic, bounded: this.options.bounded }, 'stream started');
  }

  /** The group's new assignment: drop what we lost, restore what we gained. */
  private onAssignment(partitions: number[]): void {
    const next = new Set(partitions);
    for (const p of this.assignment) {
      if (!next.has(p)) {
        this.task.revoke(this.topic, p);
        this.ready.delete(p);
        this.paused.delete(p);
      }
    }
    const gained = [...next].filter((p) => !this.assignment.has(p));
    for (const p of gained) this.ready.set(p, this.restore(p));
    this.assignment = next;
    // kafkajs keeps a partition's pause across rebalances, while this runner forgets the pause of a
    // partition it loses (above): one paused when it went and handed back later would never be read
    // again. Gained partitions start unpaused; onBatch pauses them again if the sink is still behind.
    if (gained.length > 0) this.consumer?.resume([{ topic: this.topic, partitions: gained }]);
    // Nothing was read while the group rebalanced: that time is not idleness of the partitions we kept.
    this.task.resumeClock();
    this.log.info({ partitions: [...next].sort((a, b) => a - b) }, 'partitions assigned');
  }

  /** Loads a partition's committed offset and the window state snapshot saved for exactly that offset. */
  private async restore(partition: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const [committed] = await this.admin!.fetchOffsets({ groupId: this.options.groupId, topics: [this.topic] });
        let offset = committed!.partitions.find((p) => p.partition === partition)?.offset ?? '-1';
        if (offset === '-1') {
          const ends = await this.admin!.fetchTopicOffsets(this.topic);
          offset = ends.find((o) => o.partition === partition)!.low;
        }
        const snapshot = this.ports.snapshots ? await this.ports.snapshots.load({ topic: this.topic, partition }, offset) : undefined;
        if (!this.assignment.has(partition) && this.assignment.size > 0) return;
        this.task.assign(this.topic, partition, offset, snapshot);
        this.log.info({ partition, offset, restored: snapshot !== undefined }, 'partition restored');
        return;
      } catch (err) {
        this.log.warn({ partition, err: describeError(err) }, 'cannot restore partition yet; retrying');
        await sleep(Math.min(5000, 200 * 2 ** attempt));
      }
    }
  }

  private async onBatch({ batch, resolveOffset, heartbeat, pause, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const partition = batch.partition;
    if (this.stopping || !isRunning() || isStale()) return;
    // Every assigned partition, not only this one, must be restored first: the
    // stream watermark is a minimum over all of them, and one not yet tracked
    // would let another partition's watermark close its windows early.
    await Promise.all(this.ready.values());
    if (!this.task.has(this.topic, partition)) return;
    if (this.failing || this.paused.has(partition) || this.task.pendingRows() >= 2 * this.options.maxPendingRows) {
      // The last checkpoint failed, or the sink is slower than the input: do not pile up more work behind it.
      this.pauseForRetry(partition, pause);
      return;
    }
    const end = this.options.endOffsets?.get(partition);
    const last = batch.messages.at(-1);
    const messages = end === undefined || (last && BigInt(last.offset) < end) ? batch.messages : batch.messages.filter((m) => BigInt(m.offset) < end);
    const records: RecordMeta[] = messages.map((m) => ({
      topic: this.topic,
      partition,
      offset: m.offset,
      timestamp: m.timestamp,
      key: m.key ?? null,
      value: m.value ?? null,
      headers: m.headers ?? {},
    }));
    for (let i = 0; i < records.length; i += CHUNK_RECORDS) {
      const chunk = records.slice(i, i + CHUNK_RECORDS);
      // Partitions we paused are not idle, only unread: keep their clocks running, or the window close
      // after this chunk would release them at a stream watermark the unpaused partitions pushed ahead,
      // turning their on-time events late (the timer's close already waits while anything is paused).
      if (this.paused.size > 0) this.task.resumeClock();
      try {
        await this.processTraced(partition, chunk);
      } catch (err) {
        if (err instanceof SluiceError && err.retriable) {
          this.log.warn({ partition, err: describeError(err) }, 'dependency unavailable; partition paused');
          this.pauseForRetry(partition, pause);
          return;
        }
        throw err;
      }
      resolveOffset(chunk[chunk.length - 1]!.offset);
      await heartbeat();
      if (this.stopping || !isRunning() || isStale() || !this.task.has(this.topic, partition)) return;
    }
    this.maybeCheckpoint();
    this.checkBoundedEnd();
  }

  /** A CONSUMER span per chunk, linked to the producer spans named in the records' trace headers. */
  private processTraced(partition: number, chunk: RecordMeta[]): Promise<void> {
    return tracer().startActiveSpan(
      `process ${this.topic}`,
      { kind: SpanKind.CONSUMER, attributes: { 'messaging.system': 'kafka', 'messaging.destination.partition.id': String(partition), 'messaging.batch.message_count': chunk.length } },
      async (span) => {
        // Reading links costs a header parse per record: only for spans that are recorded.
        if (span.isRecording()) span.addLinks(producerLinks(chunk));
        try {
          await this.task.processBatch(this.topic, partition, chunk);
        } catch (err) {
          failSpan(span, err);
          throw err;
        } finally {
          span.end();
        }
      },
    );
  }

  private pauseForRetry(partition: number, pause: () => () => void): void {
    if (this.paused.has(partition)) {
      pause();
      return;
    }
    this.paused.add(partition);
    pause();
  }

  /** Resumes every paused partition at its first unprocessed offset. */
  private resumePaused(): void {
    if (!this.consumer || this.paused.size === 0 || this.stopping) return;
    const partitions = [...this.paused];
    this.paused.clear();
    for (const p of partitions) {
      const offset = this.task.nextOffset(this.topic, p);
      if (offset !== undefined) this.consumer.seek({ topic: this.topic, partition: p, offset });
    }
    this.consumer.resume([{ topic: this.topic, partitions }]);
    this.task.resumeClock();
  }

  private async tick(): Promise<void> {
    if (this.stopping) return;
    // While paused, partitions look idle only because we stopped reading them: close nothing on their account.
    if (!this.failing && this.paused.size === 0) this.task.closeWindows();
    this.maybeCheckpoint(true);
    // Partitions paused because rows piled up resume as soon as a checkpoint has taken the rows over,
    // not only once it is done: waiting for its inserts as well left the stream idle for seconds.
    if (!this.failing && (!this.checkpointing || this.task.pendingRows() < this.options.maxPendingRows)) this.resumePaused();
    this.checkBoundedEnd();
  }

  private maybeCheckpoint(timerTick = false): void {
    if (this.checkpointing) return;
    const due = Date.now() - this.lastCheckpointAt >= this.options.flushIntervalMs;
    const full = this.task.pendingRows() >= this.options.maxPendingRows;
    if (this.pending || full || (due && (timerTick || !this.task.idle()))) {
      this.checkpointing = this.runCheckpoint().finally(() => {
        this.checkpointing = undefined;
      });
    }
  }

  /**
   * Commits the pending checkpoint, or takes a new one (committing when `commit` is set or the commit
   * interval has passed); on failure keeps it for the next attempt.
   */
  private async runCheckpoint(commit = false): Promise<void> {
    if (!this.pending) {
      const committing = commit || Date.now() - this.lastCommitAt >= this.options.commitIntervalMs;
      if (this.task.idle(committing)) {
        this.lastCheckpointAt = Date.now();
        if (committing) this.lastCommitAt = Date.now();
        return;
      }
      this.pending = { checkpoint: this.task.takeCheckpoint(committing), progress: newProgress(), commit: committing };
      // The rows that made partitions pause are the checkpoint's now: read on while it writes them.
      if (!this.failing) this.resumePaused();
    }
    const { checkpoint, progress, commit: committed } = this.pending;
    try {
      await commitCheckpoint(checkpoint, { ...this.ports, commit: (offsets) => this.commitOffsets(offsets) }, progress);
      this.pending = undefined;
      this.failing = false;
      this.checkpoints += 1;
      this.lastCheckpointAt = Date.now();
      if (committed) this.lastCommitAt = Date.now();
      this.resumePaused();
    } catch (err) {
      if (err instanceof SluiceError && !err.retriable) {
        // Retrying cannot help (e.g. rows ClickHouse can never accept): stop loudly rather than stall quietly.
        this.log.error({ err: describeError(err) }, 'checkpoint failed for good; stopping the stream');
        this.fatal = err;
        this.fail(err);
        return;
      }
      // Everything stays buffered; consumption is paused until the retry succeeds.
      this.failing = true;
      this.log.warn({ err: describeError(err) }, 'checkpoint failed; consumption paused, will retry');
      if (this.consumer && this.assignment.size > 0 && !this.stopping) {
        for (const p of this.assignment) this.paused.add(p);
        try {
          this.consumer.pause([{ topic: this.topic, partitions: [...this.assignment] }]);
        } catch {
          /* the consumer is not running (start-up or shutdown): nothing to pause */
        }
      }
      await sleep(500);
    }
  }

  /** Commits only partitions this member still owns: others now belong to another member's work. */
  private async commitOffsets(offsets: Checkpoint['offsets']): Promise<void> {
    const owned = offsets.filter((o) => this.assignment.has(o.partition));
    if (owned.length === 0 || !this.consumer) return;
    try {
      await this.consumer.commitOffsets(owned);
      for (const o of owned) this.task.committed(o.topic, o.partition, o.offset);
    } catch (err) {
      // A rebalance fenced this commit: the partitions' new owners redo the work from the old offsets,
      // and partitions this member kept are committed again by its next checkpoint.
      if (/rebalanc|generation|member/i.test(describeError(err))) {
        this.log.info({ err: describeError(err) }, 'commit fenced by a rebalance; new owners resume from the last commit');
        for (const o of owned) this.task.commitLost(o.topic, o.partition);
        return;
      }
      throw new SluiceError('KAFKA_COMMIT_FAILED', `cannot commit offsets: ${describeError(err)}`, { retriable: true, cause: err });
    }
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

  private async finishBounded(): Promise<void> {
    try {
      await this.quiesce();
      if (this.options.closeWindowsAtEnd !== false) this.task.closeAllWindows();
      await this.flushAll(Number.POSITIVE_INFINITY);
      await this.close();
      this.finish(this.summary());
    } catch (err) {
      this.fail(err);
    }
  }

  /**
   * Stops taking new records but stays in the group, so the final commit is
   * still accepted as this member's (leaving first would fence it).
   */
  private async quiesce(): Promise<void> {
    if (this.consumer && this.assignment.size > 0) this.consumer.pause([{ topic: this.topic, partitions: [...this.assignment] }]);
    await this.inflight;
    await this.checkpointing;
  }

  /** Commits until nothing is pending, retrying for up to `timeoutMs`. */
  private async flushAll(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await this.checkpointing;
    while (this.pending || !this.task.idle()) {
      if (this.fatal) throw this.fatal;
      if (Date.now() > deadline) throw new SluiceError('SHUTDOWN_TIMEOUT', `could not flush and commit within ${timeoutMs} ms`);
      await this.runCheckpoint(true);
    }
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
    if (this.timer) clearInterval(this.timer);
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
      paused: [...this.paused].sort((a, b) => a - b),
      positions,
      checkpointPending: this.failing,
      lastCheckpointAt: this.lastCheckpointAt,
      checkpoints: this.checkpoints,
      counters: { ...this.task.counters },
      ...this.task.eventTime(),
      pendingRows: this.task.pendingRows(),
      stopping: this.stopping,
    };
  }

  private summary(): RunSummary {
    return { ...this.task.counters, seconds: (Date.now() - this.started) / 1000, checkpoints: this.checkpoints };
  }
}
