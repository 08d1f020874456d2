export { RedisSnapshotStore, MemorySnapshotStore, JsonText, type SnapshotStore, type PartitionSnapshot, type SnapshotRef } from './snapshots';
