import {
  Consumer,
  FetchIsolationLevels,
  findErrorBy,
  ListOffsetTimestamps,
  ProtocolError,
  type BaseOptions,
  type fetchV17,
  type ConsumerOptions,
} from '@platformatic/kafka';
import { sleep } from '../../clock';
import { describeError } from '../../errors';
import {
  CommitFencedError,
  type BatchControl,
  type GroupConsumer,
  type GroupConsumerOptions,
  type GroupHandlers,
} from '../group';
import { MemberIdentity, readPartition, type FetchedPartition } from './batches';
import { groupProtocolMismatch } from '../explain';

/** How long to wait before building a new consumer after the library gave one up, at most. */
const REBUILD_MAX_DELAY_MS = 10_000;
/** How long the fetch loop sleeps when it has nothing to fetch (it is woken early by resume, seek and batch ends). */
const IDLE_MS = 100;
/** Every assigned partition must fit in one fetch (kafkajs/group.ts says why). */
const MAX_BYTES_PER_PARTITION = 1024 * 1024;
const MAX_BYTES = 64 * 1024 * 1024;
/** The partition error code of a fetch position outside the partition's log. */
const OFFSET_OUT_OF_RANGE = 1;
/** Protocol errors that mean this member's generation (classic) or epoch (KIP-848) is over. */
const MEMBERSHIP_OVER = [
  'UNKNOWN_MEMBER_ID',
  'ILLEGAL_GENERATION',
  'REBALANCE_IN_PROGRESS',
  'FENCED_INSTANCE_ID',
  'FENCED_MEMBER_EPOCH',
  'STALE_MEMBER_EPOCH',
];

/** One assigned partition, from this member's point of view. */
interface PartitionState {
  /** The next offset to fetch; undefined until the committed offset (or a seek) is known. */
  position?: bigint;
  paused: boolean;
  /** A batch of the partition is in the runner's hands: nothing more is fetched for it until it returns. */
  inflight: boolean;
  /** The last offset the batch in flight resolved. */
  resolved?: bigint;
  /** Bumped by every seek: a batch fetched before it is stale. */
  seeks: number;
  /** Failed batch callbacks in a row, and when the partition may be fetched again. */
  failures: number;
  retryAt?: number;
  /** Fetches of the partition that failed in a row (the broker's error for it, or finding its offsets). */
  fetchFailures: number;
}

type Handlers = GroupHandlers;
type FetchResponse = fetchV17.FetchResponse;

function protocolError(err: unknown, ...ids: string[]): boolean {
  return ids.some((id) => findErrorBy(err as Error, 'apiId', id) !== null);
}

/**
 * A consumer-group member on @platformatic/kafka, with incremental rebalancing: KIP-848 (`consumer`,
 * the broker assigns) or the classic protocol with the cooperative-sticky assignor (`classic`). A
 * rebalance takes away only the partitions that move; the others are read on without a pause.
 *
 * The library's Consumer is used for membership only (joining, heartbeats, assignments), with an inert
 * message stream (no topics) that makes it join. Records are read by a fetch loop of our own on a second
 * Consumer that never joins, because @platformatic/kafka 2.12.1's MessagesStream cannot do what the
 * runner needs: it pauses only the whole stream (not one partition), has no seek, re-seeks every assigned
 * partition to its committed offset after each assignment change (kept ones included), never tells how
 * far it moved over commit markers, and delivers some records of aborted transactions (batches.ts).
 *
 * The assignment is read from the Consumer (`assignments`) after every heartbeat and join and before
 * every fetch, and reported to the runner whenever it changed: a fetch only ever asks for partitions
 * the runner was told about. Under KIP-848 the library acknowledges a revocation at once, without
 * waiting for the batches in flight; the partition transactions (PartitionTransactions.fence) keep a
 * former owner from committing, as they do when a member lost a partition to a session timeout.
 */
