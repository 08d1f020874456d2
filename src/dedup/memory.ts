import { claimant, DEFAULT_DEDUP_TTL_SECONDS, type DedupRecord, type DedupStore } from './store';

/**
 * The in-memory twin of the Redis store: same semantics, for the test driver
 * and for single-process runs that do not need dedup to survive a restart.
 * `now` is injectable so TTL expiry can be tested without sleeping.
 */
export class MemoryDedupStore implements DedupStore {
  private readonly marks = new Map<string, { who: string; expiresAt: number }>();

  constructor(private readonly options: { ttlSeconds?: number; now?: () => number } = {}) {}

  async claim(records: DedupRecord[]): Promise<boolean[]> {
    const now = (this.options.now ?? Date.now)();
    const ttlMs = (this.options.ttlSeconds ?? DEFAULT_DEDUP_TTL_SECONDS) * 1000;
    return records.map((record) => {
      const who = claimant(record);
      const mark = this.marks.get(record.id);
      if (!mark || mark.expiresAt <= now) {
        this.marks.set(record.id, { who, expiresAt: now + ttlMs });
        return true;
      }
      return mark.who === who;
    });
  }

  /** Marks currently held (expired ones included until overwritten); for tests and metrics. */
  size(): number {
    return this.marks.size;
  }
}
