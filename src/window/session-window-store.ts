import type { AggregationSpec, AnyAggregation } from './aggregations';
import type { SessionWindowAssigner } from './assigners';
import type { GroupFields, WindowDefinition } from './definition';
import { WindowStateError } from './errors';
import { MinHeap } from './heap';
import {
  ADDED,
  GroupedWindowStore,
  type ChangeLog,
  type AddResult,
  type Group,
  byEndStartKey,
  type StoredWindow,
  type WindowStore,
} from './window-store';

interface Session<K> extends Group<K> {
  alive: boolean;
}

/** Session windows: each key's own, grown by its events and merged when an event bridges two. */
export class SessionWindowStore<E, K extends GroupFields>
  extends GroupedWindowStore<E, K>
  implements WindowStore<E, K>
{
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
    changes: ChangeLog<K>,
  ) {
    super(definition, changes);
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
      const created = this.newGroup(key, event, from, to) as Session<K>;
      created.alive = true;
      this.accumulate(created, event);
      this.insert(created.key, list, created);
      this.ends.push(to, created);
      this.sessions++;
      return ADDED;
    }
    const target = list![first]!;
    // Its bounds and states change below: a checkpoint still encoding it must take it as it was.
    this.changes.touch(target);
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
        this.changes.drop(s);
        this.release(s);
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
    const from = out.length;
    while (this.ends.size > 0 && this.ends.peekPriority() <= closeBefore) {
      const session = this.ends.pop()!;
      if (!session.alive) continue;
      if (session.end > closeBefore) {
        this.ends.push(session.end, session);
        continue;
      }
      session.alive = false;
      this.changes.drop(session);
      this.release(session);
      this.sessions--;
      const list = this.byKey.get(session.key)!;
      list.splice(list.indexOf(session), 1);
      if (list.length === 0) this.byKey.delete(session.key);
      out.push({ start: session.start, end: session.end, group: session });
    }
    // Popped by end alone: sessions of different keys ending together come out in any order.
    if (out.length - from > 1) {
      const closed = out.slice(from).sort(byEndStartKey);
      for (let i = 0; i < closed.length; i++) out[from + i] = closed[i]!;
    }
  }

  forEach(visit: (window: StoredWindow<K>) => void): void {
    for (const list of this.byKey.values()) for (const s of list) visit({ start: s.start, end: s.end, group: s });
  }

  *scan(): Generator<Group<K>> {
    // A key's list is spliced as sessions close and merge: read a copy of it, not the live array.
    for (const list of this.byKey.values()) for (const s of [...list]) yield s;
  }

  load({ start, end, group }: StoredWindow<K>): void {
    if (!(end > start)) throw new WindowStateError(`saved session [${start}, ${end}) is empty`);
    const session: Session<K> = { ...group, start, end, alive: true };
    this.changes.loaded(session);
    this.shareIdentity(session);
    this.insert(session.key, this.byKey.get(session.key), session);
    this.ends.push(end, session);
    this.sessions++;
  }
}
