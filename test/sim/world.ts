import pino from 'pino';
import { RedisDedupStore } from '../../src/dedup';
import { SideRecords } from '../../src/dlq';
import { SeededRandom } from '../../src/generator';
import {
  filteredSink,
  PROCESSING_OPTIONS,
  resolveOptions,
  StreamRunner,
  StreamTask,
  StreamWindows,
  type RunSummary,
  type StreamDefinition,
} from '../../src/process';
import type { RowSink, SideOutputs } from '../../src/process/ports';
import { ServiceError } from '../../src/errors';
import { RegistryError, type RegistryClient } from '../../src/schema/client';
import { SchemaCodec, loadAvroSchema } from '../../src/schema';
import { ClickHouseSink, featuresFromVersion, type ServerFeatures } from '../../src/sink/clickhouse';
import { SinkHold } from '../../src/sink/hold';
import { MemoryHoldBackend } from '../../src/sink/hold-memory';
import { RedisSnapshotStore } from '../../src/state';
import eventCounts from '../../streams/event-counts';
import { EVENT_COUNTS_PARTIAL, EVENTS_RAW_MIGRATIONS } from '../../streams/event-counts/tables';
import { ClickHouseModel, type ModelTableSpec } from './models/clickhouse';
import { SimKafka } from './models/kafka';
import { SimRedis } from './models/redis';
import { Owner, Scheduler } from './scheduler';

/**
 * The simulated world: the models of Kafka, Redis and ClickHouse on one
 * simulated clock, a schema registry, and processes each running the real
 * stream runtime (runner, task, checkpoint, dedup and window-state stores,
 * sink) of the reference stream against them.
 */

export const TOPIC = 'events';
export const DATABASE = 'sim';
export const KEY_PREFIX = 'sim:';
export const stream = eventCounts as unknown as StreamDefinition<unknown>;

/** Column types, identity, version and partitioning of a table, read off its CREATE statement. */
function tableOf(ddl: string): { columns: Record<string, string>; spec: ModelTableSpec } {
  const body = ddl.slice(ddl.indexOf('(') + 1, ddl.indexOf('\n)'));
  const columns: Record<string, string> = {};
  for (const line of body.split('\n')) {
    const m = /^\s*([a-z_][a-z0-9_]*)\s+([A-Za-z0-9]+(?:\((?:[^()]|\([^()]*\))*\))?)/.exec(line);
    if (m) columns[m[1]!] = m[2]!;
  }
  const order = /ORDER BY \(?([^)\n]+)\)?/
    .exec(ddl)![1]!
    .split(',')
    .map((c) => c.trim());
  const version = /ReplacingMergeTree\((\w+)\)/.exec(ddl)?.[1];
  const [, fn, column] = /PARTITION BY (\w+)\((\w+)\)/.exec(ddl)!;
  const digits = fn === 'toYYYYMM' ? 6 : 8;
  const partition = (row: Record<string, unknown>) => {
    const v = row[column!];
    const iso = typeof v === 'number' ? new Date(v * 1000).toISOString() : String(v);
    return iso.replace(/[^0-9]/g, '').slice(0, digits);
  };
  return { columns, spec: { key: order, version, partition } };
}

const RAW = tableOf((EVENTS_RAW_MIGRATIONS[0]!.statements as string[])[0]!);
const PARTIAL = tableOf(EVENT_COUNTS_PARTIAL.create[0]!);

/** The schema registry: ids known from a time on (a schema registered late is unknown before). */
export class SimRegistry {
  private readonly schemas = new Map<number, { text: string; from: number }>();

  /** Requests fail as when the registry cannot be reached (retriably) until this time. */
  downUntil = 0;

  constructor(private readonly scheduler: Scheduler) {}

  register(id: number, schema: object, from = 0): void {
    this.schemas.set(id, { text: JSON.stringify(schema), from });
  }

  client(owner: Owner): RegistryClient {
    return {
      schemaById: (id: number) =>
        new Promise<string>((resolve, reject) => {
          this.scheduler.at(owner, 1, () => {
            if (this.scheduler.now() < this.downUntil) {
              reject(new ServiceError('schema registry', 'connect ECONNREFUSED 127.0.0.1:8081', { retriable: true }));
              return;
            }
            const s = this.schemas.get(id);
            if (!s || s.from > this.scheduler.now()) reject(new RegistryError(404, 40403, `Schema ${id} not found`));
            else resolve(s.text);
          });
        }),
    } as unknown as RegistryClient;
  }
}

/** Fault switches the scenario flips; the world and its processes consult them. */
export class Faults {
  /** ClickHouse inserts fail (retriably) until this time. */
  sinkDownUntil = 0;
  /** Extra latency of each ClickHouse insert, ms. */
  sinkLatencyMs = 5;
  /** Extra time each save of window state takes, ms (a base of a large state takes seconds). */
  stateSaveMs = 0;
  /** Event types whose rows ClickHouse refuses as data it cannot hold. */
  readonly refusedEventTypes = new Set<string>();
}

