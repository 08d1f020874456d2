import type { WorkloadLogEntry } from './log';
import type { PoisonReason, RecordKind } from './workload';

/** What a workload contained: enough for a human to check it against the knobs. */
export interface WorkloadSummary {
  records: number;
  byKind: Record<RecordKind, number>;
  poisonByReason: Partial<Record<PoisonReason, number>>;
  /** Earliest and latest event time of valid (on-time) events, epoch ms; null when there are none. */
  eventTimeSpan: { first: number; last: number } | null;
  /** Bytes of record values sent. */
  valueBytes: number;
}

export class WorkloadTally {
  private records = 0;
  private readonly byKind: Record<RecordKind, number> = { valid: 0, duplicate: 0, late: 0, poison: 0 };
  private readonly poisonByReason: Partial<Record<PoisonReason, number>> = {};
  private first = Infinity;
  private last = -Infinity;
  private valueBytes = 0;

  add(entry: WorkloadLogEntry, valueBytes = 0): void {
    this.records += 1;
    this.byKind[entry.kind] += 1;
    this.valueBytes += valueBytes;
    if (entry.kind === 'poison' && entry.poisonReason) {
      this.poisonByReason[entry.poisonReason] = (this.poisonByReason[entry.poisonReason] ?? 0) + 1;
    }
    if (entry.kind === 'valid' && entry.event) {
      this.first = Math.min(this.first, entry.event.event_time);
      this.last = Math.max(this.last, entry.event.event_time);
    }
  }

  summary(): WorkloadSummary {
    return {
      records: this.records,
      byKind: { ...this.byKind },
      poisonByReason: { ...this.poisonByReason },
      eventTimeSpan: this.records > 0 && this.first <= this.last ? { first: this.first, last: this.last } : null,
      valueBytes: this.valueBytes,
    };
  }
}
