import type { AggregateResults, AggregationSpec, AnyAggregation } from './aggregations';
import { describeAssigner, type WindowAssigner } from './assigners';
import { WindowDefinitionError } from './errors';

export type GroupFieldValue = string | number | boolean | null;
/** The group key's columns as they appear in output rows; JSON primitives so they survive snapshots. */
export type GroupFields = Record<string, GroupFieldValue>;

export interface GroupBy<E, K extends GroupFields> {
  /** Identifies the group; called for every event, so keep it cheap (a template string of the fields). */
  key(event: E): string;
  /** The group's fields for output rows; called only when a (window, key) is first seen. */
  fields(event: E): K;
}

/**
 * Groups by the fields `fields(event)` returns; the key is derived from their
 * values (JSON of the value list, so 'a' and null never collide). Convenient;
 * a hand-written `GroupBy` with a template-string key is faster.
 */
export function groupByFields<E, K extends GroupFields>(fields: (event: E) => K): GroupBy<E, K> {
  return { key: (event) => JSON.stringify(Object.values(fields(event))), fields };
}

/** One group for the whole stream (a global count per window). */
export function ungrouped<E>(): GroupBy<E, Record<string, never>> {
  return { key: () => '', fields: () => ({}) };
}

export interface WindowDefinitionInput<E, K extends GroupFields, A extends AggregationSpec<E>> {
  assigner: WindowAssigner;
  groupBy: GroupBy<E, K>;
  aggregate: A;
  /**
   * How long after a window's end (in event time) it still accepts events:
   * it closes when the watermark reaches end + allowedLatenessMs. Required;
   * 0 means none. (The watermark already trails the max event time by the
   * stream's out-of-orderness; this is extra grace on top.)
   */
  allowedLatenessMs: number;
  /** Emit the current partials of changed open windows (`final: false`) at most this often, in processing time. Absent: final results only. */
  earlyEmitIntervalMs?: number;
}

/** A validated window definition; build one per stream and share it across partitions. */
export interface WindowDefinition<E, K extends GroupFields, A extends AggregationSpec<E>> {
  readonly assigner: WindowAssigner;
  readonly groupBy: GroupBy<E, K>;
  readonly aggregate: A;
  readonly allowedLatenessMs: number;
  readonly earlyEmitIntervalMs: number | undefined;
  /** Aggregation names in a fixed order, and the aggregations in that order (the hot path indexes, not looks up). */
  readonly names: readonly string[];
  readonly aggregations: readonly AnyAggregation<E>[];
  /** Stored in snapshots; restoring state written under a different fingerprint is refused. */
  readonly fingerprint: string;
  /** Unused at runtime; carries the result type. */
  readonly _results?: AggregateResults<A>;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function defineWindows<E, K extends GroupFields, A extends AggregationSpec<E>>(
  input: WindowDefinitionInput<E, K, A>,
): WindowDefinition<E, K, A> {
  const { assigner, groupBy, aggregate, allowedLatenessMs, earlyEmitIntervalMs } = input;
  if (!assigner || !['tumbling', 'hopping', 'session'].includes(assigner.kind)) {
    throw new WindowDefinitionError(
      'windows need an assigner: tumbling(sizeMs), hopping(sizeMs, advanceMs) or session(gapMs)',
    );
  }
  if (allowedLatenessMs === undefined) {
    throw new WindowDefinitionError(
      'windows need allowedLatenessMs (how long after its end a window still accepts events; 0 for none)',
    );
  }
  if (!Number.isSafeInteger(allowedLatenessMs) || allowedLatenessMs < 0) {
    throw new WindowDefinitionError(
      `allowedLatenessMs must be a whole number of milliseconds >= 0, got ${allowedLatenessMs}`,
    );
  }
  if (earlyEmitIntervalMs !== undefined && (!Number.isSafeInteger(earlyEmitIntervalMs) || earlyEmitIntervalMs <= 0)) {
    throw new WindowDefinitionError(
      `earlyEmitIntervalMs must be a positive whole number of milliseconds, got ${earlyEmitIntervalMs}`,
    );
  }
  if (!groupBy || typeof groupBy.key !== 'function' || typeof groupBy.fields !== 'function') {
    throw new WindowDefinitionError(
      'windows need groupBy: { key(event), fields(event) } (or groupByFields(fn) / ungrouped())',
    );
  }
  const names = Object.keys(aggregate ?? {});
  if (names.length === 0)
    throw new WindowDefinitionError('windows need at least one aggregation, e.g. aggregate: { events: count() }');
  for (const name of names) {
    if (!NAME.test(name))
      throw new WindowDefinitionError(`aggregation name '${name}' must be letters, digits and _ (it becomes a column)`);
    const agg = aggregate[name];
    if (!agg || typeof agg.add !== 'function')
      throw new WindowDefinitionError(
        `aggregation '${name}' is not an aggregation; use count(), sum(fn), min(fn), max(fn), distinct(fn) or approxDistinct(fn, precision)`,
      );
  }
  const aggregations = names.map((n) => aggregate[n]!);
  // Lateness is left out on purpose: changing it between deployments is safe, changing sizes or aggregations is not.
  const fingerprint = `${describeAssigner(assigner)};${names.map((n, i) => `${n}=${aggregations[i]!.describe}`).join(',')}`;
  return Object.freeze({
    assigner,
    groupBy,
    aggregate,
    allowedLatenessMs,
    earlyEmitIntervalMs,
    names,
    aggregations,
    fingerprint,
  });
}

/**
 * `defineWindows` with the event type fixed up front, so the aggregation and
 * grouping callbacks need no annotations (TypeScript cannot infer the event
 * type from one property for the callbacks of another):
 *
 *   windowsOver<PageView>()({ assigner: tumbling(60_000), groupBy: groupByFields((e) => ({ event_type: e.event_type })),
 *     aggregate: { events: count(), users: distinct((e) => e.user_id) }, allowedLatenessMs: 30_000 })
 */
export function windowsOver<E>(): <K extends GroupFields, A extends AggregationSpec<E>>(
  input: WindowDefinitionInput<E, K, A>,
) => WindowDefinition<E, K, A> {
  return (input) => defineWindows(input);
}