/** What sets a replay's run apart from a live member. */
export interface StartOptions {
  bounded?: boolean;
  sessionTimeoutMs?: number;
  definition?: StreamDefinition<unknown>;
  groupId?: string;
  /** Dedup and window-state epoch (a replay has its own). */
  epoch?: number;
  endOffsets?: Map<number, bigint>;
  closeWindowsAtEnd?: boolean;
  /** Only events with an event time in [from, to) are part of the run (a replay of a range). */
  eventTimeRange?: { from: number | null; to: number | null };
  /** false: no `.dlq`/`.late` (a replay: the first pass wrote them). */
  sideOutputs?: boolean;
  /** false: writes do not take the hold's lease (a replay writes its own tables). */
  sinkHold?: boolean;
  /** Only rows it accepts reach ClickHouse (a replay writes only the rows inside its range). */
  rowFilter?: (table: string, row: Record<string, unknown>) => boolean;
  /** Processing options other than the defaults (e.g. a shorter commit interval). */
  processing?: Partial<Record<keyof typeof PROCESSING_OPTIONS, number>>;
}

export interface SimProcess {
  name: string;
  owner: Owner;
  runner: StreamRunner<unknown>;
  done: Promise<RunSummary | Error>;
}

export class World {
  readonly scheduler: Scheduler;
  readonly random: SeededRandom;
  readonly root = new Owner('world');
  readonly kafka: SimKafka;
  readonly redis: SimRedis;
  readonly clickhouse: ClickHouseModel;
  readonly registry: SimRegistry;
  readonly faults: Faults;
  readonly features: ServerFeatures;
  readonly processes: SimProcess[] = [];
  /** The hold every live writer leases from, and a shadow replay holds: one per stream, as one Redis would be. */
  readonly holdBackend: MemoryHoldBackend;
  private processSeq = 0;

  constructor(
    readonly seed: number,
    private readonly startMs: number,
    partitions: number,
  ) {
    this.random = new SeededRandom(seed);
    this.scheduler = new Scheduler(startMs);
    this.kafka = new SimKafka(this.scheduler, this.root);
    this.kafka.createTopic(TOPIC, partitions);
    this.redis = new SimRedis(this.scheduler, this.random);
    this.faults = new Faults();
    this.kafka.random = () => this.random.next();
    // Half the seeds see a current server (insert tokens), half 18.16 (row identity alone).
    this.features = featuresFromVersion(this.random.chance(0.5) ? '26.7.1.1' : '18.16.1');
    this.clickhouse = new ClickHouseModel({ atomic: this.features.major >= 20 });
    this.clickhouse.createTable(DATABASE, 'events_raw', RAW.spec);
    this.clickhouse.createTable(DATABASE, EVENT_COUNTS_PARTIAL.name, PARTIAL.spec);
    this.clickhouse.beforeInsert = async (_table, rows) => {
      await this.scheduler.sleep(this.root, this.faults.sinkLatencyMs);
      if (this.scheduler.now() < this.faults.sinkDownUntil)
        throw Object.assign(new Error('Code: 210. DB::NetException: Connection refused'), { code: '210' });
      // As ClickHouse words it, naming the row it stopped at (1-based); the sink relies on that when it can.
      const refused = rows.findIndex((r) => this.faults.refusedEventTypes.has(String(r.event_type)));
      if (refused >= 0) {
        const at = this.random.chance(0.5) ? `: (at row ${refused + 1})` : ''; // and sometimes without, so the bisection runs too
        throw Object.assign(
          new Error(
            `Code: 131. DB::Exception: Too large value for FixedString(2): (while read the value of key event_type)${at}`,
          ),
          { code: '131' },
        );
      }
    };
    this.registry = new SimRegistry(this.scheduler);
    this.holdBackend = new MemoryHoldBackend(this.scheduler.clockFor(this.root));
  }

  /** A SinkHold of the stream on `owner`'s clock. */
  hold(owner: Owner): SinkHold {
    return new SinkHold(this.holdBackend, stream.name, { clock: this.scheduler.clockFor(owner) });
  }

