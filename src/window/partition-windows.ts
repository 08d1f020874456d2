import type { AggregateResults, AggregationSpec, AnyAggregation, JsonValue } from './aggregations';
import { lastWindowStart, type FixedWindowAssigner, type SessionWindowAssigner } from './assigners';
import type { GroupFields, WindowDefinition } from './definition';
import { EventTimeError, WindowStateError } from './errors';
import { MinHeap } from './heap';

/** One window row: a partition's partial aggregates for one (window, group key). */
export interface WindowResult<K extends GroupFields, R> {
  windowStart: number;
  windowEnd: number;
  /** The group key string (as `groupBy.key` made it). */
  key: string;
  fields: K;
  aggregates: R;
  /** true: the window closed (watermark passed end + lateness); false: an early, speculative emission. */
  final: boolean;
}

/**
 * Outcome of `add`. `late` means every window the event belongs to has
 * already closed (end + allowedLateness <= watermark): the event changed
 * nothing and must go to the late topic. `added.missedWindows` counts the
 * closed hopping windows an otherwise accepted event could not join.
 */
export type AddResult =
  | { kind: 'added'; missedWindows: number }
  | { kind: 'late'; windowStart: number; windowEnd: number; watermark: number };

export interface WindowSnapshotEntry {
  start: number;
  end: number;
  key: string;
  fields: GroupFields;
  /** One entry per aggregation, in the definition's order. */
  states: JsonValue[];
  /** Changed since the last early emission. */
  changed: boolean;
}

/** JSON-safe state of one partition's windows; `restore` rebuilds exactly this state. */
export interface PartitionWindowsSnapshot {
  format: 1;
  /** The definition's fingerprint (assigner and aggregations). */
  definition: string;
  /** The highest watermark applied (null before any). */
  watermark: number | null;
  /** In the order the windows were opened (deterministic for a given input; `restore` keeps it). */
  windows: WindowSnapshotEntry[];
}

interface Group<K> {
  key: string;
  fields: K;
  states: unknown[];
  changed: boolean;
}

interface Session<K> extends Group<K> {
  start: number;
  end: number;
  alive: boolean;
}

interface StoredWindow<K> {
  start: number;
  end: number;
  group: Group<K>;
}

const ADDED: AddResult = Object.freeze({ kind: 'added', missedWindows: 0 });

/** The two shapes of window state: fixed windows share boundaries across keys, sessions do not. */
interface WindowStore<E, K> {
  add(event: E, eventTimeMs: number, closeBefore: number, watermark: number): AddResult;
  /** Removes and returns the windows whose end <= closeBefore. */
  close(closeBefore: number, out: StoredWindow<K>[]): void;
  forEach(visit: (window: StoredWindow<K>) => void): void;
  load(entry: StoredWindow<K>): void;
  readonly size: number;
}

abstract class BaseStore<E, K extends GroupFields> {
  constructor(protected readonly definition: WindowDefinition<E, K, AggregationSpec<E>>) {}

  protected newGroup(key: string, event: E): Group<K> {
    const fields = this.definition.groupBy.fields(event);
    const aggs = this.definition.aggregations;
    const states = new Array<unknown>(aggs.length);
    for (let i = 0; i < aggs.length; i++) states[i] = aggs[i]!.create();
    return { key, fields, states, changed: true };
  }

  protected accumulate(group: Group<K>, event: E): void {
    const aggs = this.definition.aggregations;
    const states = group.states;
    for (let i = 0; i < aggs.length; i++) states[i] = aggs[i]!.add(states[i], event);
    group.changed = true;
  }
}

class FixedStore<E, K extends GroupFields> extends BaseStore<E, K> implements WindowStore<E, K> {
  /** window start -> group key -> group */
  private readonly windows = new Map<number, Map<string, Group<K>>>();
  /** Window starts; all windows have the same size, so the smallest start is the earliest end. */
  private readonly starts = new MinHeap<number>();
  private groups = 0;
  // Most events land in the window the previous one did: skip the outer lookup then.
  private cachedStart = NaN;
  private cachedWindow: Map<string, Group<K>> | undefined;

