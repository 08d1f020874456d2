import { SluiceError } from '../errors';
import type { ConsumedRecord } from './record';

/**
 * The consumer-group client the stream runtime needs, in the project's own
 * terms. The runtime never sees a Kafka library's types: this interface is
 * implemented on kafkajs (kafkajs/group.ts) and by the simulation's model of
 * Kafka (test/sim), which is what lets the runner be tested on simulated time.
 */

/** A committed position, with the metadata string Kafka stores beside it. */
export interface CommittedOffset {
  offset: string;
  metadata: string | null;
}

/** What the group gave this member after a (re)join. */
export interface Assignment {
  /** Every partition of the subscribed topic this member owns now. */
  partitions: number[];
  /**
   * The member id the group knows this member by. It changes when the member
   * was expelled (session timeout) and joined again as a new member: then
   * other members may have owned and committed its partitions meanwhile.
   */
  memberId: string;
}

/** Per-batch calls back into the client. */
export interface BatchControl {
  /** The offset the client fetched this batch from: its position for the partition when it fetched. */
  fetchedOffset: string;
  /**
   * The batch's last offset, which can be past its last record: a transactional topic holds commit
   * markers (and records of aborted transactions), which take offsets but are never delivered.
   */
  lastOffset: string;
  /** The records before and at `offset` are processed: the next fetch of the partition starts after it. */
  resolve(offset: string): void;
  /** Keeps the membership alive during a long batch. */
  heartbeat(): Promise<void>;
  /** Stops fetching this partition until `resume`. */
  pause(): void;
  /** False once the batch belongs to an older assignment or the consumer is stopping: stop working on it. */
  isCurrent(): boolean;
}

export interface GroupHandlers {
  /** After each join, before any batch of the new assignment. Synchronous: the client waits for nothing. */
  onAssignment(assignment: Assignment): void;
  /** Consecutive records of one partition. Several partitions may be in flight at once. */
  onBatch(partition: number, records: ConsumedRecord[], control: BatchControl): Promise<void>;
  /** The client stopped for good (it will not restart by itself). */
  onCrash(err: unknown): void;
  /** The client read offsets `from` up to (not including) `to` of a partition, none of them a record (markers, aborted records). */
  onSkip?(partition: number, from: string, to: string): void;
  /**
   * A fetch failed, for one partition or (undefined) for all; the client retries it by itself. Called
   * on every failure: a loop that keeps failing must be visible, and the handler decides how often to say so.
   */
  onFetchError?(partition: number | undefined, err: unknown): void;
}

export interface GroupConsumerOptions {
  groupId: string;
  topic: string;
  sessionTimeoutMs: number;
  /** How long the broker may hold a fetch open waiting for records (default 200 ms). */
  maxWaitMs?: number;
  /** How often a failed request is retried before the consumer gives up and is rebuilt (default 8). */
  retries?: number;
}

export interface GroupConsumer {
  /** Connects, joins the group and starts delivering batches to `handlers`. */
  start(handlers: GroupHandlers): Promise<void>;
  pause(partitions: number[]): void;
  resume(partitions: number[]): void;
  /** The next fetch of `partition` starts at `offset`. */
  seek(partition: number, offset: string): void;
  /**
   * Commits as a member of the current generation. Rejects with
   * CommitFencedError when the group moved on (a rebalance, or this member was
   * expelled): the commit did not land.
   */
  commit(offsets: { partition: number; offset: string; metadata?: string }[]): Promise<void>;
  disconnect(): Promise<void>;
}

/** The admin calls the runtime makes. */
export interface GroupAdmin {
  /** The group's committed offsets of `topic`; partitions without one are absent. */
  committedOffsets(groupId: string, topic: string): Promise<Map<number, CommittedOffset>>;
  /** Each partition's first and next-to-be-written offsets. */
  topicOffsets(topic: string): Promise<Map<number, { low: string; high: string }>>;
  disconnect(): Promise<void>;
}

/** A record a stream writes to a side topic (`.dlq`, `.late`). */
export interface SideRecord {
  topic: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string | Buffer>;
}

/**
 * Exactly-once output per input partition: the side records a checkpoint
 * made from a partition, and the partition's new committed offset, in one
 * Kafka transaction. A reader with `read_committed` sees the records once,
 * whatever crashes and rebalances happened.
 *
 * Each input partition has a transactional identity of its own (derived from
 * the group, topic and partition), so whoever takes a partition over fences
 * every earlier owner: that owner's open transaction is aborted and its later
 * ones are refused (CommitFencedError), even if it does not know yet that it
 * lost the partition (a long pause past its session timeout).
 */
export interface PartitionTransactions {
  /**
   * Takes the partition's transactional identity over, fencing any earlier holder; resolves once
   * any transaction of the identity still in flight is complete, so the committed offset read after
   * it is final.
   */
  fence(partition: number): Promise<void>;
  /**
   * Writes `records` and commits `offset` for the group in one transaction. Rejects with
   * CommitFencedError when another member holds the partition's identity now (nothing was written),
   * and with a retriable error when the outcome is not known: calling again with the same arguments
   * then writes them at most once.
   */
  commit(partition: number, records: SideRecord[], offset: { offset: string; metadata?: string }): Promise<void>;
  /** The partition is no longer this member's. */
  release(partition: number): Promise<void>;
  close(): Promise<void>;
}

/** What the runtime asks of a Kafka client: one consumer-group member, an admin, and its partitions' transactions. */
export interface StreamKafka {
  consumer(options: GroupConsumerOptions): GroupConsumer;
  admin(): Promise<GroupAdmin>;
  transactions(options: { groupId: string; topic: string }): PartitionTransactions;
}

/** A commit refused because this member's generation is over: the partitions' next owners resume from the last commit. */
export class CommitFencedError extends SluiceError {
  constructor(message: string, cause?: unknown) {
    super('COMMIT_FENCED', `commit fenced by a rebalance: ${message}`, { retriable: false, cause });
    this.name = 'CommitFencedError';
  }
}
