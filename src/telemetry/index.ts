export { createLogger, scrubSecrets, REDACTED_PATHS, type Logger } from './logger';
export { recentProblems, type RecentProblem } from './recent';
export { streamGauges, sinkObservations, STREAM_COUNTERS } from './metrics';
export { instrumentRowSink } from './sink';
export { StreamMonitor, type MonitoredStream, type StreamMonitorOptions, type StreamStatusReport, type Check, type PartitionStatus } from './stream-monitor';
export { observabilityRouter, startObservabilityServer, type ObservabilityRoutes, type RunningHttpServer } from './http';
export { STATUS_PAGE_HTML } from './status-page';
export { serveStream, DEFAULT_HTTP_PORT, type StreamHttpOptions, type ServedStream } from './serve-stream';
export { startTracing, tracingFromEnv, traceHeaders, producerLinks, failSpan, tracer, type Tracing, type TracingOptions } from './tracing';