  constructor(
    definition: WindowDefinition<E, K, AggregationSpec<E>>,
    private readonly assigner: FixedWindowAssigner,
  ) {
    super(definition);
  }

  get size(): number {
    return this.groups;
  }

  private windowAt(start: number): Map<string, Group<K>> {
    if (start === this.cachedStart) return this.cachedWindow!;
    let window = this.windows.get(start);
    if (window === undefined) {
      window = new Map();
      this.windows.set(start, window);
      this.starts.push(start, start);
    }
    this.cachedStart = start;
    this.cachedWindow = window;
    return window;
  }

  add(event: E, eventTimeMs: number, closeBefore: number, watermark: number): AddResult {
    const { sizeMs, advanceMs } = this.assigner;
    let start = lastWindowStart(this.assigner, eventTimeMs);
    // The latest window closes last: if it is closed, all of the event's windows are.
    if (start + sizeMs <= closeBefore)
      return { kind: 'late', windowStart: start, windowEnd: start + sizeMs, watermark };
    const key = this.definition.groupBy.key(event);
    let missed = 0;
    for (; start > eventTimeMs - sizeMs; start -= advanceMs) {
      if (start + sizeMs <= closeBefore) {
        missed++;
        continue;
      }
      const window = this.windowAt(start);
      let group = window.get(key);
      if (group === undefined) {
        group = this.newGroup(key, event);
        window.set(key, group);
        this.groups++;
      }
      this.accumulate(group, event);
    }
    return missed === 0 ? ADDED : { kind: 'added', missedWindows: missed };
  }

  close(closeBefore: number, out: StoredWindow<K>[]): void {
    const { sizeMs } = this.assigner;
    while (this.starts.size > 0 && this.starts.peekPriority() + sizeMs <= closeBefore) {
      const start = this.starts.pop()!;
      const window = this.windows.get(start)!;
      this.windows.delete(start);
      if (start === this.cachedStart) {
        this.cachedStart = NaN;
        this.cachedWindow = undefined;
      }
      this.groups -= window.size;
      for (const group of window.values()) out.push({ start, end: start + sizeMs, group });
    }
  }

  forEach(visit: (window: StoredWindow<K>) => void): void {
    const { sizeMs } = this.assigner;
    for (const [start, window] of this.windows)
      for (const group of window.values()) visit({ start, end: start + sizeMs, group });
  }

  load({ start, end, group }: StoredWindow<K>): void {
    if (end !== start + this.assigner.sizeMs || lastWindowStart(this.assigner, start) !== start) {
      throw new WindowStateError(
        `saved window [${start}, ${end}) does not fit ${this.assigner.kind} windows of ${this.assigner.sizeMs} ms`,
      );
    }
    const window = this.windowAt(start);
    if (window.has(group.key))
      throw new WindowStateError(`saved window [${start}, ${end}) has key ${JSON.stringify(group.key)} twice`);
    window.set(group.key, group);
    this.groups++;
  }
}

class SessionStore<E, K extends GroupFields> extends BaseStore<E, K> implements WindowStore<E, K> {
  /** group key -> its sessions, sorted by start. */
  private readonly byKey = new Map<string, Session<K>[]>();
  /**
   * One entry per live session, prioritised by a lower bound of its end (the
   * end when it was pushed; sessions only grow). Entries of sessions merged
   * away are skipped when popped; entries whose session grew are re-pushed.
   */
  private readonly ends = new MinHeap<Session<K>>();
  private sessions = 0;

  constructor(
    definition: WindowDefinition<E, K, AggregationSpec<E>>,
    private readonly assigner: SessionWindowAssigner,
  ) {
    super(definition);
  }

  get size(): number {
    return this.sessions;
  }

