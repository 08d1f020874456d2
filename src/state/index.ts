export {
  RedisSnapshotStore,
  MemorySnapshotStore,
  JsonText,
  StateLostError,
  stateMetadata,
  snapshotsOf,
  snapshotId,
  offsetOfSnapshot,
  type SnapshotStore,
  type PartitionSnapshot,
  type SnapshotRef,
} from './snapshots';
