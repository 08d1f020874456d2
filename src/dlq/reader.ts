import { randomBytes } from 'node:crypto';
import { ServiceError } from '../errors';
import { topicOffsets, type KafkaClient, type BatchControl, type ConsumedRecord } from '../kafka';

export interface ReadOptions {
  /** Start per partition (default: the earliest retained offset). */
  from?: Map<number, bigint>;
  limit?: number;
  timeoutMs?: number;
}

/**
 * Reads a topic from the given start offsets up to its end as of the call
 * (a bounded snapshot: records produced meanwhile are left for next time),
 * in offset order per partition. Returns the end offsets it read up to.
 */
export async function readTopic(
  kafka: KafkaClient,
  topic: string,
  onRecord: (record: ConsumedRecord) => void,
  options: ReadOptions = {},
): Promise<Map<number, bigint>> {
  const admin = kafka.admin();
  await admin.connect();
  // A throwaway group, deleted afterwards: reading commits nothing.
  const groupId = `sluice.reader.${randomBytes(6).toString('hex')}`;
  // A reader that commits nothing; read_committed, so records of aborted transactions are never seen and counts are exact.
  const consumer = kafka.consumer({ groupId, topic, sessionTimeoutMs: 30_000, maxWaitMs: 100, retries: 2 });
  let joined = false;
  try {
    const offsets = await topicOffsets(admin, topic).catch((err: unknown) => {
      throw new ServiceError(
        'kafka',
        `cannot read topic ${topic} (${(err as Error).message}): check the name with 'sluice topics apply --dry-run'`,
        { cause: err },
      );
    });
    const end = new Map([...offsets].map(([p, o]) => [p, o.high]));
    const start = new Map(
      [...offsets].map(([p, o]) => [p, [o.low, options.from?.get(p) ?? 0n].reduce((a, b) => (a > b ? a : b))]),
    );
    const remaining = new Set([...end].filter(([p, e]) => start.get(p)! < e).map(([p]) => p));
    if (remaining.size === 0 || options.limit === 0) return end;

    let seen = 0;
    joined = true;
    const finished = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new ServiceError(
              'kafka',
              `reading ${topic} did not finish within ${options.timeoutMs ?? 30_000} ms: is the broker up? (a transaction left open on it holds readers back until Kafka aborts it)`,
              { retriable: true },
            ),
          ),
        options.timeoutMs ?? 30_000,
      );
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const onBatch = async (p: number, records: ConsumedRecord[], control: BatchControl): Promise<void> => {
        try {
          if (!remaining.has(p)) return;
          for (const record of records) {
            const offset = BigInt(record.offset);
            if (offset < start.get(p)!) continue; // fetched before the seek took effect
            if (offset >= end.get(p)!) break;
            if (options.limit !== undefined && seen >= options.limit) break;
            seen += 1;
            onRecord(record);
            if (offset + 1n >= end.get(p)!) remaining.delete(p);
          }
          // Transactional topics end with control records (commit markers), which carry offsets but are
          // never delivered as records: the batch's last offset, not its last record, says how far it got.
          if (
            remaining.has(p) &&
            BigInt(control.lastOffset) + 1n >= end.get(p)! &&
            (options.limit === undefined || seen < options.limit)
          )
            remaining.delete(p);
          if (remaining.size === 0 || (options.limit !== undefined && seen >= options.limit)) done();
        } finally {
          // Read on past the whole batch, as the consumer's own resolving used to.
          control.resolve(control.lastOffset);
        }
      };
      // A range that ends in offsets holding no records (a commit marker) is never delivered as a batch:
      // the consumer tells of it here, and reaching the end so counts as done.
      const onSkip = (p: number, _from: string, to: string): void => {
        if (!remaining.has(p) || BigInt(to) < end.get(p)!) return;
        remaining.delete(p);
        if (remaining.size === 0) done();
      };
      // Seeks once, as the group is joined and before its first fetch.
      let sought = false;
      const onAssignment = () => {
        if (sought) return;
        sought = true;
        for (const p of remaining) consumer.seek(p, start.get(p)!.toString());
      };
      consumer.start({ onAssignment, onBatch, onSkip, onCrash: reject }).catch(reject);
    });
    await finished;
    return end;
  } finally {
    // Deleting a group that never existed makes kafkajs retry for seconds: only clean up what was created.
    if (joined) {
      await consumer.disconnect().catch(() => undefined);
      await admin.deleteGroups([groupId]).catch(() => undefined);
    }
    await admin.disconnect().catch(() => undefined);
  }
}
