import { Counter, Gauge, Histogram, register, type Registry } from 'prom-client';
import { registeredMetric } from '../../telemetry';

/**
 * The Prometheus metrics of a processor. Values the runtime already keeps
 * (counters, positions, watermark) are read at scrape time from a snapshot the
 * stream monitor refreshes; only what happens between snapshots (insert
 * latencies, batch sizes) is observed as it happens.
 *
 * Names follow Prometheus conventions (`_total` counters, `_seconds`, base
 * units) and the OpenTelemetry messaging terms (consumer group, partition,
 * offset, lag).
 */

const SINK_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const ROW_BUCKETS = [1, 10, 50, 100, 500, 1000, 5000, 10_000, 50_000];

export interface SinkObservations {
  insertSeconds: Histogram<'stream' | 'table'>;
  batchRows: Histogram<'stream' | 'table'>;
  writeFailures: Counter<'stream' | 'table'>;
}

/** Insert latency and batch size per table: observed by the instrumented row sink. */
export function sinkObservations(registry: Registry = register): SinkObservations {
  return {
    insertSeconds: registeredMetric(
      'sluice_sink_insert_duration_seconds',
      () =>
        new Histogram({
          name: 'sluice_sink_insert_duration_seconds',
          help: 'Time to write one checkpoint batch of a table to ClickHouse, retries included',
          labelNames: ['stream', 'table'],
          buckets: SINK_BUCKETS,
          registers: [registry],
        }),
      registry,
    ),
    batchRows: registeredMetric(
      'sluice_sink_batch_rows',
      () =>
        new Histogram({
          name: 'sluice_sink_batch_rows',
          help: 'Rows per checkpoint batch written to a ClickHouse table',
          labelNames: ['stream', 'table'],
          buckets: ROW_BUCKETS,
          registers: [registry],
        }),
      registry,
    ),
    writeFailures: registeredMetric(
      'sluice_sink_write_failures_total',
      () =>
        new Counter({
          name: 'sluice_sink_write_failures_total',
          help: 'Checkpoint batch writes that failed after the sink gave up retrying (the checkpoint is retried)',
          labelNames: ['stream', 'table'],
          registers: [registry],
        }),
      registry,
    ),
  };
}

/** Counters mirrored from the runtime's own totals (they only grow; a scrape adds the difference). */
export const STREAM_COUNTERS = {
  recordsIn: ['sluice_records_in_total', 'Records read from the source topic'],
  decoded: ['sluice_records_decoded_total', 'Records decoded and valid'],
  deduplicated: ['sluice_records_deduplicated_total', 'Records dropped as duplicates of an event id already seen'],
  late: ['sluice_records_late_total', 'Events that arrived after their window closed (sent to <topic>.late)'],
  deadLettered: [
    'sluice_records_dead_lettered_total',
    'Records that could not be decoded or validated (sent to <topic>.dlq)',
  ],
  rawRows: ['sluice_rows_raw_total', 'Raw rows produced for ClickHouse'],
  windowRows: ['sluice_rows_window_total', 'Window result rows produced for ClickHouse'],
  dedupFailOpen: [
    'sluice_records_dedup_unchecked_total',
    'Records let through without a dedup check because Redis was unavailable (fail-open)',
  ],
} as const;

export type StreamCounterName = keyof typeof STREAM_COUNTERS;

export interface StreamGauges {
  counters: Record<StreamCounterName, Counter<'stream'>>;
  position: Gauge<'stream' | 'topic' | 'partition'>;
  endOffset: Gauge<'stream' | 'topic' | 'partition'>;
  lag: Gauge<'stream' | 'topic' | 'partition'>;
  paused: Gauge<'stream' | 'topic' | 'partition'>;
  assigned: Gauge<'stream'>;
  watermark: Gauge<'stream'>;
  watermarkDelay: Gauge<'stream'>;
  openWindows: Gauge<'stream'>;
  pendingRows: Gauge<'stream'>;
  checkpoints: Counter<'stream'>;
  checkpointAge: Gauge<'stream'>;
  checkpointFailing: Gauge<'stream'>;
  sinkRows: Counter<'stream'>;
  sinkInserts: Counter<'stream'>;
  sinkRetries: Counter<'stream'>;
  sinkFailures: Counter<'stream'>;
  breaker: Gauge<'stream' | 'state'>;
  sideTopicRecords: Gauge<'stream' | 'topic'>;
  dependencyUp: Gauge<'stream' | 'dependency'>;
  dependencyLatency: Histogram<'stream' | 'dependency'>;
  ready: Gauge<'stream'>;
}

