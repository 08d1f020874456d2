import { claimant, DEFAULT_DEDUP_TTL_SECONDS, firstOccurrences, type DedupRecord, type DedupStore } from './store';

/**
 * The in-memory twin of the Redis store: same semantics, for the test driver
 * and for single-process runs that do not need dedup to survive a restart.
 * `now` is injectable so TTL expiry can be tested without sleeping.
 */
export class MemoryDedupStore implements DedupStore {
  private readonly marks = new Map<string, { who: string; expiresAt: number }>();

  constructor(
    private readonly options: { ttlSeconds?: number; now?: () => number } = {},
  ) {}

  async claim(records: DedupRecord[]): Promise<boolean[]> {
    const now = (this.options.now ?? Date.now)();
    const ttlMs = (this.options.ttlSeconds ?? DEFAULT_DEDUP_TTL_SECONDS) * 1000;
    const answers = records.map(() => false);
    for (const i of firstOccurrences(records)) {
      const record = records[i]!;
      const who = claimant(record);
      const mark = this.marks.get(record.id);
      if (!mark || mark.expiresAt <= now) {
        this.marks.set(record.id, { who, expiresAt: now + ttlMs });
        answers[i] = true;
      } else {
        answers[i] = mark.who === who;
      }
    }
    return answers;
  }

  /** Marks currently held (expired ones included until overwritten); for tests and metrics. */
  size(): number {
    return this.marks.size;
  }
}
