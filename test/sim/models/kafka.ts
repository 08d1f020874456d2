import type { RecordHeaders, ConsumedRecord } from '../../../src/kafka';
import {
  CommitFencedError,
  type CommittedOffset,
  type GroupAdmin,
  type GroupConsumer,
  type GroupConsumerOptions,
  type GroupHandlers,
  type PartitionTransactions,
  type SideRecord,
  type StreamKafka,
} from '../../../src/kafka/group';
import type { Owner, Scheduler } from '../scheduler';

/**
 * An in-memory model of the Kafka the runtime relies on: a log per
 * partition, consumer groups with generations, eager rebalancing, session
 * timeouts and fencing, committed offsets with metadata.
 *
 * What it models of a kafkajs member, because the runtime's correctness
 * depends on it:
 * - after every join the fetch position of each assigned partition is its
 *   committed offset (or the log start), whatever the member read before;
 * - `resolve` moves the position past a record; `seek` sets it;
 * - a member that does not heartbeat for the session timeout is expelled:
 *   its commits are refused from then on, and it joins again under a new
 *   member id when it next talks to the coordinator;
 * - every join re-assigns every partition (eager protocol), and batches of
 *   the old generation are told they are stale;
 * - transactions: each transactional id has an epoch; taking the id over
 *   bumps it, and a producer of an older epoch is refused (fenced). A
 *   transaction appends its records and commits its offset atomically (a
 *   `read_committed` reader never sees an aborted one, so the model keeps
 *   committed transactions only); `transactionFailure` makes some fail before
 *   they apply, or apply and lose their answer (an outcome the producer does
 *   not learn).
 */

export interface SimRecord {
  offset: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeaders;
  /** A transaction's commit marker: it takes an offset, and no reader ever receives it. */
  marker?: boolean;
}

interface Member {
  id: string;
  consumer: SimGroupConsumer;
  lastHeartbeat: number;
  /** The generation this member last joined. */
  generation: number;
}

class Group {
  generation = 0;
  readonly members = new Map<string, Member>();
  readonly assignment = new Map<string, number[]>();
  readonly committed = new Map<number, CommittedOffset>();
  constructor(
    readonly id: string,
    readonly topic: string,
  ) {}
}

/** Latency of one request to the model, in simulated ms. */
const RTT = 2;

export class SimKafka {
  readonly topics = new Map<string, SimRecord[][]>();
  private readonly groups = new Map<string, Group>();
  private memberSeq = 0;
  /** How often the coordinator looks for members whose session expired. */
  sessionTimeoutCheckMs = 1000;
  /** Per transactional id: the epoch of its current holder. */
  private readonly epochs = new Map<string, number>();
  /** Probability that a transaction fails; half of the failures apply before the answer is lost. */
  transactionFailure = 0;
  /** Draws for transactionFailure (the world's seeded random). */
  random: () => number = () => 1;

  constructor(
    readonly scheduler: Scheduler,
    world: Owner,
  ) {
    const check = () => {
      this.expireMembers();
      scheduler.at(world, this.sessionTimeoutCheckMs, check);
    };
    scheduler.at(world, this.sessionTimeoutCheckMs, check);
  }

  createTopic(name: string, partitions: number): void {
    if (!this.topics.has(name))
      this.topics.set(
        name,
        Array.from({ length: partitions }, () => []),
      );
  }

  partitions(topic: string): SimRecord[][] {
    const t = this.topics.get(topic);
    if (!t) throw new Error(`no topic ${topic} in the model`);
    return t;
  }

  /** Per `topic/partition`: the log start, the first offset not deleted (retention, DeleteRecords). */
  private readonly logStarts = new Map<string, number>();

  logStart(topic: string, partition: number): number {
    return this.logStarts.get(`${topic}/${partition}`) ?? 0;
  }

  /** Deletes the partition's records before `offset`, as DeleteRecords (or retention) does. */
  deleteRecords(topic: string, partition: number, offset: number): void {
    this.logStarts.set(`${topic}/${partition}`, Math.max(this.logStart(topic, partition), offset));
  }

