import type { AggregationSpec } from './aggregations';
import { lastWindowStart, type FixedWindowAssigner } from './assigners';
import type { GroupFields, WindowDefinition } from './definition';
import { WindowStateError } from './errors';
import { MinHeap } from './heap';
import {
  ADDED,
  GroupedWindowStore,
  type ChangeLog,
  type AddResult,
  type Group,
  type StoredWindow,
  type WindowStore,
} from './window-store';

/** Tumbling and hopping windows: every key's windows share the same boundaries. */
export class FixedWindowStore<E, K extends GroupFields> extends GroupedWindowStore<E, K> implements WindowStore<E, K> {
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
    changes: ChangeLog<K>,
  ) {
    super(definition, changes);
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
        group = this.newGroup(key, event, start, start + sizeMs);
        window.set(group.key, group);
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
      // In the order the groups opened (by id): a restore loads them in that order too (decodeChain),
      // so a window closes the same way after a restart, and nothing needs sorting.
      for (const group of window.values()) {
        this.changes.drop(group);
        this.release(group);
        out.push({ start, end: start + sizeMs, group });
      }
    }
  }

  forEach(visit: (window: StoredWindow<K>) => void): void {
    const { sizeMs } = this.assigner;
    for (const [start, window] of this.windows)
      for (const group of window.values()) visit({ start, end: start + sizeMs, group });
  }

  *scan(): Generator<Group<K>> {
    // Map iterators are live: windows and keys added later are visited, those deleted before being reached are not.
    for (const window of this.windows.values()) for (const group of window.values()) yield group;
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
    group.start = start;
    group.end = end;
    this.changes.loaded(group);
    this.shareIdentity(group);
    window.set(group.key, group);
    this.groups++;
  }
}
