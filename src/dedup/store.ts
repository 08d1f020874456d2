/**
 * Deduplication by event id that cannot lose events (docs/design.md §3.4).
 *
 * A naive `SET id NX` loses an event when the process dies after marking the
 * id and before the sink has the row: the redelivered record is then skipped
 * forever. Here a mark records WHO claimed the id (topic/partition/offset), so
 * a redelivery of that same record is recognised as its own claim and let
 * through again, while a different record carrying the same id is a duplicate.
 */
import { SluiceError } from '../errors';

/** One record asking to claim its id. `offset` is the Kafka offset as a string (as kafkajs gives it). */
export interface DedupRecord {
  id: string;
  topic: string;
  partition: number;
  offset: string;
}

export interface DedupStore {
  /**
   * One answer per record, in order: true = process it, false = a duplicate of
   * the record that claimed the id first. Records are claimed in order, each
   * against the store, including several of one id in one call: the first to
   * claim a free id wins, and a record that already holds the mark passes
   * again, wherever it is in the call. (A shortcut that took every later
   * occurrence in a call for a duplicate without asking the store drops both
   * copies when the mark belongs to the later one.) Rejects with a retriable ServiceError when the store is
   * unreachable (unless it was built fail-open).
   */
  claim(records: DedupRecord[]): Promise<boolean[]>;
}

export interface DedupScope {
  /** Usually the stream name. */
  namespace: string;
  /** Bumped by a replay so that replayed records are not taken for duplicates of the first run. */
  epoch?: number;
}

export const DEFAULT_DEDUP_TTL_SECONDS = 24 * 60 * 60;

/** The claimant written into a mark: enough to recognise a redelivery of the same record. */
export function claimant(record: DedupRecord): string {
  return `${record.topic}/${record.partition}/${record.offset}`;
}

/** `<keyPrefix>dedup:<namespace>:<epoch>:` — every mark of one scope starts with this. */
export function dedupKeyPrefix(keyPrefix: string, scope: DedupScope): string {
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(scope.namespace)) {
    throw new SluiceError(
      'DEDUP_OPTIONS_INVALID',
      `dedup namespace '${scope.namespace}' must be letters, digits, '.', '_' or '-'`,
    );
  }
  const epoch = scope.epoch ?? 0;
  if (!Number.isSafeInteger(epoch) || epoch < 0)
    throw new SluiceError('DEDUP_OPTIONS_INVALID', `dedup epoch must be a non-negative integer, got ${epoch}`);
  return `${keyPrefix}dedup:${scope.namespace}:${epoch}:`;
}
