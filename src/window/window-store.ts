import type { AggregationSpec } from './aggregations';
import type { GroupFields, WindowDefinition } from './definition';

/**
 * Outcome of `add`. `late` means every window the event belongs to has
 * already closed (end + allowedLateness <= watermark): the event changed
 * nothing and must go to the late topic. `added.missedWindows` counts the
 * closed hopping windows an otherwise accepted event could not join.
 */
export type AddResult =
  | { kind: 'added'; missedWindows: number }
  | { kind: 'late'; windowStart: number; windowEnd: number; watermark: number };

export const ADDED: AddResult = Object.freeze({ kind: 'added', missedWindows: 0 });

/** One group key's partial aggregates in one window. */
export interface Group<K> {
  key: string;
  fields: K;
  /** One state per aggregation, in the definition's order. */
  states: unknown[];
  /** Changed since the last early emission. */
  changed: boolean;
  /** The window's bounds (a session's grow; sessions change them only after `ChangeLog.touch`). */
  start: number;
  end: number;
  /** Names the window in incremental checkpoints: unique in the partition, never reused, saved with it. */
  id: number;
  /** The checkpoint generation (`ChangeLog.gen`) it was opened in; -1: read back from a checkpoint. */
  createdIn: number;
  /** The generation it last changed in (it is on that generation's `ChangeLog.dirty`); -2 once closed. */
  changedIn: number;
  /** The generation whose capture has encoded (or kept) it. */
  encodedFor: number;
}

export interface StoredWindow<K> {
  start: number;
  end: number;
  group: Group<K>;
}

/** By end, then start, then group key: a total order of sessions (a key's sessions never overlap). */
export function byEndStartKey<K>(a: StoredWindow<K>, b: StoredWindow<K>): number {
  return a.end - b.end || a.start - b.start || (a.group.key < b.group.key ? -1 : a.group.key > b.group.key ? 1 : 0);
}

/**
 * The open windows of one partition, in one of two shapes: fixed windows
 * share boundaries across keys, sessions do not. A store knows nothing of
 * watermarks or lateness: the caller says which windows count as closed.
 */
export interface WindowStore<E, K> {
  /** Adds the event to its windows that end after closeBefore; `watermark` only describes a late result. */
  add(event: E, eventTimeMs: number, closeBefore: number, watermark: number): AddResult;
  /**
   * Removes the windows whose end <= closeBefore and appends them to `out` by end, then start, then in
   * an order that is the same for the same input and after a restore: the order they opened in (fixed
   * windows) or by key (sessions, `byEndStartKey`).
   */
  close(closeBefore: number, out: StoredWindow<K>[]): void;
  /** In the store's own order: the same for the same input, and kept by `load`. */
  forEach(visit: (window: StoredWindow<K>) => void): void;
  /**
   * Every open group, lazily, over the live store: a base checkpoint reads it a slice per turn while
   * the store changes. It may also yield groups opened since it started (the capture skips them);
   * a group removed before it is reached is not yielded (the capture kept it when it was dropped).
   */
  scan(): Iterator<Group<K>>;
  /** Puts back a window read from a snapshot; throws WindowStateError when it cannot be one of this store's. */
  load(window: StoredWindow<K>): void;
  /** Number of open (window, group key) partials. */
  readonly size: number;
  /** The partition is given up: its open windows release what they share with other partitions' (the store is not used again). */
  dispose(): void;
}

/** A checkpoint capture being encoded (see Capture in incremental.ts). */
export interface PendingCapture<K> {
  readonly gen: number;
  /** True when the capture saves the group (as it was when the capture was taken). */
  includes(group: Group<K>): boolean;
  /** Encodes the group now: it is about to change. */
  encodeNow(group: Group<K>): void;
  /** Keeps a reference to the group for encoding later: it leaves the store and never changes again. */
  keep(group: Group<K>): void;
  /** Encodes everything left at once. */
  finishNow(): void;
}

/**
 * What changed in a partition's windows since the last checkpoint capture, kept on the hot path at
 * the cost of an integer compare per change: the groups changed in the current generation (each
 * listed once, no copies) and the ids of saved windows closed or merged away since. A capture
 * (`PartitionWindows.checkpoint`) takes both in O(1) by starting a new generation, and encodes
 * off the hot path; a group it has not encoded yet is encoded before it changes (`touch`), or kept
 * by reference when it leaves the store (`drop`), so the checkpoint holds each window as it was
 * at the capture.
 */
export class ChangeLog<K> {
  nextId = 0;
  /** The generation changes go to now; a capture takes it and starts the next. */
  gen = 0;
  dirty: Group<K>[] = [];
  removed: number[] = [];
  pending: PendingCapture<K> | undefined;

  /** Call before changing anything a checkpoint saves of the group (states, bounds, `changed`). */
  touch(group: Group<K>): void {
    const capture = this.pending;
    if (capture !== undefined && group.encodedFor !== capture.gen && capture.includes(group)) capture.encodeNow(group);
    if (group.changedIn !== this.gen) {
      group.changedIn = this.gen;
      this.dirty.push(group);
    }
  }