export class PlatformaticGroupConsumer implements GroupConsumer {
  private member?: Consumer;
  private fetcher?: Consumer;
  /** Bumped for every consumer built: the fetch loop and callbacks of an older one stop. */
  private generation = 0;
  private readonly identity = new MemberIdentity();
  private readonly partitions = new Map<number, PartitionState>();
  private reported?: { key: string; memberId: string };
  private handlers?: Handlers;
  private stopped = false;
  private rebuilding = false;
  private rebuilds = 0;
  private wakeUp?: () => void;
  private topicId?: string;
  /** Fetch requests sent, for the alternating partition size (see fetch). */
  private sent = 0;

  constructor(
    private readonly base: BaseOptions,
    private readonly options: GroupConsumerOptions,
    private readonly groupProtocol: 'classic' | 'consumer',
  ) {}

  async start(handlers: GroupHandlers): Promise<void> {
    this.handlers = handlers;
    try {
      await this.build();
    } catch (err) {
      throw this.explained(err);
    }
  }

  /** A refusal for the group's protocol says which settings differ; other failures pass unchanged. */
  private explained(err: unknown): unknown {
    return protocolError(err, 'INCONSISTENT_GROUP_PROTOCOL')
      ? groupProtocolMismatch(this.options.groupId, { client: 'platformatic', protocol: this.groupProtocol }, err)
      : err;
  }

  private consumerOptions(): ConsumerOptions<Buffer, Buffer, Buffer, Buffer> {
    const { groupId, sessionTimeoutMs, maxWaitMs = 200, retries = 8 } = this.options;
    const common = {
      ...this.base,
      groupId,
      retries,
      autocommit: false,
      isolationLevel: FetchIsolationLevels.READ_COMMITTED,
      maxWaitTime: maxWaitMs,
      maxBytes: MAX_BYTES,
      maxBytesPerPartition: MAX_BYTES_PER_PARTITION,
      // Heartbeats failing this long mean the library will not recover by itself: the member is rebuilt.
      heartbeatStallTimeout: Math.max(30_000, 2 * sessionTimeoutMs),
    };
    if (this.groupProtocol === 'consumer')
      // The session timeout of a KIP-848 group is the broker's (group.consumer.session.timeout.ms).
      return { ...common, groupProtocol: 'consumer', rebalanceTimeout: 60_000 };
    return {
      ...common,
      groupProtocol: 'classic',
      sessionTimeout: sessionTimeoutMs,
      heartbeatInterval: Math.min(3000, Math.floor(sessionTimeoutMs / 3)),
      rebalanceTimeout: 60_000,
      protocols: [{ name: 'cooperative-sticky', version: 3 }],
    };
  }

  /** Builds the member and the fetcher, joins the group and starts the fetch loop. */
  private async build(): Promise<void> {
    const generation = ++this.generation;
    const { topic } = this.options;
    const member = new Consumer(this.consumerOptions());
    const fetcher = new Consumer({ ...this.consumerOptions(), clientId: `${this.base.clientId}.fetch` });
    this.member = member;
    this.fetcher = fetcher;
    const current = () => this.generation === generation && !this.stopped;
    const sync = () => {
      if (current()) this.sync();
    };
    member.on('consumer:group:join', sync);
    member.on('consumer:group:rebalance', sync);
    member.on('consumer:heartbeat:end', sync);
    member.on('consumer:heartbeat:error', ({ error }) => {
      if (!current()) return;
      if (this.groupProtocol === 'consumer' && protocolError(error, 'UNKNOWN_MEMBER_ID')) {
        // The coordinator removed the member (its session expired): @platformatic/kafka 2.12.1 goes on
        // heartbeating with the dead id and epoch for ever, so a new member takes its place.
        void this.rebuild(generation);
      } else if (protocolError(error, 'FENCED_MEMBER_EPOCH')) {
        // The library joins again under the same id at epoch 0; whatever it held may be someone's now.
        this.identity.lost();
        setImmediate(sync); // the library empties its assignment right after this event
      }
    });
    member.on('consumer:heartbeat:stalled', () => {
      if (current()) void this.rebuild(generation);
    });
    // A classic rejoin that failed for good is reported here: the library heartbeats no more.
    member.on('error', () => {
      if (current()) void this.rebuild(generation);
    });
    fetcher.on('error', () => undefined);
    try {
      member.topics.track(topic);
      fetcher.topics.track(topic);
      // A stream without topics: joins the group (the only way to join under KIP-848) and reads nothing.
      const stream = await member.consume({ topics: [], autocommit: false });
      stream.on('error', () => undefined);
      const metadata = await fetcher.metadata({ topics: [topic] });
      this.topicId = metadata.topics.get(topic)?.id;
    } catch (err) {
      if (this.generation === generation) {
        this.member = undefined;
        this.fetcher = undefined;
      }
      await Promise.all([member.close(true).catch(() => undefined), fetcher.close(true).catch(() => undefined)]);
      throw err;
    }
    this.sync();
    void this.loop(generation, fetcher);
  }