  /** Appends a commit marker (what a transactional producer's commit leaves in each partition it wrote to). */
  produceMarker(topic: string, partition: number): void {
    this.produce(topic, partition, {
      timestamp: this.scheduler.now(),
      key: null,
      value: null,
      headers: {},
      marker: true,
    });
  }

  /** Appends a record; returns its offset. */
  produce(topic: string, partition: number, record: Omit<SimRecord, 'offset'>): number {
    const log = this.partitions(topic)[partition]!;
    log.push({ ...record, offset: log.length });
    return log.length - 1;
  }

  group(groupId: string, topic: string): Group {
    let g = this.groups.get(groupId);
    if (!g) {
      g = new Group(groupId, topic);
      this.groups.set(groupId, g);
    }
    return g;
  }

  /** What `sluice replay` does to its own group before it starts (admin setOffsets, no metadata). */
  setOffsets(groupId: string, topic: string, offsets: Map<number, bigint>): void {
    const g = this.group(groupId, topic);
    g.committed.clear();
    for (const [p, o] of offsets) g.committed.set(p, { offset: String(o), metadata: null });
  }

  deleteGroup(groupId: string): void {
    this.groups.delete(groupId);
  }

  committed(groupId: string): Map<number, CommittedOffset> {
    return new Map(this.groups.get(groupId)?.committed ?? []);
  }

  /** Each process's consumer, so faults can reach it. */
  readonly consumers = new Map<Owner, SimGroupConsumer>();

  /** The runtime's Kafka for one process: every request dies with it. */
  client(owner: Owner): StreamKafka {
    return {
      consumer: (options) => {
        const consumer = new SimGroupConsumer(this, owner, options);
        this.consumers.set(owner, consumer);
        return consumer;
      },
      admin: async () => this.admin(owner),
      transactions: ({ groupId, topic }) => this.transactions(owner, groupId, topic),
    };
  }

  private transactions(owner: Owner, groupId: string, topic: string): PartitionTransactions {
    const held = new Map<number, { id: string; epoch: number }>();
    return {
      fence: (partition) =>
        this.request(owner, () => {
          const id = `${groupId}.${topic}.${partition}`;
          const epoch = (this.epochs.get(id) ?? 0) + 1;
          this.epochs.set(id, epoch);
          held.set(partition, { id, epoch });
        }),
      commit: (partition, records, offset) =>
        this.request(owner, () => {
          const producer = held.get(partition);
          if (!producer || this.epochs.get(producer.id) !== producer.epoch) {
            held.delete(partition);
            throw new CommitFencedError(`the transactions of ${topic}/${partition} were taken over`);
          }
          const failure =
            this.random() < this.transactionFailure ? (this.random() < 0.5 ? 'before' : 'after') : undefined;
          if (failure === 'after') this.applyTransaction(groupId, topic, partition, records, offset);
          if (failure) {
            held.delete(partition);
            throw new Error(
              `transaction of ${topic}/${partition} failed ${failure === 'after' ? 'after it applied' : 'before it applied'}`,
            );
          }
          this.applyTransaction(groupId, topic, partition, records, offset);
        }),
      release: async (partition) => {
        held.delete(partition);
      },
      close: async () => held.clear(),
    };
  }

  private applyTransaction(
    groupId: string,
    topic: string,
    partition: number,
    records: SideRecord[],
    offset: { offset: string; metadata?: string },
  ): void {
    for (const r of records) {
      this.createTopic(r.topic, 1);
      this.produce(r.topic, 0, { timestamp: this.scheduler.now(), key: r.key, value: r.value, headers: r.headers });
    }
    this.group(groupId, topic).committed.set(partition, { offset: offset.offset, metadata: offset.metadata ?? null });
  }

  private admin(owner: Owner): GroupAdmin {
    return {
      committedOffsets: (groupId) => this.request(owner, () => this.committed(groupId)),
      topicOffsets: (topic) =>
        this.request(
          owner,
          () =>
            new Map(
              this.partitions(topic).map((log, p) => [
                p,
                { low: String(this.logStart(topic, p)), high: String(log.length) },
              ]),
            ),
        ),
      disconnect: async () => undefined,
    };
  }

