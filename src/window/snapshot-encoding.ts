import type { AggregationSpec, JsonValue } from './aggregations';
import type { GroupFields, WindowDefinition } from './definition';
import { WindowStateError } from './errors';
import type { StoredWindow } from './window-store';

/*
 * The JSON form of one partition's windows, as checkpoints save it in Redis.
 * What is written here is read back by the next version of the runtime:
 * change it only with a new `format` (samples of each are in
 * snapshot-format.test.ts).
 */

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

/** What encoding needs of a definition: its identity, and how each aggregation's state is written. */
type EncodedDefinition<E> = Pick<WindowDefinition<E, GroupFields, AggregationSpec<E>>, 'fingerprint' | 'aggregations'>;

export function encodeSnapshot<E, K extends GroupFields>(
  definition: EncodedDefinition<E>,
  watermark: number,
  windows: StoredWindow<K>[],
): PartitionWindowsSnapshot {
  return { ...snapshotHead(definition, watermark), windows: windows.map((w) => snapshotEntry(definition, w)) };
}

/**
 * `JSON.stringify(encodeSnapshot(...))`, built one window at a time: the object
 * tree of a large state (every distinct set as an array) never exists as a
 * whole, only its text, so a checkpoint's memory peak is the text alone.
 */
export function encodeSnapshotJson<E, K extends GroupFields>(
  definition: EncodedDefinition<E>,
  watermark: number,
  windows: StoredWindow<K>[],
): string {
  const head = JSON.stringify(snapshotHead(definition, watermark));
  const entries = windows.map((w) => JSON.stringify(snapshotEntry(definition, w)));
  return `${head.slice(0, -1)},"windows":[${entries.join(',')}]}`;
}

function snapshotHead<E>(
  definition: EncodedDefinition<E>,
  watermark: number,
): Omit<PartitionWindowsSnapshot, 'windows'> {
  return { format: 1, definition: definition.fingerprint, watermark: watermark === -Infinity ? null : watermark };
}

function snapshotEntry<E, K extends GroupFields>(
  definition: EncodedDefinition<E>,
  { start, end, group }: StoredWindow<K>,
): WindowSnapshotEntry {
  const aggs = definition.aggregations;
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
 * Reads `encodeSnapshot` output (parsed JSON). The head is checked at once;
 * the windows are checked and decoded one at a time as they are iterated, so
 * the first bad one is reported in order with the store's own refusals.
 * Throws WindowStateError when the state is malformed or was written by a
 * different definition (other assigner or aggregations).
 */
export function decodeSnapshot<E, K extends GroupFields>(
  definition: EncodedDefinition<E>,
  snapshot: unknown,
): { watermark: number; windows: Iterable<StoredWindow<K>> } {
  if (typeof snapshot !== 'object' || snapshot === null) throw new WindowStateError('window state is not an object');
  const s = snapshot as Partial<Record<keyof PartitionWindowsSnapshot, unknown>>;
  if (s.format !== 1) throw new WindowStateError(`window state has unknown format ${JSON.stringify(s.format)}`);
  if (s.definition !== definition.fingerprint) {
    throw new WindowStateError(
      `window state was saved by a different window definition (${String(s.definition)}, now ${definition.fingerprint}); replay the stream into a new state epoch or restore the old definition`,
    );
  }
  let watermark: number;
  if (s.watermark === null) watermark = -Infinity;
  else if (typeof s.watermark === 'number' && Number.isFinite(s.watermark)) watermark = s.watermark;
  else throw new WindowStateError(`window state has invalid watermark ${JSON.stringify(s.watermark)}`);
  if (!Array.isArray(s.windows)) throw new WindowStateError('window state has no windows list');
  return { watermark, windows: decodeEntries(definition, s.windows as unknown[]) };
}

function* decodeEntries<E, K extends GroupFields>(
  definition: EncodedDefinition<E>,
  entries: unknown[],
): Generator<StoredWindow<K>> {
  // Format 1 has no window ids: they are given in the saved order, and the next checkpoint is a full one.
  let id = 0;
  for (const raw of entries) {
    if (!isEntry(definition, raw)) throw malformed(raw);
    yield decodedWindow(definition, raw, id++);
  }
}

export function malformed(raw: unknown): WindowStateError {
  return new WindowStateError(`window state has a malformed window entry: ${JSON.stringify(raw).slice(0, 200)}`);
}

export function decodedWindow<E, K extends GroupFields>(
  definition: EncodedDefinition<E>,
  entry: WindowSnapshotEntry,
  id: number,
): StoredWindow<K> {
  const aggs = definition.aggregations;
  const states = entry.states.map((json: unknown, i) => aggs[i]!.fromJSON(json));
  const { start, end } = entry;
  return {
    start,
    end,
    group: {
      key: entry.key,
      fields: { ...entry.fields } as K,
      states,
      changed: entry.changed,
      start,
      end,
      id,
      createdIn: -1,
      changedIn: -1,
      encodedFor: -1,
    },
  };
}

export function isEntry<E>(definition: EncodedDefinition<E>, raw: unknown): raw is WindowSnapshotEntry {
  const entry = raw as Partial<Record<keyof WindowSnapshotEntry, unknown>>;
  return !(
    typeof entry !== 'object' ||
    entry === null ||
    typeof entry.start !== 'number' ||
    typeof entry.end !== 'number' ||
    !Number.isFinite(entry.start) ||
    !Number.isFinite(entry.end) ||
    typeof entry.key !== 'string' ||
    !isGroupFields(entry.fields) ||
    !Array.isArray(entry.states) ||
    entry.states.length !== definition.aggregations.length ||
    typeof entry.changed !== 'boolean'
  );
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