  /** The group left the open windows (closed, or merged into another session): it never changes again. */
  drop(group: Group<K>): void {
    const capture = this.pending;
    if (capture !== undefined && group.encodedFor !== capture.gen && capture.includes(group)) capture.keep(group);
    // Opened in a generation captured since: some saved checkpoint holds it.
    if (group.createdIn < this.gen) this.removed.push(group.id);
    group.changedIn = -2;
  }

  /** A group read back from a checkpoint: saved, unchanged since. */
  loaded(group: Group<K>): void {
    group.createdIn = -1;
    group.changedIn = -1;
    group.encodedFor = -1;
    if (group.id >= this.nextId) this.nextId = group.id + 1;
  }
}

/** A group key and its fields, as every open window of that key holds them. */
interface GroupIdentity<K> {
  key: string;
  fields: K;
  /** Open groups holding this copy: it leaves the pool with the last of them. */
  refs: number;
}

/**
 * One copy of each group key and its fields, shared by every window of the key in every partition
 * of a definition. Each event brings its own key string (often a concatenation, kept with its
 * flattened copy) and its own field values: with many windows open, the same keys were held once
 * per (window, partition), some 150 bytes each. Fields are shared only when equal to the group's
 * own (same names in the same order, same values), so a groupBy whose fields vary for one key
 * keeps each group's fields. An identity is counted by the open groups holding it and leaves the
 * pool when the last of them closes, is merged away or is given up with its partition, so the
 * keys of windows gone are not kept. Bounded all the same (a partition dropped without
 * `dispose` is never released): when full it starts over (groups keep what they hold).
 */
class GroupIdentities<K extends GroupFields> {
  private readonly byKey = new Map<string, GroupIdentity<K>>();

  constructor(private readonly limit = 200_000) {}

  /** The shared copies for a group opened or loaded with these; counts the group until `release`. */
  share(key: string, fields: K): GroupIdentity<K> {
    const shared = this.byKey.get(key);
    if (shared !== undefined) {
      if (!sameFields(shared.fields, fields)) return { key: shared.key, fields, refs: 0 };
      shared.refs++;
      return shared;
    }
    if (this.byKey.size >= this.limit) this.byKey.clear();
    const identity = { key, fields, refs: 1 };
    this.byKey.set(key, identity);
    return identity;
  }

  /** A group that `share` counted left the open windows. Its fields tell which copy it holds (the pool may have started over since). */
  release(key: string, fields: K): void {
    const shared = this.byKey.get(key);
    if (shared !== undefined && shared.fields === fields && --shared.refs <= 0) this.byKey.delete(key);
  }
}

function sameFields(a: GroupFields, b: GroupFields): boolean {
  if (a === b) return true;
  const names = Object.keys(a);
  const others = Object.keys(b);
  if (names.length !== others.length) return false;
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    if (name !== others[i] || a[name] !== b[name]) return false;
  }
  return true;
}

const identities = new WeakMap<object, GroupIdentities<GroupFields>>();

function identitiesOf<K extends GroupFields>(definition: object): GroupIdentities<K> {
  let shared = identities.get(definition);
  if (shared === undefined) {
    shared = new GroupIdentities();
    identities.set(definition, shared);
  }
  return shared as unknown as GroupIdentities<K>;
}

/** What both stores do to a group: start it from an event, and fold events into it. */
export abstract class GroupedWindowStore<E, K extends GroupFields> {
  private readonly identities: GroupIdentities<K>;

  constructor(
    protected readonly definition: WindowDefinition<E, K, AggregationSpec<E>>,
    protected readonly changes: ChangeLog<K>,
  ) {
    this.identities = identitiesOf<K>(definition);
  }

  /** In the store's own order (see WindowStore.forEach). */
  abstract forEach(visit: (window: StoredWindow<K>) => void): void;

  /** The partition is given up with these windows open: they release their shared keys. */
  dispose(): void {
    this.forEach((w) => this.release(w.group));
  }

  /** The group left the open windows (closed or merged away): it no longer holds its shared key. */
  protected release(group: Group<K>): void {
    this.identities.release(group.key, group.fields);
  }

  /** Makes a loaded group hold the shared copies of its key and fields (see GroupIdentities). */
  protected shareIdentity(group: Group<K>): void {
    const shared = this.identities.share(group.key, group.fields);
    group.key = shared.key;
    group.fields = shared.fields;
  }

  /** A new group; its `key` is the shared copy of `key`, the one to index it by. */
  protected newGroup(eventKey: string, event: E, start: number, end: number): Group<K> {
    const { key, fields } = this.identities.share(eventKey, this.definition.groupBy.fields(event));
    const aggs = this.definition.aggregations;
    const states = new Array<unknown>(aggs.length);
    for (let i = 0; i < aggs.length; i++) states[i] = aggs[i]!.create();
    const changes = this.changes;
    const group: Group<K> = {
      key,
      fields,
      states,
      changed: true,
      start,
      end,
      id: changes.nextId++,
      createdIn: changes.gen,
      changedIn: changes.gen,
      encodedFor: -1,
    };
    changes.dirty.push(group);
    return group;
  }

  protected accumulate(group: Group<K>, event: E): void {
    const changes = this.changes;
    if (changes.pending !== undefined || group.changedIn !== changes.gen) changes.touch(group);
    const aggs = this.definition.aggregations;
    const states = group.states;
    for (let i = 0; i < aggs.length; i++) states[i] = aggs[i]!.add(states[i], event);
    group.changed = true;
  }
}
