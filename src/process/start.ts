import type { SluiceConfig } from '../config';
import { connectRedisDedupStore } from '../dedup';
import { baseTopic, SideRecords } from '../dlq';
import { SluiceError } from '../errors';
import { createKafka, kafkaClientName, streamKafka } from '../kafka';
import { createRedis } from '../redis';
import { SchemaCodec, loadAvroSchema } from '../schema';
import { ClickHouseSink } from '../sink/clickhouse';
import { SinkHold } from '../sink/hold';
import { RedisSnapshotStore } from '../state';
import type { Logger } from '../telemetry';
import { instrumentRowSink } from './monitor';
import type { SinkStats } from '../sink/clickhouse/sink';
import type { AggregationSpec, GroupFields } from '../window';
import type { Row, StreamDefinition } from './definition';
import type { RowSink, SideOutputs } from './ports';
import { PROCESSING_OPTIONS, resolveOptions } from './options';
import { StreamRunner, type RunnerOptions, type RunSummary } from './runner';
import { StreamTask, type TaskEventTimeRange } from './task';
import { StreamWindows } from './windows';
import { migrateStreams } from './schema';

export interface StartOptions extends Partial<RunnerOptions> {
  /** Overrides the dedup/state epoch read from Redis (replays bump it there). */
  epoch?: number;
  /** Let events through when Redis is down (counted) instead of pausing. */
  dedupFailOpen?: boolean;
  /** Reads this topic instead of the definition's (same schema): staging copies, tests. */
  topic?: string;
  /** Only rows it accepts reach ClickHouse (replays of a range write only the rows inside the range). */
  rowFilter?: (table: string, row: Row) => boolean;
  /** Only events with an event time in [from, to) are part of the run (a replay of a range; see TaskOptions). */
  eventTimeRange?: TaskEventTimeRange;
  /** false: publish nothing to `.dlq`/`.late` (a replay: the first pass already did). Default true. */
  sideOutputs?: boolean;
  /** Honour a shadow replay's hold on this stream's ClickHouse writes (src/sink/hold.ts). Default true; replays themselves do not. */
  sinkHold?: boolean;
}

export interface RunningStream {
  runner: StreamRunner<unknown>;
  /** ClickHouse insert counters and circuit-breaker state (metrics, status page). */
  sinkStats(): SinkStats;
  done: Promise<RunSummary>;
  /** Flushes, commits and disconnects everything (SIGTERM). */
  stop(): Promise<RunSummary>;
}

/** A sink that writes only the rows `keep` accepts (a replay of a range writes only the rows inside it). */
export function filteredSink(sink: RowSink, keep: (table: string, row: Row) => boolean): RowSink {
  return {
    write: async (table, rows, positions) => {
      const kept = rows.map((_, i) => i).filter((i) => keep(table, rows[i]!));
      if (kept.length === 0) return [];
      const refused = await sink.write(
        table,
        kept.length === rows.length ? rows : kept.map((i) => rows[i]!),
        positions,
      );
      // Refusals name rows by their index in what the sink was given: map them back to the caller's.
      return kept.length === rows.length ? refused : refused.map((r) => ({ ...r, index: kept[r.index]! }));
    },
  };
}

export const groupIdOf = (definition: { name: string }) => `sluice.${definition.name}`;
export const epochKeyOf = (config: SluiceConfig, definition: { name: string }) =>
  `${config.redis.keyPrefix}epoch:${definition.name}`;

/** The current epoch of a stream's dedup marks and window state; a replay moves it on. */
export async function readEpoch(config: SluiceConfig, definition: { name: string }): Promise<number> {
  const redis = createRedis(config, { maxRetriesPerRequest: 3 });
  try {
    await redis.connect();
    return Number((await redis.get(epochKeyOf(config, definition))) ?? '0');
  } finally {
    redis.disconnect();
  }
}

/** The client id of a stream's processes (`<host>#<pid>` is added): how its members are told apart in any group. */
export const streamClientId = (config: SluiceConfig, stream: string): string => `${config.kafka.clientId}-${stream}`;

/**
 * A stream's side topics are named after its source (`<topic>.dlq`, `.late`, `.retry.N`), so a source
 * named like a side topic would share them with the topic it seems to belong to: `orders.late`'s dead
 * letters would land in `orders.dlq`, where a redrive, which sends a DLQ's records only to its own
 * topic, could never return them.
 */
