import { ConfigError } from '../errors';
import type { WindowAssigner } from '../window';

/** Where a replay starts or ends: an event time, offsets per partition, or the earliest retained record. */
export type ReplayBound =
  { kind: 'time'; ms: number } | { kind: 'offsets'; offsets: Map<number, bigint> } | { kind: 'earliest' };

/** Parses `--from`/`--to`: an ISO-8601 time (UTC unless it says otherwise), `partition:offset,...` or `earliest`. */
export function parseBound(text: string, option: string): ReplayBound {
  const value = text.trim();
  if (value === 'earliest') return { kind: 'earliest' };
  if (/^\d+:\d+(,\d+:\d+)*$/.test(value)) {
    const offsets = new Map<number, bigint>();
    for (const pair of value.split(',')) {
      const [p, o] = pair.split(':');
      offsets.set(Number(p), BigInt(o!));
    }
    return { kind: 'offsets', offsets };
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    const iso = /[zZ]|[+-]\d{2}:?\d{2}$/.test(value) || !value.includes('T') ? value : `${value}Z`;
    const ms = Date.parse(iso);
    if (Number.isFinite(ms)) return { kind: 'time', ms };
  }
  throw new ConfigError(
    `${option} '${text}' is not a time or offsets: use an ISO time (2026-01-01T10:00:00Z), partition:offset pairs (0:1200,1:1180) or earliest`,
  );
}

/** An event-time range [from, to); null = unbounded on that side. */
export interface EventTimeRange {
  from: number | null;
  to: number | null;
}

/**
 * Widens a requested event-time range to whole windows: the start back to the
 * window boundary at or before it, the end forward to the boundary at or
 * after it. Only windows entirely inside the widened range are rewritten, so
 * every rewritten window is recomputed from all of its events.
 */
export function snapToWindows(range: EventTimeRange, assigner: WindowAssigner | undefined): EventTimeRange {
  if (!assigner || assigner.kind === 'session') return range;
  const step = assigner.advanceMs;
  const floor = (t: number) => Math.floor((t - assigner.offsetMs) / step) * step + assigner.offsetMs;
  const ceil = (t: number) => Math.ceil((t - assigner.offsetMs) / step) * step + assigner.offsetMs;
  return { from: range.from === null ? null : floor(range.from), to: range.to === null ? null : ceil(range.to) };
}

/**
 * The range a replay's window rows must lie in. For fixed windows, the range
 * itself (widened to whole windows). A session has no grid: a replay of a
 * range cannot tell where its sessions begin, because a session whose first
 * event in the range lies less than the gap after `from` may be the tail of
 * one that began before it (the live stream wrote that one whole, under
 * another identity). Only sessions starting at or after `from` + gap are
 * certainly whole (any event before `from` is more than a gap before them),
 * so only those are rewritten; the others stay as the live stream wrote them.
 * At the end no such care is needed: a session whose last event lies less than
 * a gap before `to` ends after `to`, and only sessions ending by `to` are kept.
 */
export function windowRowsRange(range: EventTimeRange, assigner: WindowAssigner | undefined): EventTimeRange {
  if (assigner?.kind !== 'session' || range.from === null) return range;
  return { from: range.from + assigner.gapMs, to: range.to };
}

export const inRange = (range: EventTimeRange, t: number) =>
  (range.from === null || t >= range.from) && (range.to === null || t < range.to);
export const windowInRange = (range: EventTimeRange, start: number, end: number) =>
  (range.from === null || start >= range.from) && (range.to === null || end <= range.to);

export function formatTime(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString();
}