  /**
   * Reports the member's assignment to the runner when it changed (or the membership did), and makes
   * the partition states follow it: partitions gone (or all of them, for a new membership) are dropped,
   * so their batches in flight are no longer current; gained ones start at their committed offset.
   */
  private sync(): void {
    const member = this.member;
    if (!member?.memberId || member.assignments === null) return;
    const partitions = [...(member.assignments.find((a) => a.topic === this.options.topic)?.partitions ?? [])].sort(
      (a, b) => a - b,
    );
    const memberId = this.identity.of(member.memberId);
    const key = partitions.join(',');
    if (this.reported?.key === key && this.reported.memberId === memberId) return;
    const renewed = this.reported !== undefined && this.reported.memberId !== memberId;
    const next = new Set(partitions);
    for (const p of [...this.partitions.keys()]) if (renewed || !next.has(p)) this.partitions.delete(p);
    const gained = partitions.filter((p) => !this.partitions.has(p));
    for (const p of gained)
      this.partitions.set(p, { paused: false, inflight: false, seeks: 0, failures: 0, fetchFailures: 0 });
    this.reported = { key, memberId };
    this.handlers!.onAssignment({ partitions, memberId });
    void this.startingOffsets(this.generation, gained);
    this.wake();
  }

  /** Where gained partitions are read from until the runner seeks: the committed offset, else the earliest. */
  private async startingOffsets(generation: number, partitions: number[]): Promise<void> {
    const { topic } = this.options;
    const member = this.member;
    const fetcher = this.fetcher;
    if (partitions.length === 0 || !member || !fetcher) return;
    const seeks = new Map(partitions.map((p) => [p, this.partitions.get(p)]));
    try {
      const committed = (await member.listCommittedOffsets({ topics: [{ topic, partitions }] })).get(topic) ?? [];
      const missing = partitions.filter((p) => (committed[p] ?? -1n) < 0n);
      const earliest =
        missing.length === 0
          ? []
          : ((
              await fetcher.listOffsets({
                topics: [topic],
                partitions: { [topic]: missing },
                timestamp: ListOffsetTimestamps.EARLIEST,
              })
            ).get(topic) ?? []);
      if (this.generation !== generation) return;
      for (const p of partitions) {
        const state = this.partitions.get(p);
        // A seek (the runner's restore) since, or a new assignment of the partition, wins.
        if (!state || state !== seeks.get(p) || state.seeks > 0 || state.position !== undefined) continue;
        const offset = (committed[p] ?? -1n) >= 0n ? committed[p]! : earliest[p];
        if (offset !== undefined && offset >= 0n) state.position = offset;
      }
      this.wake();
    } catch {
      /* the runner's restore seeks every gained partition: reading starts then */
    }
  }