  add(event: E, eventTimeMs: number, closeBefore: number, watermark: number): AddResult {
    const gap = this.assigner.gapMs;
    const key = this.definition.groupBy.key(event);
    const from = eventTimeMs;
    const to = eventTimeMs + gap;
    const list = this.byKey.get(key);
    // Open sessions the event's own [t, t + gap) overlaps. A session whose end + lateness
    // the watermark has passed is closed even if not yet emitted: it takes no more events,
    // so results do not depend on when closeUpTo happens to be called.
    let first = -1;
    let last = -1;
    if (list !== undefined) {
      for (let i = 0; i < list.length; i++) {
        const s = list[i]!;
        if (s.start >= to) break;
        if (s.end > from && s.end > closeBefore) {
          if (first < 0) first = i;
          last = i;
        }
      }
    }
    if (first < 0) {
      if (to <= closeBefore) return { kind: 'late', windowStart: from, windowEnd: to, watermark };
      const created: Session<K> = { ...this.newGroup(key, event), start: from, end: to, alive: true };
      this.accumulate(created, event);
      this.insert(key, list, created);
      this.ends.push(to, created);
      this.sessions++;
      return ADDED;
    }
    const target = list![first]!;
    // Merge every other overlapping open session into the earliest (an event that bridges sessions joins them).
    if (last > first) {
      const aggs = this.definition.aggregations;
      const kept: Session<K>[] = [];
      for (let i = 0; i < list!.length; i++) {
        const s = list![i]!;
        if (i <= first || i > last || !(s.end > from && s.end > closeBefore)) {
          kept.push(s);
          continue;
        }
        for (let a = 0; a < aggs.length; a++)
          target.states[a] = (aggs[a] as AnyAggregation<E>).merge(target.states[a], s.states[a]);
        if (s.end > target.end) target.end = s.end;
        s.alive = false;
        this.sessions--;
      }
      this.byKey.set(key, kept);
    }
    if (from < target.start) target.start = from;
    if (to > target.end) target.end = to;
    this.accumulate(target, event);
    return ADDED;
  }

  private insert(key: string, list: Session<K>[] | undefined, session: Session<K>): void {
    if (list === undefined) {
      this.byKey.set(key, [session]);
      return;
    }
    let i = list.length;
    while (i > 0 && list[i - 1]!.start > session.start) i--;
    list.splice(i, 0, session);
  }

  close(closeBefore: number, out: StoredWindow<K>[]): void {
    while (this.ends.size > 0 && this.ends.peekPriority() <= closeBefore) {
      const session = this.ends.pop()!;
      if (!session.alive) continue;
      if (session.end > closeBefore) {
        this.ends.push(session.end, session);
        continue;
      }
      session.alive = false;
      this.sessions--;
      const list = this.byKey.get(session.key)!;
      list.splice(list.indexOf(session), 1);
      if (list.length === 0) this.byKey.delete(session.key);
      out.push({ start: session.start, end: session.end, group: session });
    }
  }

  forEach(visit: (window: StoredWindow<K>) => void): void {
    for (const list of this.byKey.values()) for (const s of list) visit({ start: s.start, end: s.end, group: s });
  }

  load({ start, end, group }: StoredWindow<K>): void {
    if (!(end > start)) throw new WindowStateError(`saved session [${start}, ${end}) is empty`);
    const session: Session<K> = { ...group, start, end, alive: true };
    this.insert(group.key, this.byKey.get(group.key), session);
    this.ends.push(end, session);
    this.sessions++;
  }
}

function byEndStartKey<K>(a: StoredWindow<K>, b: StoredWindow<K>): number {
  return a.end - b.end || a.start - b.start || (a.group.key < b.group.key ? -1 : a.group.key > b.group.key ? 1 : 0);
}

function isGroupFields(value: unknown): value is GroupFields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  for (const v of Object.values(value)) {
    if (!(
      v === null ||
      typeof v === 'string' ||
      typeof v === 'boolean' ||
      (typeof v === 'number' && Number.isFinite(v))
    ))
      return false;
  }
  return true;
}

/**
 * The open windows of ONE source partition: partial aggregates per (window,
 * group key) of the events read from that partition. Pure and synchronous:
 * the caller supplies the watermark (see WatermarkTracker) and decides when
 * to close, snapshot and restore.
 *
 * A window [start, end) closes when the watermark reaches end +
 * allowedLateness. The highest watermark ever applied is remembered (and
 * snapshotted), so a window never reopens: once an event was judged late
 * against a watermark, every later event of that window is too.
 */
