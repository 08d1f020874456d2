import type { ClickHouseClient } from '@clickhouse/client';
import type { Redis } from 'ioredis';
import type { SluiceConfig } from '../../config';
import { dlqTopic, lateTopic, SideTopicCounter } from '../../dlq';
import { describeError } from '../../errors';
import { createKafka, type KafkaAdmin, type KafkaClient } from '../../kafka';
import { createRedis } from '../../redis';
import { createClickHouse } from '../../sink/clickhouse/client';
import type { SinkStats } from '../../sink/clickhouse/sink';
import { recentProblems, type Check, type RecentProblem } from '../../telemetry';
import { withTimeout } from '../../timeout';
import { lateShare, lateShareWarning } from '../late-share';
import type { RunnerStatus } from '../runner';
import { streamGauges, STREAM_COUNTERS, type StreamCounterName, type StreamGauges } from './metrics';

export interface MonitoredStream {
  name: string;
  status(): RunnerStatus;
  sinkStats?(): SinkStats;
}

export interface StreamMonitorOptions {
  /** How often positions, end offsets and dependencies are polled. */
  pollMs?: number;
  /** Not ready once partitions have stayed paused this long while their lag grew. */
  stuckAfterMs?: number;
  probeTimeoutMs?: number;
}

export interface PartitionStatus {
  partition: number;
  position: string | null;
  endOffset: string | null;
  lag: number | null;
  paused: boolean;
}

/** What `/status.json` serves for a processor. */
export interface StreamStatusReport {
  kind: 'stream';
  stream: string;
  group: string;
  topic: string;
  time: string;
  uptimeSeconds: number;
  ready: boolean;
  checks: Check[];
  partitions: PartitionStatus[];
  totalLag: number | null;
  watermark: string | null;
  watermarkDelaySeconds: number | null;
  openWindows: number;
  pendingRows: number;
  recordsPerSecond: number;
  counters: RunnerStatus['counters'];
  /** Late events per event that reached the windows; null before any did. */
  lateShare: number | null;
  /** Set when the late share is above LATE_SHARE_WARNING: what it means and what to run. */
  lateWarning: string | null;
  checkpoints: number;
  lastCheckpointAt: string;
  checkpointFailing: boolean;
  sink: SinkStats | null;
  sideTopics: Record<string, number | null>;
  recentErrors: RecentProblem[];
}

/**
 * Watches a running stream for metrics, health checks and the status page.
 *
 * Every poll reads the runner's status, the topic's end offsets (lag), the
 * record counts of the dead-letter and late topics, and probes Kafka, Redis
 * and ClickHouse over connections of its own, so a probe never queues behind
 * the data path. Readiness is decided at poll time and cached: probes are
 * cheap and `/readyz` answers instantly and consistently.
 */
export class StreamMonitor {
  private readonly gauges: StreamGauges;
  private readonly admin: KafkaAdmin;
  private readonly kafka: KafkaClient;
  private readonly sideCounters = new Map<string, SideTopicCounter>();
  private readonly redis: Redis;
  private readonly clickhouse: ClickHouseClient;
  private readonly started = Date.now();
  private readonly pollMs: number;
  private readonly stuckAfterMs: number;
  private readonly probeTimeoutMs: number;
  private timer?: NodeJS.Timeout;
  private polling?: Promise<void>;
  private adminConnected = false;
  private endOffsets = new Map<number, bigint>();
  private sideTopics: Record<string, number | null> = {};
  private checks: Check[] = [{ name: 'started', ok: false, detail: 'no poll yet' }];
  private readyNow = false;
  /** Since when some partition has been paused, and the total lag then: growing lag while paused means stuck. */
  private pausedSince?: { at: number; lag: number };
  private readonly exported: Partial<
    Record<StreamCounterName | 'checkpoints' | 'sinkRows' | 'sinkInserts' | 'sinkRetries' | 'sinkFailures', number>
  > = {};
  private readonly samples: { at: number; recordsIn: number }[] = [];
  private readonly labelledPartitions = new Set<number>();

