/**
 * What observes a running stream: its Prometheus metrics, health checks and
 * status report (StreamMonitor), the HTTP server that serves them, and the
 * instrumented row sink. It sits beside the runtime it reads, so the base
 * telemetry (logger, tracing, HTTP surface) knows nothing of the runtime.
 */
export {
  StreamMonitor,
  type MonitoredStream,
  type StreamMonitorOptions,
  type StreamStatusReport,
  type PartitionStatus,
} from './stream-monitor';
export { serveStream, DEFAULT_HTTP_PORT, type StreamHttpOptions, type ServedStream } from './serve-stream';
export { instrumentRowSink } from './instrumented-sink';
export { streamGauges, sinkObservations, STREAM_COUNTERS } from './metrics';
