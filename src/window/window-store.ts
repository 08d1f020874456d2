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
}

export interface StoredWindow<K> {
  start: number;
  end: number;
  group: Group<K>;
}

/**
 * The open windows of one partition, in one of two shapes: fixed windows
 * share boundaries across keys, sessions do not. A store knows nothing of
 * watermarks or lateness: the caller says which windows count as closed.
 */
export interface WindowStore<E, K> {
  /** Adds the event to its windows that end after closeBefore; `watermark` only describes a late result. */
  add(event: E, eventTimeMs: number, closeBefore: number, watermark: number): AddResult;
  /** Removes and returns the windows whose end <= closeBefore. */
  close(closeBefore: number, out: StoredWindow<K>[]): void;
  /** In the store's own order: the same for the same input, and kept by `load`. */
  forEach(visit: (window: StoredWindow<K>) => void): void;
  /** Puts back a window read from a snapshot; throws WindowStateError when it cannot be one of this store's. */
  load(window: StoredWindow<K>): void;
  /** Number of open (window, group key) partials. */
  readonly size: number;
}

/** What both stores do to a group: start it from an event, and fold events into it. */
export abstract class GroupedWindowStore<E, K extends GroupFields> {
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
