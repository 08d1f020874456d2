import { WindowDefinitionError } from './errors';

/**
 * Which windows an event time belongs to. All times are epoch milliseconds of
 * event time; fixed windows are half-open [start, end) and aligned to the
 * epoch plus `offsetMs`.
 */
export type WindowAssigner = FixedWindowAssigner | SessionWindowAssigner;

/** Tumbling windows are hopping windows whose advance equals their size. */
export interface FixedWindowAssigner {
  readonly kind: 'tumbling' | 'hopping';
  readonly sizeMs: number;
  readonly advanceMs: number;
  readonly offsetMs: number;
}

/**
 * A session collects a key's events that are less than `gapMs` apart: each
 * event stands for [t, t + gap), and overlapping ones merge. A session's
 * window is [first event, last event + gap).
 */
export interface SessionWindowAssigner {
  readonly kind: 'session';
  readonly gapMs: number;
}

function positiveMs(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new WindowDefinitionError(`${what} must be a positive whole number of milliseconds, got ${value}`);
  return value;
}

function offset(value: number | undefined, advanceMs: number, what: string): number {
  const ms = value ?? 0;
  if (!Number.isSafeInteger(ms) || ms < 0 || ms >= advanceMs) {
    throw new WindowDefinitionError(
      `${what} offsetMs must be a whole number of milliseconds from 0 to ${advanceMs - 1}, got ${ms}`,
    );
  }
  return ms;
}

/** Back-to-back windows of `sizeMs`: [k·size + offset, (k+1)·size + offset). */
export function tumbling(sizeMs: number, options: { offsetMs?: number } = {}): FixedWindowAssigner {
  positiveMs(sizeMs, 'tumbling window size');
  return Object.freeze({
    kind: 'tumbling',
    sizeMs,
    advanceMs: sizeMs,
    offsetMs: offset(options.offsetMs, sizeMs, 'tumbling window'),
  });
}

/** Windows of `sizeMs` starting every `advanceMs` (≤ size, so every instant is covered); an event is in ⌈size/advance⌉ of them. */
export function hopping(sizeMs: number, advanceMs: number, options: { offsetMs?: number } = {}): FixedWindowAssigner {
  positiveMs(sizeMs, 'hopping window size');
  positiveMs(advanceMs, 'hopping window advance');
  if (advanceMs > sizeMs)
    throw new WindowDefinitionError(
      `hopping window advance (${advanceMs} ms) must not exceed its size (${sizeMs} ms); events between windows would be lost`,
    );
  return Object.freeze({
    kind: 'hopping',
    sizeMs,
    advanceMs,
    offsetMs: offset(options.offsetMs, advanceMs, 'hopping window'),
  });
}

/** Sessions per key, split where two consecutive events are `gapMs` or more apart. */
export function session(gapMs: number): SessionWindowAssigner {
  positiveMs(gapMs, 'session gap');
  return Object.freeze({ kind: 'session', gapMs });
}

/** The start of the latest fixed window containing `eventTimeMs`. */
export function lastWindowStart(assigner: FixedWindowAssigner, eventTimeMs: number): number {
  const { advanceMs, offsetMs } = assigner;
  const shifted = eventTimeMs - offsetMs;
  return shifted - (((shifted % advanceMs) + advanceMs) % advanceMs) + offsetMs;
}

/** All fixed windows containing `eventTimeMs`, oldest first (for tests and tools; the hot path iterates inline). */
export function windowsOf(assigner: FixedWindowAssigner, eventTimeMs: number): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  for (
    let start = lastWindowStart(assigner, eventTimeMs);
    start > eventTimeMs - assigner.sizeMs;
    start -= assigner.advanceMs
  ) {
    out.unshift({ start, end: start + assigner.sizeMs });
  }
  return out;
}

export function describeAssigner(assigner: WindowAssigner): string {
  if (assigner.kind === 'session') return `session(gap=${assigner.gapMs}ms)`;
  if (assigner.kind === 'tumbling') return `tumbling(size=${assigner.sizeMs}ms,offset=${assigner.offsetMs}ms)`;
  return `hopping(size=${assigner.sizeMs}ms,advance=${assigner.advanceMs}ms,offset=${assigner.offsetMs}ms)`;
}
