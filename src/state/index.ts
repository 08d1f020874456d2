export { RedisSnapshotStore, MemorySnapshotStore, type SnapshotStore, type PartitionSnapshot, type SnapshotRef } from './snapshots';