  /** Starts one member of the stream's group (or a bounded run of it). */
  async start(options: StartOptions = {}): Promise<SimProcess> {
    const definition = options.definition ?? stream;
    const epoch = options.epoch ?? 0;
    const name = `p${++this.processSeq}`;
    const owner = new Owner(name);
    const clock = this.scheduler.clockFor(owner);
    const redis = this.redis.client(owner);
    const codec = new SchemaCodec(this.registry.client(owner), clock.now);
    const reader = loadAvroSchema(stream.source.schema);
    const decoder = codec.reading(reader);
    const dedup = new RedisDedupStore(redis, {
      keyPrefix: KEY_PREFIX,
      namespace: stream.name,
      epoch,
      ttlSeconds: 24 * 3600,
    });
    const snapshots = new RedisSnapshotStore(redis, `${KEY_PREFIX}state:${stream.name}:${epoch}:`);
    const save = snapshots.save.bind(snapshots);
    snapshots.save = async (entries) => {
      if (this.faults.stateSaveMs > 0) await this.scheduler.sleep(this.root, this.faults.stateSaveMs);
      return save(entries);
    };
    const sink = new ClickHouseSink({
      settings: { url: 'http://clickhouse.sim', username: 'sim', password: '', database: DATABASE } as never,
      database: DATABASE,
      client: this.clickhouse.asClient(),
      features: this.features,
      // A replay's rebuild tables (`<table>__rebuild_<tag>`) have the columns of their live table.
      columns: Object.fromEntries(
        [definition.raw?.table, definition.windowed?.table]
          .filter((t): t is string => t !== undefined)
          .map((t) => [t, t.startsWith('events_raw') ? RAW.columns : PARTIAL.columns]),
      ),
      // Retries and the breaker are the runtime's: a failed write pauses and the checkpoint retries it.
      retry: { retries: 0 },
      breaker: { failureThreshold: Number.MAX_SAFE_INTEGER },
      maxRows: 50_000,
    });
    const hold = options.sinkHold === false ? undefined : this.hold(owner);
    const filtered = options.rowFilter ? filteredSink(sink, options.rowFilter) : sink;
    const rowSink: RowSink = hold
      ? { write: (table, rows, positions) => hold.write(() => filtered.write(table, rows, positions)) }
      : filtered;
    const side: SideOutputs =
      options.sideOutputs === false
        ? { records: () => [] }
        : new SideRecords({ stream: stream.name, now: () => new Date(this.scheduler.now()) });
    const task = new StreamTask(
      definition,
      { decoder, dedup, now: clock.now },
      definition.windowed ? new StreamWindows(definition.windowed, TOPIC) : undefined,
      { eventTimeRange: options.eventTimeRange },
    );
    const runner = new StreamRunner(
      this.kafka.client(owner),
      definition,
      task,
      { sink: rowSink, side, snapshots },
      {
        groupId: options.groupId ?? `sluice.${stream.name}`,
        bounded: options.bounded ?? false,
        ...resolveOptions(PROCESSING_OPTIONS, {
          ...options.processing,
          sessionTimeoutMs: options.sessionTimeoutMs ?? 10_000,
        }),
        epoch,
        endOffsets: options.endOffsets,
        closeWindowsAtEnd: options.closeWindowsAtEnd,
      },
      // SLUICE_SIM_LOG=info (npm run test:sim -- --seed N --log) prints each process's runtime log, stamped with simulated time.
      pino({
        level: process.env.SLUICE_SIM_LOG ?? 'silent',
        base: { process: name },
        timestamp: () => `,"t":${((this.scheduler.now() - this.startMs) / 1000).toFixed(3)}`,
      }),
      clock,
    );
    const done = runner.done.then(
      (summary) => summary,
      (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
    );
    const proc: SimProcess = { name, owner, runner: runner as StreamRunner<unknown>, done };
    this.processes.push(proc);
    await runner.start();
    return proc;
  }

  /** Runs simulated time until `promise` settles (for the harness, which is outside the simulated world's timers). */
  async drive<T>(promise: Promise<T>, limitMs = 10 * 60_000): Promise<T> {
    let done = false;
    void promise.then(
      () => (done = true),
      () => (done = true),
    );
    await this.scheduler.runWhile(() => !done, this.scheduler.now() + limitMs);
    if (!done) throw new Error(`did not settle within ${limitMs} simulated ms`);
    return promise;
  }

  /**
   * From `afterMs` from now on, checks `ready` every simulated millisecond for `forMs`, and runs `act` the
   * first time it holds (a fault injected at the moment the runtime reaches a state).
   */
  whenFirst(afterMs: number, forMs: number, ready: () => boolean, act: () => void): void {
    const until = this.scheduler.now() + afterMs + forMs;
    const watch = () => {
      if (ready()) act();
      else if (this.scheduler.now() < until) this.scheduler.at(this.root, 1, watch);
    };
    this.scheduler.at(this.root, afterMs, watch);
  }

  /** SIGKILL: the process stops at once, mid-step; nothing it had in flight happens. */
  kill(proc: SimProcess): void {
    proc.owner.alive = false;
    this.processes.splice(this.processes.indexOf(proc), 1);
  }

  /** SIGTERM: flush, commit, leave the group. Call from inside the simulation (a timer), or through `drive`. */
  async stop(proc: SimProcess): Promise<void> {
    await proc.runner.stop().catch(() => undefined);
    proc.owner.alive = false;
    const i = this.processes.indexOf(proc);
    if (i >= 0) this.processes.splice(i, 1);
  }
}