  private wake(): void {
    const wake = this.wakeUp;
    this.wakeUp = undefined;
    wake?.();
  }

  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wakeUp = undefined;
        resolve();
      }, ms);
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Fetches every partition that may be read, hands each partition's records to the runner, and again. */
  private async loop(generation: number, fetcher: Consumer): Promise<void> {
    let failures = 0;
    while (!this.stopped && this.generation === generation) {
      this.sync();
      const now = Date.now();
      const wanted = new Map<number, { offset: bigint; state: PartitionState }>();
      for (const [p, state] of this.partitions)
        if (!state.paused && !state.inflight && state.position !== undefined && (state.retryAt ?? 0) <= now)
          wanted.set(p, { offset: state.position, state });
      if (wanted.size === 0 || this.topicId === undefined) {
        await this.idle(IDLE_MS);
        continue;
      }
      let responses: FetchedPartition[];
      try {
        responses = await this.fetch(fetcher, wanted);
        failures = 0;
      } catch (err) {
        if (this.stopped || this.generation !== generation) return;
        this.handlers!.onFetchError?.(undefined, err);
        await this.idle(Math.min(5_000, 100 * 2 ** Math.min(failures++, 6)));
        continue;
      }
      if (this.stopped || this.generation !== generation) return;
      this.sync(); // a partition revoked while the fetch was out is not handed to the runner
      const outOfRange: number[] = [];
      for (const response of responses) {
        const asked = wanted.get(response.partitionIndex);
        if (!asked || this.partitions.get(response.partitionIndex) !== asked.state) continue;
        if (response.errorCode === OFFSET_OUT_OF_RANGE) outOfRange.push(response.partitionIndex);
        else if (response.errorCode !== 0) this.partitionFailed(response, asked.state);
        else {
          asked.state.fetchFailures = 0;
          this.deliver(generation, response, asked.offset, asked.state);
        }
      }
      if (outOfRange.length > 0) await this.resetOutOfRange(generation, fetcher, outOfRange, wanted);
    }
  }

  /**
   * A partition the broker answered with an error of its own (not its leader now, say): the others in
   * the response are delivered, and this one is fetched again after a growing delay, with fresh metadata
   * (fetch asks for it every time).
   */
  private partitionFailed(response: FetchedPartition, state: PartitionState): void {
    this.fetchFailed(state);
    const err = new ProtocolError(response.errorCode);
    this.handlers!.onFetchError?.(response.partitionIndex, err);
  }

  /** The partition is fetched again after a delay that grows with its failures in a row. */
  private fetchFailed(state: PartitionState): void {
    state.retryAt = Date.now() + Math.min(5_000, 100 * 2 ** Math.min(state.fetchFailures++, 6));
  }

  /**
   * Positions out of the partitions' range move as Kafka's consumer moves them with
   * auto.offset.reset=earliest: below the log start (retention or DeleteRecords removed what was
   * next) to the log start; the runner sees the jump and says which offsets were lost. Above the end
   * (the log was truncated, by an unclean leader election) to the end, not to the log start: every
   * record from the log start up to the old position is below the runner's next offset, and would be
   * fetched only to be dropped as already processed.
   */
  private async resetOutOfRange(
    generation: number,
    fetcher: Consumer,
    partitions: number[],
    wanted: Map<number, { offset: bigint; state: PartitionState }>,
  ): Promise<void> {
    const { topic } = this.options;
    const ask = (timestamp: bigint) =>
      fetcher.listOffsets({ topics: [topic], partitions: { [topic]: partitions }, timestamp });
    let earliest: bigint[];
    let latest: bigint[];
    try {
      const [low, high] = await Promise.all([ask(ListOffsetTimestamps.EARLIEST), ask(ListOffsetTimestamps.LATEST)]);
      earliest = low.get(topic) ?? [];
      latest = high.get(topic) ?? [];
    } catch (err) {
      for (const p of partitions) {
        this.fetchFailed(wanted.get(p)!.state);
        this.handlers!.onFetchError?.(p, err);
      }
      return;
    }
    if (this.stopped || this.generation !== generation) return;
    for (const p of partitions) {
      const { offset, state } = wanted.get(p)!;
      // A seek since, or a new assignment of the partition, wins.
      if (this.partitions.get(p) !== state || state.position !== offset) continue;
      const low = earliest[p];
      const high = latest[p];
      if (low !== undefined && low >= 0n && offset < low) state.position = low;
      else if (high !== undefined && high >= 0n && offset > high) state.position = high;
      else this.fetchFailed(state); // in range by now (the log moved meanwhile): fetched again, not at once
    }
    this.wake();
  }

  /** One Fetch per partition leader, with read_committed; the partitions of the topic in the responses. */
  private async fetch(
    fetcher: Consumer,
    wanted: Map<number, { offset: bigint; state: PartitionState }>,
  ): Promise<FetchedPartition[]> {
    const { topic } = this.options;
    const metadata = await fetcher.metadata({ topics: [topic] });
    const topicMetadata = metadata.topics.get(topic);
    if (!topicMetadata) throw new Error(`topic ${topic} is not in the cluster metadata`);
    this.topicId = topicMetadata.id;
    const byNode = new Map<number, number[]>();
    for (const p of wanted.keys()) {
      const leader = topicMetadata.partitions[p]?.leader ?? -1;
      byNode.set(leader, [...(byNode.get(leader) ?? []), p]);
    }
    const settled = await Promise.allSettled(
      [...byNode].map(([node, partitions]) =>
        fetcher.fetch({
          node,
          isolationLevel: FetchIsolationLevels.READ_COMMITTED,
          maxWaitTime: this.options.maxWaitMs ?? 200,
          maxBytes: MAX_BYTES,
          topics: [
            {
              topicId: topicMetadata.id,
              partitions: partitions.map((partition) => ({
                partition,
                fetchOffset: wanted.get(partition)!.offset,
                // The library keeps an incremental fetch session (KIP-227) and leaves out of a request every
                // partition whose fields did not change, and the broker then fetches from where its last
                // response ended, not from here. A batch not (fully) taken is fetched again from the same
                // offset: a size that differs from the last request's makes the library always send it.
                partitionMaxBytes: MAX_BYTES_PER_PARTITION - (this.sent++ % 2),
                currentLeaderEpoch: -1,
                lastFetchedEpoch: -1,
              })),
            },
          ],
        }),
      ),
    );
    // @platformatic/kafka throws one ResponseError for a whole Fetch when any partition in it has an
    // error; the response it carries still holds every partition, the healthy ones with their records.
    const responses: FetchResponse[] = [];
    let failed: unknown;
    for (const result of settled) {
      if (result.status === 'fulfilled') responses.push(result.value);
      else {
        const response = (result.reason as { response?: Partial<FetchResponse> }).response;
        if (Array.isArray(response?.responses)) responses.push(response as FetchResponse);
        else failed ??= result.reason;
      }
    }
    if (failed !== undefined && responses.length === 0) throw failed;
    if (failed !== undefined) this.handlers!.onFetchError?.(undefined, failed);
    return responses.flatMap((r) =>
      r.responses.filter((t) => t.topicId === topicMetadata.id).flatMap((t) => t.partitions),
    );
  }

  /** Hands one partition's fetched records to the runner, or tells it of the offsets it moved over. */
  private deliver(generation: number, response: FetchedPartition, fetchedOffset: bigint, state: PartitionState): void {
    const partition = response.partitionIndex;
    if (state.paused || state.position !== fetchedOffset || response.errorCode !== 0) return;
    const { records, next } = readPartition(this.options.topic, fetchedOffset, response);
    if (next === undefined) return;
    if (records.length === 0) {
      // Only commit markers and aborted records: the runner must hear of them, or a partition ending in a
      // marker never looks finished to a bounded run.
      state.position = next;
      this.handlers!.onSkip?.(partition, fetchedOffset.toString(), next.toString());
      return;
    }
    const seeks = state.seeks;
    const lastRecord = BigInt(records.at(-1)!.offset);
    const isCurrent = () =>
      !this.stopped &&
      this.generation === generation &&
      this.partitions.get(partition) === state &&
      state.seeks === seeks;
    const control: BatchControl = {
      fetchedOffset: fetchedOffset.toString(),
      lastOffset: (next - 1n).toString(),
      resolve: (offset) => {
        if (isCurrent()) state.resolved = BigInt(offset);
      },
      // The library heartbeats on a timer of its own, whatever the batch does.
      heartbeat: () => Promise.resolve(),
      pause: () => this.pause([partition]),
      isCurrent,
    };
    state.inflight = true;
    state.resolved = undefined;
    this.handlers!.onBatch(partition, records, control).then(
      () => {
        if (isCurrent()) {
          state.failures = 0;
          // Fully taken: read on after the markers that end the batch too.
          if (state.resolved !== undefined) state.position = state.resolved >= lastRecord ? next : state.resolved + 1n;
        }
        this.batchDone(state);
      },
      (err: unknown) => {
        this.batchDone(state);
        if (!isCurrent()) return;
        // As kafkajs does with a failing batch: read the partition again from where it stands, after a while.
        if (++state.failures > (this.options.retries ?? 8)) return this.crash(err);
        state.retryAt = Date.now() + Math.min(REBUILD_MAX_DELAY_MS, 250 * 2 ** state.failures);
      },
    );
  }

  private batchDone(state: PartitionState): void {
    state.inflight = false;
    state.resolved = undefined;
    this.wake();
  }

  private crash(err: unknown): void {
    if (this.stopped) return;
    this.stopped = true;
    this.wake();
    void this.close();
    this.handlers!.onCrash(this.explained(err));
  }

  /** Replaces a member the library gave up on (or that the coordinator forgot) with a new one, retrying until one runs. */
  private async rebuild(generation: number): Promise<void> {
    if (this.rebuilding || this.stopped || this.generation !== generation) return;
    this.rebuilding = true;
    try {
      this.identity.lost();
      this.generation++;
      this.wake();
      // Nothing is this member's any more: the runner releases every partition now.
      const memberId = this.identity.of(this.member?.memberId ?? 'none');
      this.partitions.clear();
      this.reported = { key: '', memberId };
      this.handlers!.onAssignment({ partitions: [], memberId });
      await this.close();
      while (!this.stopped) {
        await sleep(Math.min(REBUILD_MAX_DELAY_MS, 500 * 2 ** Math.min(this.rebuilds++, 5)));
        if (this.stopped) return;
        try {
          await this.build();
          return;
        } catch {
          /* the brokers are still away: try again */
        }
      }
    } finally {
      this.rebuilding = false;
    }
  }

  pause(partitions: number[]): void {
    for (const p of partitions) {
      const state = this.partitions.get(p);
      if (state) state.paused = true;
    }
  }

  resume(partitions: number[]): void {
    for (const p of partitions) {
      const state = this.partitions.get(p);
      if (state) state.paused = false;
    }
    if (partitions.length > 0) this.wake();
  }

  seek(partition: number, offset: string): void {
    const state = this.partitions.get(partition);
    if (!state) return;
    const to = BigInt(offset);
    // Where the partition stands now: after what the batch in flight resolved, else its position. Seeking
    // there changes nothing, and must not make the batch stale (the runner seeks kept partitions so).
    const at = state.inflight ? (state.resolved !== undefined ? state.resolved + 1n : undefined) : state.position;
    if (at === to && state.retryAt === undefined) return;
    state.position = to;
    state.seeks++;
    state.retryAt = undefined;
    state.failures = 0;
    this.wake();
  }

  /**
   * Commits as this member. @platformatic/kafka 2.12.1 sends no metadata with a consumer's commit, so a
   * commit with metadata is refused rather than silently stored without it (the runner commits offsets
   * through its partition transactions, which carry the metadata).
   */
  async commit(offsets: { partition: number; offset: string; metadata?: string }[]): Promise<void> {
    const member = this.member;
    if (!member || !member.isActive()) throw new CommitFencedError('the consumer is not a member of the group now');
    if (offsets.some((o) => o.metadata !== undefined && o.metadata !== null))
      throw new Error('invariant: the platformatic consumer cannot commit offset metadata');
    try {
      await member.commit({
        offsets: offsets.map((o) => ({
          topic: this.options.topic,
          partition: o.partition,
          offset: BigInt(o.offset),
          leaderEpoch: -1,
        })),
      });
    } catch (err) {
      if (protocolError(err, ...MEMBERSHIP_OVER)) throw new CommitFencedError(describeError(err), err);
      throw err;
    }
  }

  private async close(): Promise<void> {
    const member = this.member;
    const fetcher = this.fetcher;
    this.member = undefined;
    this.fetcher = undefined;
    await Promise.all([member?.close(true).catch(() => undefined), fetcher?.close(true).catch(() => undefined)]);
  }

  async disconnect(): Promise<void> {
    this.stopped = true;
    this.wake();
    await this.close();
  }
}
