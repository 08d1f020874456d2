export { RedisSnapshotStore, MemorySnapshotStore, JsonText, StateLostError, prunable, type SnapshotStore, type PartitionSnapshot, type SnapshotRef } from './snapshots';