  constructor(
    private readonly stream: MonitoredStream,
    config: SluiceConfig,
    options: StreamMonitorOptions = {},
  ) {
    this.gauges = streamGauges();
    this.pollMs = options.pollMs ?? 2000;
    this.stuckAfterMs = options.stuckAfterMs ?? 120_000;
    this.probeTimeoutMs = options.probeTimeoutMs ?? 2000;
    this.kafka = createKafka(config, { retries: 0 });
    this.admin = this.kafka.admin();
    this.redis = createRedis(config, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: this.probeTimeoutMs,
    });
    this.redis.on('error', () => undefined); // reported by the probe
    this.clickhouse = createClickHouse(config.clickhouse);
  }

  start(): void {
    this.pollSoon();
    this.timer = setInterval(() => this.pollSoon(), this.pollMs);
    this.timer.unref();
  }

  /** Starts a poll unless one is running (a slow dependency must not pile polls up). */
  private pollSoon(): Promise<void> {
    this.polling ??= this.poll()
      .catch(() => undefined) // probes report their own failures; a bug here must not kill the process
      .finally(() => (this.polling = undefined));
    return this.polling;
  }

  /** Polls once now, after any poll in progress (tests, and `/status.json?fresh=1`). */
  async refresh(): Promise<void> {
    await this.polling;
    await this.pollSoon();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.polling?.catch(() => undefined);
    if (this.adminConnected) await this.admin.disconnect().catch(() => undefined);
    this.redis.disconnect();
    await this.clickhouse.close().catch(() => undefined);
  }

  get ready(): boolean {
    return this.readyNow;
  }

  readiness(): { ready: boolean; checks: Check[] } {
    return { ready: this.readyNow, checks: this.checks };
  }

  private async probe(dependency: string, run: () => Promise<unknown>): Promise<Check> {
    const end = this.gauges.dependencyLatency.startTimer({ stream: this.stream.name, dependency });
    try {
      await withTimeout(run(), this.probeTimeoutMs, dependency);
      end();
      this.gauges.dependencyUp.set({ stream: this.stream.name, dependency }, 1);
      return { name: dependency, ok: true, detail: 'reachable' };
    } catch (err) {
      this.gauges.dependencyUp.set({ stream: this.stream.name, dependency }, 0);
      return { name: dependency, ok: false, detail: describeError(err) };
    }
  }

  private async poll(): Promise<void> {
    const status = this.stream.status();
    const [kafka, redis, clickhouse] = await Promise.all([
      this.probe('kafka', async () => {
        if (!this.adminConnected) {
          await this.admin.connect();
          this.adminConnected = true;
        }
        const offsets = await this.admin.fetchTopicOffsets(status.topic);
        this.endOffsets = new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
        await this.pollSideTopics(status.topic);
      }),
      this.probe('redis', async () => {
        if (this.redis.status === 'wait' || this.redis.status === 'end') await this.redis.connect();
        await this.redis.ping();
      }),
      this.probe('clickhouse', async () => {
        const result = await this.clickhouse.ping();
        if (!result.success) throw result.error;
      }),
    ]);
    this.export(this.stream.status());
    const now = Date.now();
    const lag = this.totalLag(this.stream.status());
    const current = this.stream.status();
    if (current.paused.length > 0 && lag !== null) this.pausedSince ??= { at: now, lag };
    else this.pausedSince = undefined;
    const stuck =
      this.pausedSince !== undefined &&
      lag !== null &&
      now - this.pausedSince.at > this.stuckAfterMs &&
      lag > this.pausedSince.lag;
    this.checks = [
      {
        name: 'partitions',
        ok: current.assigned.length > 0 && !current.stopping,
        detail: current.stopping
          ? 'stopping'
          : current.assigned.length > 0
            ? `assigned ${current.assigned.join(',')}`
            : 'no partitions assigned',
      },
      kafka,
      redis,
      clickhouse,
      {
        name: 'progress',
        ok: !stuck,
        detail: stuck
          ? `partitions ${current.paused.join(',')} paused for ${Math.round((now - this.pausedSince!.at) / 1000)} s while the lag grew from ${this.pausedSince!.lag} to ${lag}`
          : current.paused.length > 0
            ? `partitions ${current.paused.join(',')} paused`
            : 'consuming',
      },
    ];
    this.readyNow = this.checks.every((c) => c.ok);
    this.gauges.ready.set({ stream: this.stream.name }, this.readyNow ? 1 : 0);
  }

  private async pollSideTopics(topic: string): Promise<void> {
    for (const side of [dlqTopic(topic), lateTopic(topic)]) {
      try {
        const counter =
          this.sideCounters.get(side) ?? this.sideCounters.set(side, new SideTopicCounter(this.kafka, side)).get(side)!;
        const count = await counter.count();
        this.sideTopics[side] = count;
        this.gauges.sideTopicRecords.set({ stream: this.stream.name, topic: side }, count);
      } catch {
        this.sideTopics[side] = null; // not created yet: nothing was ever sent there
      }
    }
  }

  /** The partition's end offset: polled, but never below what was already processed (a poll can be seconds old). */
  private endOf(status: RunnerStatus, partition: number): bigint | undefined {
    const polled = this.endOffsets.get(partition);
    const position = status.positions[partition];
    if (polled === undefined) return undefined;
    return position !== undefined && BigInt(position) > polled ? BigInt(position) : polled;
  }

  private lagOf(status: RunnerStatus, partition: number): number | null {
    const end = this.endOf(status, partition);
    const position = status.positions[partition];
    if (end === undefined || position === undefined) return null;
    return Number(end - BigInt(position));
  }

  private totalLag(status: RunnerStatus): number | null {
    if (status.assigned.length === 0) return null;
    let total = 0;
    for (const p of status.assigned) {
      const lag = this.lagOf(status, p);
      if (lag === null) return null;
      total += lag;
    }
    return total;
  }

  /** Brings a monotonic Prometheus counter up to the runtime's own total. */
  private catchUp(
    key: keyof StreamMonitor['exported'],
    counter: { inc(labels: { stream: string }, value: number): void },
    total: number,
  ): void {
    const delta = total - (this.exported[key] ?? 0);
    counter.inc({ stream: this.stream.name }, Math.max(0, delta)); // also publishes a series still at zero
    this.exported[key] = Math.max(total, this.exported[key] ?? 0);
  }

  /** Counters, positions and event time as of now (a scrape); lag and probes stay as of the last poll. */
  exportNow(): void {
    this.export(this.stream.status());
  }

  private export(status: RunnerStatus): void {
    const stream = this.stream.name;
    const g = this.gauges;
    for (const key of Object.keys(STREAM_COUNTERS) as StreamCounterName[])
      this.catchUp(key, g.counters[key], status.counters[key]);
    this.catchUp('checkpoints', g.checkpoints, status.checkpoints);
    const sink = this.stream.sinkStats?.();
    if (sink) {
      this.catchUp('sinkRows', g.sinkRows, sink.rowsWritten);
      this.catchUp('sinkInserts', g.sinkInserts, sink.inserts);
      this.catchUp('sinkRetries', g.sinkRetries, sink.retries);
      this.catchUp('sinkFailures', g.sinkFailures, sink.failures);
      for (const state of ['closed', 'open', 'half-open'])
        g.breaker.set({ stream, state }, sink.breaker === state ? 1 : 0);
    }
    // Partitions this member lost keep no stale series.
    for (const p of this.labelledPartitions) {
      if (!status.assigned.includes(p)) {
        for (const gauge of [g.position, g.endOffset, g.lag, g.paused])
          gauge.remove({ stream, topic: status.topic, partition: String(p) });
        this.labelledPartitions.delete(p);
      }
    }
    for (const p of status.assigned) {
      const labels = { stream, topic: status.topic, partition: String(p) };
      this.labelledPartitions.add(p);
      const position = status.positions[p];
      const end = this.endOf(status, p);
      if (position !== undefined) g.position.set(labels, Number(position));
      if (end !== undefined) g.endOffset.set(labels, Number(end));
      const lag = this.lagOf(status, p);
      if (lag !== null) g.lag.set(labels, lag);
      g.paused.set(labels, status.paused.includes(p) ? 1 : 0);
    }
    g.assigned.set({ stream }, status.assigned.length);
    if (status.watermark !== null) {
      g.watermark.set({ stream }, status.watermark / 1000);
      g.watermarkDelay.set({ stream }, Math.max(0, (Date.now() - status.watermark) / 1000));
    }
    g.openWindows.set({ stream }, status.openWindows);
    g.pendingRows.set({ stream }, status.pendingRows);
    g.checkpointAge.set({ stream }, (Date.now() - status.lastCheckpointAt) / 1000);
    g.checkpointFailing.set({ stream }, status.checkpointPending ? 1 : 0);
    const now = Date.now();
    this.samples.push({ at: now, recordsIn: status.counters.recordsIn });
    while (this.samples.length > 2 && now - this.samples[0]!.at > 30_000) this.samples.shift();
  }

  /** Records per second over the last polls (up to 30 s), counting the reading taken now. */
  private throughput(status: RunnerStatus): number {
    const oldest = this.samples[0];
    if (!oldest) return 0;
    const seconds = (Date.now() - oldest.at) / 1000;
    return seconds > 0 ? (status.counters.recordsIn - oldest.recordsIn) / seconds : 0;
  }

  report(): StreamStatusReport {
    const status = this.stream.status();
    const partitions = status.assigned.map((p) => ({
      partition: p,
      position: status.positions[p] ?? null,
      endOffset: this.endOf(status, p)?.toString() ?? null,
      lag: this.lagOf(status, p),
      paused: status.paused.includes(p),
    }));
    return {
      kind: 'stream',
      stream: this.stream.name,
      group: status.group,
      topic: status.topic,
      time: new Date().toISOString(),
      uptimeSeconds: Math.round((Date.now() - this.started) / 1000),
      ready: this.readyNow,
      checks: this.checks,
      partitions,
      totalLag: this.totalLag(status),
      watermark: status.watermark === null ? null : new Date(status.watermark).toISOString(),
      watermarkDelaySeconds: status.watermark === null ? null : Math.max(0, (Date.now() - status.watermark) / 1000),
      openWindows: status.openWindows,
      pendingRows: status.pendingRows,
      recordsPerSecond: Math.round(this.throughput(status) * 10) / 10,
      counters: status.counters,
      lateShare: lateShare(status.counters),
      lateWarning: lateShareWarning(status.counters, this.stream.name) ?? null,
      checkpoints: status.checkpoints,
      lastCheckpointAt: new Date(status.lastCheckpointAt).toISOString(),
      checkpointFailing: status.checkpointPending,
      sink: this.stream.sinkStats?.() ?? null,
      sideTopics: { ...this.sideTopics },
      recentErrors: recentProblems(),
    };
  }
}
