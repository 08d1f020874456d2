import { count, distinct, max, min, sum } from './aggregations';
import type { WindowAssigner } from './assigners';
import { defineWindows } from './definition';

/** The event the window stores' property specs feed (snapshot.property.test.ts, incremental.test.ts). */
export interface SpecEvent {
  key: string;
  value: number;
  user: string;
}

/** A definition using every kind of aggregation, so a state that restores wrong shows in some field. */
export function specDefinition(assigner: WindowAssigner, allowedLatenessMs = 0, earlyEmitIntervalMs?: number) {
  return defineWindows({
    assigner,
    groupBy: { key: (e: SpecEvent) => e.key, fields: (e: SpecEvent) => ({ key: e.key }) },
    aggregate: {
      n: count(),
      total: sum((e: SpecEvent) => e.value),
      users: distinct((e: SpecEvent) => e.user),
      lo: min((e: SpecEvent) => e.value),
      hi: max((e: SpecEvent) => e.value),
    },
    allowedLatenessMs,
    ...(earlyEmitIntervalMs !== undefined ? { earlyEmitIntervalMs } : {}),
  });
}
