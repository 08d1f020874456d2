/**
 * Event time: window assigners, mergeable aggregations, per-partition window
 * state, watermarks, and the operator that combines them. Pure: no Kafka, no
 * services. `./testing` (the window test driver) is imported from there
 * directly so production code does not pull it in.
 */
export {
  tumbling,
  hopping,
  session,
  windowsOf,
  type WindowAssigner,
  type FixedWindowAssigner,
  type SessionWindowAssigner,
} from './assigners';
export {
  count,
  sum,
  min,
  max,
  distinct,
  approxDistinct,
  type Aggregation,
  type AnyAggregation,
  type AggregationSpec,
  type AggregateResults,
  type ApproxDistinctResult,
  type JsonValue,
} from './aggregations';
export { HyperLogLog, estimateFromRegisters, HLL_MIN_PRECISION, HLL_MAX_PRECISION, type HllJson } from './hll';
export {
  defineWindows,
  windowsOver,
  groupByFields,
  ungrouped,
  type WindowDefinition,
  type WindowDefinitionInput,
  type GroupBy,
  type GroupFields,
  type GroupFieldValue,
} from './definition';
export { PartitionWindows, type WindowResult, type WindowsCheckpoint } from './partition-windows';
export { CHAIN_LIMITS, type ChainedWindows, type WindowsLinkHead } from './incremental';
export type { AddResult } from './window-store';
export type { PartitionWindowsSnapshot, WindowSnapshotEntry } from './snapshot-encoding';
export {
  WatermarkTracker,
  validateWatermarkSettings,
  type WatermarkSettings,
  type PartitionWatermarkSnapshot,
} from './watermark';
export { WindowOperator, type Lateness, type PartitionEmission, type WindowOperatorSnapshot } from './operator';
export { WindowDefinitionError, WindowStateError, EventTimeError } from './errors';
