export { RedisSnapshotStore, MemorySnapshotStore, JsonText, snapshotText, type SnapshotStore, type PartitionSnapshot, type SnapshotRef } from './snapshots';