export class PartitionWindows<E, K extends GroupFields, A extends AggregationSpec<E>> {
  private readonly store: WindowStore<E, K>;
  private appliedWatermark = -Infinity;
  private lastEarlyAt = -Infinity;

  constructor(readonly definition: WindowDefinition<E, K, A>) {
    const def = definition as unknown as WindowDefinition<E, K, AggregationSpec<E>>;
    this.store =
      definition.assigner.kind === 'session'
        ? new SessionStore(def, definition.assigner)
        : new FixedStore(def, definition.assigner);
  }

  /** The highest watermark applied so far (-Infinity before any). */
  get watermark(): number {
    return this.appliedWatermark;
  }

  /**
   * Adds one event read from this partition. `watermarkMs` is the stream's
   * current watermark (lower than one applied before is ignored).
   * Throws EventTimeError for a non-finite event time.
   */
  add(event: E, eventTimeMs: number, watermarkMs: number): AddResult {
    if (!Number.isFinite(eventTimeMs)) throw new EventTimeError(eventTimeMs);
    if (watermarkMs > this.appliedWatermark) this.appliedWatermark = watermarkMs;
    const watermark = this.appliedWatermark;
    return this.store.add(event, eventTimeMs, watermark - this.definition.allowedLatenessMs, watermark);
  }

  /** Removes and returns (final) every window whose end + allowedLateness <= watermark, ordered by end, start, key. */
  closeUpTo(watermarkMs: number): WindowResult<K, AggregateResults<A>>[] {
    if (watermarkMs > this.appliedWatermark) this.appliedWatermark = watermarkMs;
    const closed: StoredWindow<K>[] = [];
    this.store.close(this.appliedWatermark - this.definition.allowedLatenessMs, closed);
    if (closed.length > 1) closed.sort(byEndStartKey);
    return closed.map((w) => this.result(w, true));
  }

  /**
   * End of input (bounded runs): closes every window, as if the watermark
   * reached +Infinity. What is remembered afterwards is the watermark that
   * closes exactly the windows emitted (latest end + allowedLateness), not
   * +Infinity: a later run that resumes this partition from the snapshot
   * treats events of emitted windows as late (their rows are final) but
   * opens later windows normally.
   */
  closeAll(): WindowResult<K, AggregateResults<A>>[] {
    const closed: StoredWindow<K>[] = [];
    this.store.close(Infinity, closed);
    let latestEnd = -Infinity;
    for (const w of closed) if (w.end > latestEnd) latestEnd = w.end;
    const watermark = latestEnd + this.definition.allowedLatenessMs;
    if (watermark > this.appliedWatermark) this.appliedWatermark = watermark;
    if (closed.length > 1) closed.sort(byEndStartKey);
    return closed.map((w) => this.result(w, true));
  }

  /**
   * Early (speculative) results: the current partials of the open windows
   * that changed since the previous early emission, marked `final: false`.
   * Emits at most once per `earlyEmitIntervalMs` of processing time and
   * nothing when the definition has no interval. Close windows first, so a
   * window due to close is emitted final rather than early.
   */
  emitEarly(nowMs: number): WindowResult<K, AggregateResults<A>>[] {
    const interval = this.definition.earlyEmitIntervalMs;
    if (interval === undefined || nowMs < this.lastEarlyAt + interval) return [];
    this.lastEarlyAt = nowMs;
    const changed: StoredWindow<K>[] = [];
    this.store.forEach((w) => {
      if (w.group.changed) changed.push(w);
    });
    changed.sort(byEndStartKey);
    return changed.map((w) => {
      w.group.changed = false;
      return this.result(w, false);
    });
  }

  /** Number of open (window, group key) partials. */
  openWindowCount(): number {
    return this.store.size;
  }

  private result(window: StoredWindow<K>, final: boolean): WindowResult<K, AggregateResults<A>> {
    const { names, aggregations } = this.definition;
    const aggregates: Record<string, unknown> = {};
    for (let i = 0; i < names.length; i++) aggregates[names[i]!] = aggregations[i]!.result(window.group.states[i]);
    return {
      windowStart: window.start,
      windowEnd: window.end,
      key: window.group.key,
      fields: window.group.fields,
      aggregates: aggregates as AggregateResults<A>,
      final,
    };
  }

