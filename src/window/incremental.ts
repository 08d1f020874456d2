import type { AggregationSpec } from './aggregations';
import type { GroupFields, WindowDefinition } from './definition';
import { WindowStateError } from './errors';
import { decodedWindow, isEntry, malformed, type WindowSnapshotEntry } from './snapshot-encoding';
import type { ChangeLog, Group, PendingCapture, StoredWindow } from './window-store';

/*
 * Window state of format 2: incremental checkpoints (docs/design.md §3.6).
 * A checkpoint is a link of a chain: a base holds every open window, a delta
 * the windows opened or changed since the previous link and the ids of those
 * closed since. Each link is a small head and parts of bounded size, encoded
 * a slice at a time so that no turn of the event loop serialises more than
 * `ENCODING.turnBytes`, whatever the state size. What is written here is read back by
 * the next version of the runtime: change it only with a new `format`.
 */

/** A link's head: saved inline in its snapshot record. */
export interface WindowsLinkHead {
  format: 2;
  kind: 'base' | 'delta';
  /** The definition's fingerprint (assigner and aggregations). */
  definition: string;
  /** The highest watermark applied (null before any). */
  watermark: number | null;
  /** Ids of windows opened later start here. */
  nextId: number;
}

/** One part of a link, as JSON: ids of windows removed since the previous link, then windows opened or changed (a base: every open one). */
export interface WindowsPart {
  r: number[];
  w: (WindowSnapshotEntry & { id: number })[];
}

/** A chain as restore receives it: base first, each link's head and its parts' text. */
export interface ChainedWindows {
  links: { windows: unknown; parts: string[] }[];
}

/** How encoding is sliced (specs lower both to make every capture span many turns). */
export const ENCODING = {
  /** Target size of a part's text: a Redis value of bounded size. */
  partBytes: 64 * 1024,
  /**
   * Text serialised in one turn of the event loop before encoding yields: about 5 ms on a slow
   * machine (bench/checkpoint-block.ts measured about 13 MB/s of window JSON on 2 shared CPUs).
   */
  turnBytes: 64 * 1024,
};
/** Removed ids per part. */
const REMOVED_PER_PART = 32 * 1024;

/** When a checkpoint writes a new base instead of a delta. */
export const CHAIN_LIMITS = {
  /** Deltas after a base at most: restore reads at most this many links after the base. */
  deltas: 30,
  /** Once the deltas since the base hold more than this share of the base's bytes, the next link is a base. */
  ratio: 0.5,
};

/*
 * Encoding shares one budget per turn of the event loop among every capture in progress: each
 * spends what it serialises, and yields once the turn's budget is spent. The budget is counted in
 * bytes, not in time, so a run on simulated time encodes the same way every time.
 */
let spent = 0;
let resetting = false;