export function streamGauges(registry: Registry = register): StreamGauges {
  const gauge = <L extends string>(name: string, help: string, labelNames: L[]) =>
    registeredMetric(name, () => new Gauge<L>({ name, help, labelNames, registers: [registry] }), registry);
  const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
    registeredMetric(name, () => new Counter<L>({ name, help, labelNames, registers: [registry] }), registry);
  const partitionLabels: ('stream' | 'topic' | 'partition')[] = ['stream', 'topic', 'partition'];
  return {
    counters: Object.fromEntries(
      Object.entries(STREAM_COUNTERS).map(([key, [name, help]]) => [key, counter(name, help, ['stream'])]),
    ) as Record<StreamCounterName, Counter<'stream'>>,
    position: gauge(
      'sluice_consumer_position',
      'The next offset the processor will process, per partition',
      partitionLabels,
    ),
    endOffset: gauge(
      'sluice_consumer_end_offset',
      'The offset the next record produced to the partition will get',
      partitionLabels,
    ),
    lag: gauge(
      'sluice_consumer_lag',
      'Records in the partition not processed yet (end offset minus position)',
      partitionLabels,
    ),
    paused: gauge(
      'sluice_partition_paused',
      '1 while the partition is paused (sink or Redis unavailable, or the sink behind)',
      partitionLabels,
    ),
    assigned: gauge('sluice_partitions_assigned', 'Partitions assigned to this processor', ['stream']),
    watermark: gauge('sluice_watermark_seconds', 'The stream event-time watermark, as Unix seconds', ['stream']),
    watermarkDelay: gauge('sluice_watermark_delay_seconds', 'How far the watermark is behind the wall clock', [
      'stream',
    ]),
    openWindows: gauge('sluice_open_windows', 'Windows open (not yet closed by the watermark)', ['stream']),
    pendingRows: gauge('sluice_pending_rows', 'Rows processed and waiting for the next checkpoint', ['stream']),
    checkpoints: counter('sluice_checkpoints_total', 'Checkpoints committed (sink, side topics, state, offsets)', [
      'stream',
    ]),
    checkpointAge: gauge('sluice_checkpoint_age_seconds', 'Seconds since the last committed checkpoint', ['stream']),
    checkpointFailing: gauge(
      'sluice_checkpoint_failing',
      '1 while a failed checkpoint is being retried (consumption paused)',
      ['stream'],
    ),
    sinkRows: counter('sluice_sink_rows_written_total', 'Rows ClickHouse acknowledged', ['stream']),
    sinkInserts: counter('sluice_sink_inserts_total', 'INSERT statements ClickHouse acknowledged', ['stream']),
    sinkRetries: counter('sluice_sink_retries_total', 'INSERT attempts retried after a retriable failure', ['stream']),
    sinkFailures: counter('sluice_sink_failures_total', 'INSERT attempts that failed', ['stream']),
    breaker: gauge(
      'sluice_sink_circuit_state',
      '1 for the ClickHouse circuit breaker state in force (closed, open, half-open)',
      ['stream', 'state'],
    ),
    sideTopicRecords: gauge(
      'sluice_side_topic_records',
      'Records in the stream dead-letter and late topics, as a read_committed reader sees them',
      ['stream', 'topic'],
    ),
    dependencyUp: gauge(
      'sluice_dependency_up',
      '1 when the last health probe of a dependency (kafka, redis, clickhouse) succeeded',
      ['stream', 'dependency'],
    ),
    dependencyLatency: registeredMetric(
      'sluice_dependency_probe_duration_seconds',
      () =>
        new Histogram({
          name: 'sluice_dependency_probe_duration_seconds',
          help: 'Round-trip time of health probes to Kafka, Redis and ClickHouse',
          labelNames: ['stream', 'dependency'],
          buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
          registers: [registry],
        }),
      registry,
    ),
    ready: gauge('sluice_ready', '1 while the readiness check passes', ['stream']),
  };
}