  /** Runs `work` one round trip later, if `owner` is still alive then. */
  request<T>(owner: Owner, work: () => T): Promise<T> {
    return new Promise((resolve, reject) => {
      this.scheduler.at(owner, RTT, () => {
        try {
          resolve(work());
        } catch (err) {
          reject(err);
        }
      });
    });
  }

  join(groupId: string, topic: string, consumer: SimGroupConsumer): string {
    const g = this.group(groupId, topic);
    const id = `member-${++this.memberSeq}`;
    g.members.set(id, { id, consumer, lastHeartbeat: this.scheduler.now(), generation: -1 });
    this.rebalance(g);
    return id;
  }

  leave(groupId: string, memberId: string): void {
    const g = this.groups.get(groupId);
    if (g?.members.delete(memberId)) this.rebalance(g);
  }

  /** A heartbeat: false when the member is no longer in the group (it must join again). */
  heartbeat(groupId: string, memberId: string): boolean {
    const m = this.groups.get(groupId)?.members.get(memberId);
    if (!m) return false;
    m.lastHeartbeat = this.scheduler.now();
    return true;
  }

  /** The member's assignment when a rebalance happened since its last join. */
  pendingJoin(groupId: string, memberId: string): { generation: number; partitions: number[] } | undefined {
    const g = this.groups.get(groupId);
    const m = g?.members.get(memberId);
    if (!g || !m || m.generation === g.generation) return undefined;
    m.generation = g.generation;
    return { generation: g.generation, partitions: g.assignment.get(memberId) ?? [] };
  }

  commit(
    groupId: string,
    memberId: string,
    generation: number,
    offsets: { partition: number; offset: string; metadata?: string }[],
  ): void {
    const g = this.groups.get(groupId);
    const m = g?.members.get(memberId);
    if (!g || !m) throw new CommitFencedError(`UNKNOWN_MEMBER_ID: ${memberId} is not a member of ${groupId}`);
    if (m.generation !== g.generation || generation !== g.generation)
      throw new CommitFencedError(`ILLEGAL_GENERATION: ${generation} is not ${g.generation}`);
    for (const o of offsets) {
      if (!(g.assignment.get(memberId) ?? []).includes(o.partition))
        throw new CommitFencedError(`partition ${o.partition} is not assigned to ${memberId}`);
      g.committed.set(o.partition, { offset: o.offset, metadata: o.metadata ?? null });
    }
  }

  private rebalance(g: Group): void {
    g.generation += 1;
    g.assignment.clear();
    const members = [...g.members.keys()].sort();
    const partitions = this.partitions(g.topic).length;
    for (const id of members) g.assignment.set(id, []);
    for (let p = 0; p < partitions && members.length > 0; p++) g.assignment.get(members[p % members.length]!)!.push(p);
  }

  private expireMembers(): void {
    const now = this.scheduler.now();
    for (const g of this.groups.values()) {
      let changed = false;
      for (const m of [...g.members.values()]) {
        if (now - m.lastHeartbeat > m.consumer.sessionTimeoutMs) {
          g.members.delete(m.id);
          changed = true;
        }
      }
      if (changed) this.rebalance(g);
    }
  }
}

/** How many records one fetch returns per partition. */
const MAX_BATCH = 200;
/** How long a fetch waits when there is nothing new. */
const MAX_WAIT_MS = 200;

/** One member of a group, driven like kafkajs's consumer loop. */
export class SimGroupConsumer implements GroupConsumer {
  private memberId?: string;
  private generation = -1;
  private assigned: number[] = [];
  private readonly positions = new Map<number, number>();
  private readonly pausedSet = new Set<number>();
  private handlers?: GroupHandlers;
  private running = false;
  /** Until this time the coordinator hears nothing from this member (a long GC pause, a partition from the coordinator). */
  silentUntil = 0;
  readonly sessionTimeoutMs: number;

  constructor(
    private readonly kafka: SimKafka,
    private readonly owner: Owner,
    private readonly options: GroupConsumerOptions,
  ) {
    this.sessionTimeoutMs = options.sessionTimeoutMs;
  }

  async start(handlers: GroupHandlers): Promise<void> {
    this.handlers = handlers;
    this.running = true;
    await this.kafka.request(this.owner, () => {
      this.memberId = this.kafka.join(this.options.groupId, this.options.topic, this);
    });
    void this.loop();
  }