  snapshot(): PartitionWindowsSnapshot {
    return { ...this.snapshotHead(), windows: this.storedWindows().map((w) => this.snapshotEntry(w)) };
  }

  /**
   * `JSON.stringify(this.snapshot())`, built one window at a time: the object
   * tree of a large state (every distinct set as an array) never exists as a
   * whole, only its text, so a checkpoint's memory peak is the text alone.
   */
  snapshotJson(): string {
    const head = JSON.stringify(this.snapshotHead());
    const windows = this.storedWindows().map((w) => JSON.stringify(this.snapshotEntry(w)));
    return `${head.slice(0, -1)},"windows":[${windows.join(',')}]}`;
  }

  private snapshotHead(): Omit<PartitionWindowsSnapshot, 'windows'> {
    const wm = this.appliedWatermark;
    return { format: 1, definition: this.definition.fingerprint, watermark: wm === -Infinity ? null : wm };
  }

  /** In the store's own order: the same for the same input, and kept by `restore`, so sorting 100k windows at every checkpoint would buy nothing. */
  private storedWindows(): StoredWindow<K>[] {
    const stored: StoredWindow<K>[] = [];
    this.store.forEach((w) => stored.push(w));
    return stored;
  }

  private snapshotEntry({ start, end, group }: StoredWindow<K>): WindowSnapshotEntry {
    const aggs = this.definition.aggregations;
    return {
      start,
      end,
      key: group.key,
      fields: { ...group.fields },
      states: group.states.map((s, i) => aggs[i]!.toJSON(s)),
      changed: group.changed,
    };
  }

  /**
   * Rebuilds the windows from `snapshot()` output (parsed JSON). Throws
   * WindowStateError when it is malformed or was written by a different
   * definition (other assigner or aggregations).
   */
  static restore<E, K extends GroupFields, A extends AggregationSpec<E>>(
    definition: WindowDefinition<E, K, A>,
    snapshot: unknown,
  ): PartitionWindows<E, K, A> {
    const windows = new PartitionWindows(definition);
    if (typeof snapshot !== 'object' || snapshot === null) throw new WindowStateError('window state is not an object');
    const s = snapshot as Partial<Record<keyof PartitionWindowsSnapshot, unknown>>;
    if (s.format !== 1) throw new WindowStateError(`window state has unknown format ${JSON.stringify(s.format)}`);
    if (s.definition !== definition.fingerprint) {
      throw new WindowStateError(
        `window state was saved by a different window definition (${String(s.definition)}, now ${definition.fingerprint}); replay the stream into a new state epoch or restore the old definition`,
      );
    }
    if (s.watermark === null) windows.appliedWatermark = -Infinity;
    else if (typeof s.watermark === 'number' && Number.isFinite(s.watermark)) windows.appliedWatermark = s.watermark;
    else throw new WindowStateError(`window state has invalid watermark ${JSON.stringify(s.watermark)}`);
    if (!Array.isArray(s.windows)) throw new WindowStateError('window state has no windows list');
    const aggs = definition.aggregations;
    for (const raw of s.windows as unknown[]) {
      const entry = raw as Partial<Record<keyof WindowSnapshotEntry, unknown>>;
      if (
        typeof entry !== 'object' ||
        entry === null ||
        typeof entry.start !== 'number' ||
        typeof entry.end !== 'number' ||
        !Number.isFinite(entry.start) ||
        !Number.isFinite(entry.end) ||
        typeof entry.key !== 'string' ||
        !isGroupFields(entry.fields) ||
        !Array.isArray(entry.states) ||
        entry.states.length !== aggs.length ||
        typeof entry.changed !== 'boolean'
      ) {
        throw new WindowStateError(`window state has a malformed window entry: ${JSON.stringify(raw).slice(0, 200)}`);
      }
      const states = entry.states.map((json: unknown, i) => aggs[i]!.fromJSON(json));
      windows.store.load({
        start: entry.start,
        end: entry.end,
        group: { key: entry.key, fields: { ...entry.fields } as K, states, changed: entry.changed },
      });
    }
    return windows;
  }
}