function spend(bytes: number): void {
  spent += bytes;
  if (resetting) return;
  resetting = true;
  setImmediate(() => {
    spent = 0;
    resetting = false;
  });
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

type EncodedDefinition<E> = Pick<WindowDefinition<E, GroupFields, AggregationSpec<E>>, 'fingerprint' | 'aggregations'>;

/** One window as a format-2 entry: a format-1 entry with the window's id first. */
export function entryText<E, K>(definition: EncodedDefinition<E>, group: Group<K>): string {
  const aggs = definition.aggregations;
  const states = new Array<unknown>(aggs.length);
  for (let i = 0; i < aggs.length; i++) states[i] = aggs[i]!.toJSON(group.states[i]);
  return JSON.stringify({
    id: group.id,
    start: group.start,
    end: group.end,
    key: group.key,
    fields: group.fields,
    states,
    changed: group.changed,
  });
}

/**
 * One checkpoint's groups, taken at one instant in O(1) and encoded afterwards, a slice per turn.
 * A delta saves the groups changed in generation `gen` (the dirty list it took); a base every
 * group open at the capture (ids below `limit`), read lazily from the live store. A group the
 * capture includes and has not encoded yet is encoded before anything changes it (`encodeNow`),
 * or kept by reference when it leaves the store (`keep`: it never changes again), so the parts
 * hold every group exactly as it was when the capture was taken.
 */
export class Capture<E, K> implements PendingCapture<K> {
  private readonly early: string[] = [];
  private readonly kept: Group<K>[] = [];
  private readonly parts: string[] = [];
  private removedAt = 0;
  private done = false;
  private readonly limit: number;

  constructor(
    private readonly definition: EncodedDefinition<E>,
    private readonly changes: ChangeLog<K>,
    /** Base: every open group, from the live store; delta: the groups changed in `gen`. */
    private readonly source: Iterator<Group<K>>,
    readonly base: boolean,
    private readonly removed: number[],
  ) {
    this.gen = changes.gen;
    this.limit = changes.nextId;
  }

  readonly gen: number;

  includes(group: Group<K>): boolean {
    return this.base ? group.id < this.limit : group.changedIn === this.gen;
  }

  encodeNow(group: Group<K>): void {
    group.encodedFor = this.gen;
    this.early.push(entryText(this.definition, group));
  }

  keep(group: Group<K>): void {
    group.encodedFor = this.gen;
    this.kept.push(group);
  }

  finishNow(): void {
    while (!this.done) this.step(Infinity);
  }

  /** The parts' text. Runs synchronously while the turn's budget lasts (a small state is done at once), then a slice per turn. */
  async encode(): Promise<string[]> {
    while (!this.done) {
      if (spent >= ENCODING.turnBytes) await nextTurn();
      else spend(this.step(ENCODING.partBytes));
    }
    return this.parts;
  }

  /** Encodes one part of up to about `bytes`; returns the text's length. */
  private step(bytes: number): number {
    const { removed, early, kept, definition } = this;
    const ids = JSON.stringify(removed.slice(this.removedAt, this.removedAt + REMOVED_PER_PART));
    this.removedAt = Math.min(removed.length, this.removedAt + REMOVED_PER_PART);
    let size = ids.length;
    const chunk: string[] = [];
    // At least one window per part, whatever the budget, so encoding always advances.
    const room = () => size < bytes || chunk.length === 0;
    while (room() && early.length > 0) size += chunk[chunk.push(early.pop()!) - 1]!.length;
    while (room() && kept.length > 0) size += chunk[chunk.push(entryText(definition, kept.pop()!)) - 1]!.length;
    let exhausted = false;
    while (room()) {
      const next = this.source.next();
      if (next.done) {
        exhausted = true;
        break;
      }
      const group = next.value;
      if (group.encodedFor === this.gen || !this.includes(group)) continue;
      group.encodedFor = this.gen;
      const text = entryText(definition, group);
      chunk.push(text);
      size += text.length;
    }
    if (chunk.length > 0 || ids.length > 2 || this.parts.length === 0)
      this.parts.push(`{"r":${ids},"w":[${chunk.join(',')}]}`);
    // Done once the source is read and nothing kept or encoded early is left; later changes go to the next generation.
    if (exhausted && early.length === 0 && kept.length === 0 && this.removedAt >= removed.length) {
      this.done = true;
      if (this.changes.pending === this) this.changes.pending = undefined;
    }
    return size;
  }
}

/** True for what the state store returns for a format-2 chain. */
export function isChained(snapshot: unknown): snapshot is ChainedWindows {
  return typeof snapshot === 'object' && snapshot !== null && Array.isArray((snapshot as ChainedWindows).links);
}

/** Sizes of a restored chain: what decides when the next base is due. */
export interface ChainStats {
  deltas: number;
  baseBytes: number;
  chainBytes: number;
}

/**
 * Reads a chain: the base's windows, then each delta's removals and windows, in order. The windows
 * come back in the order they were opened (by id), as a store that never stopped holds them.
 * Throws WindowStateError when a link is malformed, out of place, or of another definition.
 */
export function decodeChain<E, K extends GroupFields>(
  definition: EncodedDefinition<E>,
  chain: ChainedWindows,
): { watermark: number; nextId: number; windows: StoredWindow<K>[]; stats: ChainStats } {
  if (chain.links.length === 0) throw new WindowStateError('window state chain has no links');
  const entries = new Map<number, WindowSnapshotEntry & { id: number }>();
  let watermark = -Infinity;
  let nextId = 0;
  const stats: ChainStats = { deltas: chain.links.length - 1, baseBytes: 0, chainBytes: 0 };
  chain.links.forEach((link, index) => {
    const head = checkHead(definition, link.windows, index === 0 ? 'base' : 'delta');
    watermark = head.watermark === null ? -Infinity : head.watermark;
    nextId = head.nextId;
    for (const text of link.parts) {
      if (index === 0) stats.baseBytes += text.length;
      else stats.chainBytes += text.length;
      let part: Partial<WindowsPart>;
      try {
        part = JSON.parse(text) as Partial<WindowsPart>;
      } catch {
        throw new WindowStateError('window state has a part that is not JSON');
      }
      if (!Array.isArray(part?.r) || !Array.isArray(part.w))
        throw new WindowStateError('window state has a malformed part');
      for (const id of part.r) entries.delete(id);
      for (const raw of part.w) {
        if (!isEntry(definition, raw) || !Number.isSafeInteger(raw.id) || raw.id < 0 || raw.id >= head.nextId)
          throw malformed(raw);
        entries.set(raw.id, raw);
      }
    }
  });
  const ids = [...entries.keys()].sort((a, b) => a - b);
  return {
    watermark,
    nextId,
    windows: ids.map((id) => decodedWindow<E, K>(definition, entries.get(id)!, id)),
    stats,
  };
}

function checkHead<E>(definition: EncodedDefinition<E>, raw: unknown, kind: 'base' | 'delta'): WindowsLinkHead {
  const head = raw as Partial<WindowsLinkHead> | null;
  if (typeof head !== 'object' || head === null || head.format !== 2)
    throw new WindowStateError(`window state link has unknown format ${JSON.stringify(head?.format)}`);
  if (head.kind !== kind)
    throw new WindowStateError(`window state chain has a ${String(head.kind)} where a ${kind} belongs`);
  if (head.definition !== definition.fingerprint) {
    throw new WindowStateError(
      `window state was saved by a different window definition (${String(head.definition)}, now ${definition.fingerprint}); replay the stream into a new state epoch or restore the old definition`,
    );
  }
  if (!(head.watermark === null || (typeof head.watermark === 'number' && Number.isFinite(head.watermark))))
    throw new WindowStateError(`window state has invalid watermark ${JSON.stringify(head.watermark)}`);
  if (!Number.isSafeInteger(head.nextId) || head.nextId! < 0)
    throw new WindowStateError(`window state has invalid nextId ${JSON.stringify(head.nextId)}`);
  return head as WindowsLinkHead;
}