  private heartbeat(now: number): void {
    if (now < this.silentUntil || !this.memberId) return;
    if (!this.kafka.heartbeat(this.options.groupId, this.memberId)) {
      // Expelled: kafkajs gets UNKNOWN_MEMBER_ID and joins again as a new member.
      this.memberId = this.kafka.join(this.options.groupId, this.options.topic, this);
    }
  }

  private async loop(): Promise<void> {
    // Simulated time: the scheduler's sleep, which never resolves for a process that died meanwhile.
    const sleep = (ms: number) => this.kafka.scheduler.sleep(this.owner, ms);
    while (this.running && this.owner.alive) {
      const now = this.kafka.scheduler.now();
      this.heartbeat(now);
      const pending =
        this.memberId && now >= this.silentUntil
          ? this.kafka.pendingJoin(this.options.groupId, this.memberId)
          : undefined;
      if (pending) {
        this.generation = pending.generation;
        this.assigned = pending.partitions;
        const committed = this.kafka.committed(this.options.groupId);
        this.positions.clear();
        for (const p of this.assigned) this.positions.set(p, Number(committed.get(p)?.offset ?? 0));
        this.handlers!.onAssignment({ partitions: [...this.assigned], memberId: this.memberId! });
      }
      const generation = this.generation;
      const batches: Promise<void>[] = [];
      let fetched = 0;
      for (const p of this.assigned) {
        if (this.pausedSet.has(p)) continue;
        // Out of range below the log start: reset to it, as auto.offset.reset=earliest does.
        const position = Math.max(this.positions.get(p) ?? 0, this.kafka.logStart(this.options.topic, p));
        this.positions.set(p, position);
        const log = this.kafka.partitions(this.options.topic)[p]!;
        if (position >= log.length) continue;
        const slice = log.slice(position, position + MAX_BATCH);
        const lastOffset = String(slice[slice.length - 1]!.offset);
        const records: ConsumedRecord[] = slice
          .filter((r) => !r.marker)
          .map((r) => ({
            topic: this.options.topic,
            partition: p,
            offset: String(r.offset),
            timestamp: String(r.timestamp),
            key: r.key,
            value: r.value,
            headers: r.headers,
          }));
        if (records.length === 0) {
          // As kafkajs does: a batch of markers only is never delivered; the position moves past it.
          this.positions.set(p, Number(lastOffset) + 1);
          this.handlers!.onSkip?.(p, String(position), String(Number(lastOffset) + 1));
          continue;
        }
        fetched += records.length;
        batches.push(
          this.handlers!.onBatch(p, records, {
            fetchedOffset: String(position),
            lastOffset,
            resolve: (offset) => {
              if (this.generation === generation) this.positions.set(p, Number(offset) + 1);
            },
            heartbeat: async () => this.heartbeat(this.kafka.scheduler.now()),
            pause: () => this.pausedSet.add(p),
            // What the member itself knows: an expelled member that has not noticed yet goes on (a zombie).
            isCurrent: () => this.running && this.owner.alive && this.generation === generation,
          }).catch((err: unknown) => {
            if (this.owner.alive) this.handlers!.onCrash(err);
          }),
        );
      }
      await sleep(RTT);
      await Promise.all(batches);
      await sleep(fetched > 0 ? 1 : MAX_WAIT_MS);
    }
  }

  pause(partitions: number[]): void {
    for (const p of partitions) this.pausedSet.add(p);
  }

  resume(partitions: number[]): void {
    for (const p of partitions) this.pausedSet.delete(p);
  }

  seek(partition: number, offset: string): void {
    if (this.assigned.includes(partition)) this.positions.set(partition, Number(offset));
  }

  commit(offsets: { partition: number; offset: string; metadata?: string }[]): Promise<void> {
    const memberId = this.memberId ?? '';
    const generation = this.generation;
    return this.kafka.request(this.owner, () => this.kafka.commit(this.options.groupId, memberId, generation, offsets));
  }

  async disconnect(): Promise<void> {
    this.running = false;
    if (this.memberId) this.kafka.leave(this.options.groupId, this.memberId);
  }
}
