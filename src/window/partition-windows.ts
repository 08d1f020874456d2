import type { AggregateResults, AggregationSpec } from './aggregations';
import type { GroupFields, WindowDefinition } from './definition';
import { EventTimeError } from './errors';
import { FixedWindowStore } from './fixed-window-store';
import { SessionWindowStore } from './session-window-store';
import { CHAIN_LIMITS, Capture, decodeChain, isChained, type ChainStats, type WindowsLinkHead } from './incremental';
import { decodeSnapshot, encodeSnapshot, encodeSnapshotJson, type PartitionWindowsSnapshot } from './snapshot-encoding';
import { byEndStartKey, ChangeLog, type AddResult, type StoredWindow, type WindowStore } from './window-store';

/** One incremental checkpoint of a partition's windows (see `PartitionWindows.checkpoint`). */
export interface WindowsCheckpoint {
  /** A base (every open window) rather than a delta on the previous checkpoint. */
  base: boolean;
  head: WindowsLinkHead;
  /** The parts' text, encoded a slice per turn of the event loop. */
  parts: Promise<string[]>;
}

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
  private readonly changes = new ChangeLog<K>();
  private appliedWatermark = -Infinity;
  private lastEarlyAt = -Infinity;
  /** The chain the next delta extends; none yet (a fresh partition, or restored from format 1): the next checkpoint is a base. */
  private chain: ChainStats | undefined;

  constructor(readonly definition: WindowDefinition<E, K, A>) {
    const def = definition as unknown as WindowDefinition<E, K, AggregationSpec<E>>;
    this.store =
      definition.assigner.kind === 'session'
        ? new SessionWindowStore(def, definition.assigner, this.changes)
        : new FixedWindowStore(def, definition.assigner, this.changes);
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

  /** Removes and returns (final) every window whose end + allowedLateness <= watermark, in the store's close order (WindowStore.close). */
  closeUpTo(watermarkMs: number): WindowResult<K, AggregateResults<A>>[] {
    if (watermarkMs > this.appliedWatermark) this.appliedWatermark = watermarkMs;
    const closed: StoredWindow<K>[] = [];
    this.store.close(this.appliedWatermark - this.definition.allowedLatenessMs, closed);
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
      this.changes.touch(w.group);
      w.group.changed = false;
      return this.result(w, false);
    });
  }

  /**
   * The partition is given up (revoked): its open windows release the group keys and fields they
   * share with other partitions of the definition. Not used again afterwards.
   */
  dispose(): void {
    this.store.dispose();
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
    return encodeSnapshot(this.definition, this.appliedWatermark, this.storedWindows());
  }

  /**
   * `JSON.stringify(this.snapshot())`, built one window at a time: the object
   * tree of a large state (every distinct set as an array) never exists as a
   * whole, only its text, so a checkpoint's memory peak is the text alone.
   */
  snapshotJson(): string {
    return encodeSnapshotJson(this.definition, this.appliedWatermark, this.storedWindows());
  }

  /** In the store's own order: the same for the same input, and kept by `restore`, so sorting 100k windows at every checkpoint would buy nothing. */
  private storedWindows(): StoredWindow<K>[] {
    const stored: StoredWindow<K>[] = [];
    this.store.forEach((w) => stored.push(w));
    return stored;
  }

  /**
   * An incremental checkpoint: takes, at this instant, what changed since the previous one (a
   * delta: windows opened or changed, ids of saved windows closed) or every open window (a base),
   * and encodes it off the hot path. The capture itself is synchronous and costs a flag per window
   * taken; encoding runs a bounded slice per turn of the event loop, and a window changed before
   * its turn is encoded first, so the parts hold the state as of this call. The caller saves the
   * parts once they resolve, and must not take the next checkpoint before they do.
   *
   * A base is written when `base` is asked for (the caller has no chain to extend), when there is
   * no chain yet, or when the chain is long or large (`CHAIN_LIMITS`): restore reads the base and
   * every delta since, so the chain's size is bounded by a share of the base's.
   */
  checkpoint(base = false): WindowsCheckpoint {
    const changes = this.changes;
    // The runtime awaits each checkpoint's parts before taking the next; if one is still being
    // encoded all the same, it finishes now, as it must before another capture takes its groups.
    changes.pending?.finishNow();
    const chain = this.chain;
    const full =
      base ||
      chain === undefined ||
      chain.deltas >= CHAIN_LIMITS.deltas ||
      chain.chainBytes > chain.baseBytes * CHAIN_LIMITS.ratio;
    const head: WindowsLinkHead = {
      format: 2,
      kind: full ? 'base' : 'delta',
      definition: this.definition.fingerprint,
      watermark: this.appliedWatermark === -Infinity ? null : this.appliedWatermark,
      nextId: changes.nextId,
    };
    const source = full ? this.store.scan() : changes.dirty[Symbol.iterator]();
    const capture = new Capture(this.definition, changes, source, full, full ? [] : changes.removed);
    changes.pending = capture;
    changes.dirty = [];
    changes.removed = [];
    changes.gen++;
    const parts = capture.encode();
    void parts.then(
      (texts) => {
        let bytes = 0;
        for (const t of texts) bytes += t.length;
        if (full) this.chain = { deltas: 0, baseBytes: bytes, chainBytes: 0 };
        else if (this.chain)
          this.chain = { ...this.chain, deltas: this.chain.deltas + 1, chainBytes: this.chain.chainBytes + bytes };
      },
      () => undefined,
    );
    return { base: full, head, parts };
  }

  /**
   * Rebuilds the windows from `snapshot()` output (parsed JSON), or from a chain of incremental
   * checkpoints as the state store returns it (`ChainedWindows`: base first). Throws
   * WindowStateError when it is malformed or was written by a different
   * definition (other assigner or aggregations).
   */
  static restore<E, K extends GroupFields, A extends AggregationSpec<E>>(
    definition: WindowDefinition<E, K, A>,
    snapshot: unknown,
  ): PartitionWindows<E, K, A> {
    const windows = new PartitionWindows(definition);
    if (isChained(snapshot)) {
      const decoded = decodeChain<E, K>(definition, snapshot);
      windows.appliedWatermark = decoded.watermark;
      for (const window of decoded.windows) windows.store.load(window);
      if (decoded.nextId > windows.changes.nextId) windows.changes.nextId = decoded.nextId;
      windows.chain = decoded.stats;
      return windows;
    }
    const decoded = decodeSnapshot<E, K>(definition, snapshot);
    windows.appliedWatermark = decoded.watermark;
    for (const window of decoded.windows) windows.store.load(window);
    return windows;
  }
}