export function refuseSideTopicSource(topic: string): void {
  if (baseTopic(topic) !== topic)
    throw new SluiceError(
      'CONFIG_INVALID',
      `a stream cannot read topic '${topic}': names ending in .dlq, .late or .retry.N are the side topics of '${baseTopic(topic)}', and its own side topics would be theirs (copy the records to a topic of another name to process them)`,
    );
}

/**
 * Wires a stream definition to the real services and starts it as a member
 * of its consumer group: Avro decoding through the registry, Redis dedup and
 * window state, the ClickHouse sink, dead-letter and late topics.
 */
export async function startStream<E, K extends GroupFields, A extends AggregationSpec<E>>(
  definition: StreamDefinition<E, K, A>,
  config: SluiceConfig,
  options: StartOptions,
  log: Logger,
): Promise<RunningStream> {
  const tuning = resolveOptions(PROCESSING_OPTIONS, options);
  if (options.topic) definition = { ...definition, source: { ...definition.source, topic: options.topic } };
  refuseSideTopicSource(definition.source.topic);
  await migrateStreams(config, [definition], {
    onWait: (holder, waitedMs) =>
      log.info({ holder, waitedMs }, 'waiting for another process to finish the ClickHouse migrations'),
  });
  const epoch = options.epoch ?? (await readEpoch(config, definition));

  const codec = SchemaCodec.fromConfig(config);
  const reader = loadAvroSchema(definition.source.schema);
  const decoder = codec.reading(reader);

  const dedup = definition.dedup
    ? await connectRedisDedupStore(config, {
        namespace: definition.name,
        epoch,
        ttlSeconds: definition.dedup.ttlSeconds,
        failOpen: options.dedupFailOpen ?? definition.dedup.onUnavailable === 'fail-open',
      })
    : undefined;

  const stateRedis = createRedis(config, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: tuning.stateTimeoutMs,
  });
  stateRedis.on('error', () => undefined); // surfaced through failed checkpoints, which pause and retry
  await stateRedis.connect();
  const snapshots = new RedisSnapshotStore(stateRedis, `${config.redis.keyPrefix}state:${definition.name}:${epoch}:`);

  // One insert per table per checkpoint (up to maxPendingRows rows): ClickHouse writes a part per insert.
  const sink = new ClickHouseSink({
    settings: config.clickhouse,
    database: config.clickhouse.database,
    maxRows: 50_000,
  });
  const kafka = createKafka(config, { clientId: streamClientId(config, definition.name) });
  const filtered = options.rowFilter ? filteredSink(sink, options.rowFilter) : sink;
  // While a shadow replay swaps partitions in, inserts wait (as if ClickHouse were down): none may land between its copy and its swap.
  const hold =
    options.sinkHold === false ? undefined : new SinkHold(stateRedis, config.redis.keyPrefix, definition.name);
  const held: RowSink = hold
    ? { write: (table, rows, positions) => hold.write(() => filtered.write(table, rows, positions)) }
    : filtered;

  const sideOutputs: SideOutputs =
    options.sideOutputs === false ? { records: () => [] } : new SideRecords({ stream: definition.name });

  const windows = definition.windowed ? new StreamWindows(definition.windowed, definition.source.topic) : undefined;
  const task = new StreamTask(
    definition,
    { decoder, dedup: dedup?.store, now: Date.now, elapsed: () => performance.now() },
    windows,
    {
      eventTimeRange: options.eventTimeRange,
    },
  );
  const runnerOptions: RunnerOptions = {
    groupId: options.groupId ?? groupIdOf(definition),
    bounded: options.bounded ?? false,
    ...tuning,
    epoch,
    endOffsets: options.endOffsets,
    closeWindowsAtEnd: options.closeWindowsAtEnd,
  };
  const runner = new StreamRunner(
    streamKafka(kafka),
    definition,
    task,
    { sink: instrumentRowSink(held, definition.name), side: sideOutputs, snapshots },
    runnerOptions,
    log.child({ stream: definition.name }),
  );

  let closed = false;
  const closeResources = async () => {
    if (closed) return;
    closed = true;
    await sink.close().catch(() => undefined);
    dedup?.close();
    stateRedis.disconnect();
  };
  const done = runner.done.finally(closeResources);
  await runner.start();
  log.info(
    { stream: definition.name, epoch, group: runnerOptions.groupId, kafkaClient: kafkaClientName(config) },
    'stream running',
  );
  return {
    runner: runner as unknown as StreamRunner<unknown>,
    sinkStats: () => sink.stats(),
    done,
    async stop() {
      try {
        return await runner.stop();
      } finally {
        await closeResources();
      }
    },
  };
}
