import { SluiceError } from '../errors';
import type { WorkloadLogEntry } from './log';
import type { PoisonReason, RecordKind } from './workload';

/**
 * The expected results of the reference stream, computed from the
 * generator's log alone. It shares no code with the stream (no validator, no
 * window engine): it trusts the kinds the generator recorded and applies the
 * pipeline's semantics directly, so a test comparing ClickHouse with it
 * compares two independent computations.
 *
 * Semantics applied:
 * - poison records -> `<topic>.dlq`, one each (they never reach dedup);
 * - deduplication by event id: the first record carrying an id counts, every
 *   later record with that id is suppressed, whatever its kind (a re-sent
 *   late event is thus not sent to `.late` a second time);
 * - the first occurrence of a `late` record -> `<topic>.late`; every other
 *   first occurrence is on time and counts in its window;
 * - `events_raw` holds every distinct event that passed validation, late ones
 *   included (the stream writes the raw row before the window decides
 *   lateness), each with the channel the generator gave it; `onTimeEventIds`
 *   is the set without the late ones;
 * - windows: tumbling, `windowMs` wide, aligned to the epoch, grouped by
 *   (event_type, campaign_id with '' for none): events, distinct users, sum of
 *   amount (null counts as 0). Amounts are whole cents by construction, so
 *   sums are exact: compare ClickHouse's Float64 sums rounded to cents.
 */

export interface ExpectedWindowRow {
  /** Epoch ms, inclusive. */
  window_start: number;
  /** Epoch ms, exclusive. */
  window_end: number;
  event_type: string;
  /** '' when the events had no campaign. */
  campaign_id: string;
  events: number;
  distinct_users: number;
  sum_amount: number;
}

export interface ExpectedDeadLetter {
  seq: number;
  key: string | null;
  reason: PoisonReason | undefined;
  /** base64 of the original value, when the log has it. */
  value: string | undefined;
}

export interface ExpectedAnswer {
  records: number;
  byKind: Record<RecordKind, number>;
  /** Expected `events_raw`: distinct ids of every event that passed validation. */
  eventIds: Set<string>;
  /** Expected `events_raw` rows per `channel`: the events of `eventIds`, counted by the channel they were sent with. */
  eventsByChannel: Record<string, number>;
  /** Distinct ids of the events counted in windows. */
  onTimeEventIds: Set<string>;
  /** Expected in `<topic>.late`, one record each. */
  lateEventIds: Set<string>;
  /** Records carrying an already-seen event id (suppressed by dedup). */
  suppressedDuplicates: number;
  /** Expected `event_counts_1m`, sorted by window_start, event_type, campaign_id. */
  windows: ExpectedWindowRow[];
  /** Expected in `<topic>.dlq`, in production order. */
  deadLetters: ExpectedDeadLetter[];
  /** Event time (epoch ms) of the events in `eventIds`: from the earliest, to just after the latest; null without events. */
  eventTimeSpan: { from: number; to: number } | null;
}

export const ONE_MINUTE_MS = 60_000;

interface WindowAccumulator {
  row: Omit<ExpectedWindowRow, 'distinct_users' | 'sum_amount'>;
  users: Set<string>;
  cents: number;
}

/** Builds the expected answer one log entry at a time (logs of millions of records stream through). */
export class ExpectedAnswerBuilder {
  private records = 0;
  private readonly byKind: Record<RecordKind, number> = { valid: 0, duplicate: 0, late: 0, poison: 0 };
  private readonly eventIds = new Set<string>();
  private readonly byChannel = new Map<string, number>();
  private readonly onTime = new Set<string>();
  private readonly late = new Set<string>();
  private suppressed = 0;
  private readonly windows = new Map<string, WindowAccumulator>();
  private readonly deadLetters: ExpectedDeadLetter[] = [];
  private lastSeq = -1;
  private earliest = Infinity;
  private latest = -Infinity;

  constructor(private readonly windowMs: number = ONE_MINUTE_MS) {}

  add(entry: WorkloadLogEntry): void {
    if (entry.seq <= this.lastSeq)
      throw new SluiceError(
        'WORKLOAD_LOG_INVALID',
        `workload log out of order: seq ${entry.seq} after ${this.lastSeq}`,
      );
    this.lastSeq = entry.seq;
    this.records += 1;
    this.byKind[entry.kind] += 1;

    if (entry.kind === 'poison') {
      this.deadLetters.push({ seq: entry.seq, key: entry.key, reason: entry.poisonReason, value: entry.value });
      return;
    }
    const event = entry.event;
    if (!event)
      throw new SluiceError('WORKLOAD_LOG_INVALID', `workload log entry ${entry.seq} (${entry.kind}) has no event`);
    const id = event.event_id;
    if (this.eventIds.has(id)) {
      this.suppressed += 1;
      return;
    }
    this.eventIds.add(id);
    this.byChannel.set(event.channel, (this.byChannel.get(event.channel) ?? 0) + 1);
    this.earliest = Math.min(this.earliest, event.event_time);
    this.latest = Math.max(this.latest, event.event_time);
    if (entry.kind === 'late') {
      this.late.add(id);
      return;
    }
    this.onTime.add(id);

    const windowStart = Math.floor(event.event_time / this.windowMs) * this.windowMs;
    const campaign = event.campaign_id ?? '';
    const key = `${windowStart}\u0000${event.event_type}\u0000${campaign}`;
    let acc = this.windows.get(key);
    if (!acc) {
      acc = {
        row: {
          window_start: windowStart,
          window_end: windowStart + this.windowMs,
          event_type: event.event_type,
          campaign_id: campaign,
          events: 0,
        },
        users: new Set(),
        cents: 0,
      };
      this.windows.set(key, acc);
    }
    acc.row.events += 1;
    acc.users.add(event.user_id);
    // Integer cents: exact however many are summed, in whatever order.
    acc.cents += Math.round((event.amount ?? 0) * 100);
  }

  /** The answer; the builder hands its sets over (no copies of millions of ids), so add nothing after. */
  result(): ExpectedAnswer {
    const windows = [...this.windows.values()]
      .map(({ row, users, cents }) => ({ ...row, distinct_users: users.size, sum_amount: cents / 100 }))
      .sort(
        (a, b) =>
          a.window_start - b.window_start ||
          compareStrings(a.event_type, b.event_type) ||
          compareStrings(a.campaign_id, b.campaign_id),
      );
    return {
      records: this.records,
      byKind: { ...this.byKind },
      eventIds: this.eventIds,
      eventsByChannel: Object.fromEntries([...this.byChannel].sort(([a], [b]) => compareStrings(a, b))),
      onTimeEventIds: this.onTime,
      lateEventIds: this.late,
      suppressedDuplicates: this.suppressed,
      windows,
      deadLetters: [...this.deadLetters],
      eventTimeSpan: this.eventIds.size > 0 ? { from: this.earliest, to: this.latest + 1 } : null,
    };
  }
}

/** Code-unit order (like ClickHouse's ORDER BY on String), not locale order. */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function computeExpected(log: Iterable<WorkloadLogEntry>, windowMs: number = ONE_MINUTE_MS): ExpectedAnswer {
  const builder = new ExpectedAnswerBuilder(windowMs);
  for (const entry of log) builder.add(entry);
  return builder.result();
}

export async function computeExpectedFromLog(
  log: AsyncIterable<WorkloadLogEntry>,
  windowMs: number = ONE_MINUTE_MS,
): Promise<ExpectedAnswer> {
  const builder = new ExpectedAnswerBuilder(windowMs);
  for await (const entry of log) builder.add(entry);
  return builder.result();
}
