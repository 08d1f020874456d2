export { parseBound, snapToWindows, inRange, windowInRange, type ReplayBound, type EventTimeRange } from './range';
export {
  describeGroup,
  listGroups,
  refuseLiveMembers,
  partitionOffsets,
  offsetsForTime,
  groupTopics,
  LiveMembersError,
  type GroupInfo,
  type GroupMember,
  type PartitionOffsets,
} from './groups';
export {
  planReplay,
  formatPlan,
  type ReplayPlan,
  type ReplayRequest,
  type PartitionRange,
  type TableChange,
} from './plan';
export { executeReplay, rangeFilter, replaySummaryLines, type ReplayResult, type ReplayProgress } from './execute';
export { lagReport, formatLag, type LagReport, type PartitionLag } from './lag';
export { createProgress, type ProgressReporter } from './progress';
