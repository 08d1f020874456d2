export {
  RedisSnapshotStore,
  MemorySnapshotStore,
  JsonText,
  StateLostError,
  stateMetadata,
  snapshotsOf,
  snapshotId,
  offsetOfSnapshot,
  stateSavedAt,
  type SnapshotStore,
  type PartitionSnapshot,
  type SnapshotRef,
} from './snapshots';
