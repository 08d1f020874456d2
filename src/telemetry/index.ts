export { createLogger, scrubSecrets, REDACTED_PATHS, type Logger } from './logger';
export { recentProblems, type RecentProblem } from './recent';
export { formatLogLine, holdTerminalLine, terminalDestination, type TerminalLine } from './terminal';
export { labelProcessMetrics, processLabel, registeredMetric } from './metrics';
export {
  observabilityRouter,
  startObservabilityServer,
  type Check,
  type ObservabilityRoutes,
  type RunningHttpServer,
} from './http';
export { STATUS_PAGE_HTML } from './status-page';
export {
  startTracing,
  tracingFromEnv,
  traceHeaders,
  producerLinks,
  failSpan,
  tracer,
  withSpan,
  type Tracing,
  type TracingOptions,
} from './tracing';
