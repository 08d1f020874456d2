export {
  defineStream,
  clickHouseSchemaOf,
  type StreamDefinition,
  type WindowOutput,
  type Row,
  type Validation,
} from './definition';
export type { ConsumedRecord } from '../kafka';
export type { TableDefinition } from '../sink/clickhouse';
export {
  StreamTask,
  streamCounters,
  type StreamCounters,
  type Checkpoint,
  type TaskOptions,
  type TaskEventTimeRange,
} from './task';
export { LATE_SHARE_WARNING, lateShare, lateShareWarning, formatShare } from './late-share';
export { StreamWindows } from './windows';
export { StreamRunner, type RunnerOptions, type RunSummary, type RunnerStatus } from './runner';
export { commitCheckpoint } from './checkpoint';
export {
  startStream,
  filteredSink,
  readEpoch,
  groupIdOf,
  streamClientId,
  refuseSideTopicSource,
  epochKeyOf,
  type StartOptions,
  type RunningStream,
} from './start';
export { loadStream, listStreams, STREAMS_DIR } from './load';
export { migrateStreams, migrationLeaseKeyOf } from './schema';
export {
  PROCESSING_OPTIONS,
  SERVING_OPTIONS,
  RUN_OPTIONS,
  resolveOptions,
  type ProcessingOptions,
  type ServingOptions,
} from './options';
