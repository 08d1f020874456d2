import { ConfigError, ServiceError } from '../errors';
import { isPermanentClass, isReplayOnlyClass } from './classes';
import {
  currentErrorClass,
  deadLetterAttempt,
  DLQ_HEADERS,
  errorClassOf,
  headerString,
  REDRIVE_HEADERS,
  withoutHeaders,
} from './headers';
import { byTopic } from './producer';
import type { KafkaAdmin, KafkaClient, Message, ConsumedRecord } from '../kafka';
import { readTopic } from './reader';
import { baseTopic } from './topics';

/** Headers a redriven record carries to say which record it is a copy of (for people: the runtime claims dedup ids as the copy itself). */
export const REDRIVE_ORIGIN_HEADERS = {
  topic: 'sluice.redrive.origin.topic',
  partition: 'sluice.redrive.origin.partition',
  offset: 'sluice.redrive.origin.offset',
} as const;

export interface RedriveOptions {
  /** Only records whose `sluice.dlq.error.class` equals this (a class's former name counts as its current one). */
  errorClass?: string;
  /** Report what would be redriven; produce and commit nothing. */
  dryRun: boolean;
  /** Redrive permanent classes too (src/dlq/classes.ts); by default they stay in the DLQ, left for a run that asks for them. */
  includePermanent?: boolean;
  /** Records whose `sluice.dlq.attempt` is at least this stay in the DLQ for good: the bound on redrive loops. Default 3. */
  maxAttempts?: number;
  now?: () => Date;
  /** Called as records are scanned: records read so far, records to read (the topic's end minus where the scan starts). */
  onProgress?: (scanned: bigint, total: bigint) => void;
}

export interface RedriveResult {
  dlqTopic: string;
  dryRun: boolean;
  scanned: number;
  /** Records that match and were (or, in a dry run, would be) redriven. */
  redriven: number;
  /** Matching records skipped because an earlier redrive already sent them. */
  alreadyRedriven: number;
  /**
   * Refused rows (SINK_ROW_REFUSED: raw rows and window partials), never sent to the source topic: their events were
   * claimed and counted when the rows were refused, so the remedy is `sluice replay` of their range (src/dlq/classes.ts).
   */
  notRedrivable: number;
  /**
   * Dead letters whose `sluice.dlq.source.topic` names a topic other than the one the DLQ belongs to: never sent
   * anywhere. Sluice writes `<topic>`'s dead letters to `<topic>.dlq` only, so such a record was written by someone
   * else, and a redrive of a DLQ is no way into another topic.
   */
  foreignSource: number;
  /** Records of a permanent class left in the DLQ (no includePermanent); a later run with it still finds them. */
  skippedPermanent: number;
  /** Records at or past maxAttempts: passed over for good. */
  skippedAtBound: number;
  maxAttempts: number;
  /** Redriven (or to be) per class. */
  byClass: Record<string, number>;
  byTarget: Record<string, number>;
  /** Per class of the records scanned: what was (or would be) done with them. */
  plan: RedrivePlanRow[];
  /** The group named after the run. */
  group: string;
  /** The run's transactional id: one per DLQ, whatever the filter (`redriveTransactionalId`). */
  transactionalId: string;
  /** The groups whose offsets the run committed (none in a dry run). */
  committedGroups: string[];
}

export interface RedrivePlanRow {
  errorClass: string;
  permanent: boolean;
  scanned: number;
  redriven: number;
  alreadyRedriven: number;
  skippedPermanent: number;
  skippedAtBound: number;
  notRedrivable: number;
  foreignSource: number;
}

export const DEFAULT_MAX_ATTEMPTS = 3;

/** How a refused window partial's dead letter is marked (it holds a ClickHouse row as JSON, not a source record). */
const WINDOW_PARTIAL_KIND = { header: 'sluice.dlq.kind', value: 'window-partial' } as const;

export const redriveGroup = (dlqTopic: string, errorClass?: string) =>
  errorClass ? `sluice.redrive.${dlqTopic}.class.${errorClass}` : `sluice.redrive.${dlqTopic}`;

/**
 * The transactional id of every redrive of a DLQ, filtered or not: one per DLQ, so any run fences any other
 * (it is the unfiltered group's name, which is what every run used before filtered runs got ids of their own,
 * so a run left open by an older Sluice is aborted too).
 */
export const redriveTransactionalId = (dlqTopic: string) => redriveGroup(dlqTopic);

async function committed(admin: KafkaAdmin, groupId: string, topic: string): Promise<Map<number, bigint>> {
  const [result] = await admin.fetchOffsets(groupId, [topic]);
  return new Map(
    (result?.partitions ?? []).filter((p) => p.offset !== '-1').map((p) => [p.partition, BigInt(p.offset)]),
  );
}

const writtenClassOf = (r: ConsumedRecord) => headerString(r.headers, DLQ_HEADERS.errorClass) ?? 'unknown';

/**
 * Re-produces dead letters to their source topic with their original key,
 * value and headers (Sluice's dlq headers removed, redrive provenance added),
 * and moves the redrive group past them, in one Kafka transaction: a
 * `read_committed` reader of the source topic sees each redriven record once,
 * however often a redrive is interrupted and run again.
 *
 * Bookkeeping: an unfiltered redrive commits `sluice.redrive.<dlq>`; one
 * filtered by class X commits `sluice.redrive.<dlq>.class.X`. A record counts
 * as already redriven if it lies below the unfiltered group's offset, or
 * below its own class group's offset, so mixing filtered and unfiltered runs
 * never sends a record twice. Class groups bear a class's current name; one
 * an older Sluice committed under a former name (ValidationError) still
 * counts for the records written under that name.
 *
 * One run at a time per DLQ: every run of a DLQ, whatever its filter, uses
 * the same transactional id (`redriveTransactionalId`) and starts by taking
 * it over, before it reads any group's offsets. Taking it over fences every
 * other run of that DLQ (a run still going can no longer send or commit: it
 * fails, having redriven nothing) and aborts a transaction a dead run left
 * open, or waits for one being committed. So the offsets a run reads include
 * every commit of every earlier run, filtered or not, and the rule above sees
 * all they sent; and of two runs that overlap, only the later commits. (With
 * one id per group, a filtered and an unfiltered run started together both
 * read the offsets before either committed, and both sent the same records.)
 *
 * Where records go: back to the topic the DLQ belongs to (`<topic>.dlq` →
 * `<topic>`), only. A dead letter whose `sluice.dlq.source.topic` names
 * another topic is not Sluice's (Sluice writes a topic's dead letters to that
 * topic's DLQ, and a record read from a retry topic names its origin, the
 * same topic): anyone who can write to the DLQ could otherwise send bytes of
 * their choosing to any topic the redrive may write. It is counted
 * (`foreignSource`), shown in the plan, and never sent.
 *
 * Refused rows (SINK_ROW_REFUSED) are never sent either: their events were
 * claimed by dedup and counted in their windows when the rows were refused,
 * so a copy would be a duplicate (and, after the dedup TTL, counted twice).
 * The remedy is `sluice replay` of their range once the column can hold the
 * values (src/dlq/classes.ts). A filter on that class is refused.
 *
 * Skipped records: one at or past `maxAttempts` is passed over for good (the
 * bound that stops a loop). One of a permanent class is left for a run that
 * asks for it: an unfiltered run that left any commits the class group of
 * each other class it scanned instead of the unfiltered group, so the
 * unfiltered group's offset keeps meaning "everything below was handled".
 */
export async function redrive(kafka: KafkaClient, dlqTopic: string, options: RedriveOptions): Promise<RedriveResult> {
  const errorClass = options.errorClass === undefined ? undefined : currentErrorClass(options.errorClass);
  const group = redriveGroup(dlqTopic, errorClass);
  const transactionalId = redriveTransactionalId(dlqTopic);
  const home = baseTopic(dlqTopic);
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1)
    throw new ConfigError(`maxAttempts must be a positive integer, got ${maxAttempts}`);
  if (!dlqTopic.endsWith('.dlq'))
    throw new ConfigError(`${dlqTopic} is not a dead-letter topic (<topic>.dlq): only dead letters are redriven`);
  if (errorClass !== undefined && isReplayOnlyClass(errorClass))
    throw new ConfigError(
      `${errorClass} dead letters are never redriven: their events were claimed and counted when the rows were refused, ` +
        `so a copy would be a duplicate. Widen the column, then 'sluice replay <stream> --from <t> --to <t>' over their ` +
        `event times ('sluice dlq show ${home} --class ${errorClass}' shows them)`,
    );
  const includePermanent = options.includePermanent === true;
  // Only after every check that can refuse the run: a refused run leaves no connection open.
  const admin = kafka.admin();
  await admin.connect();
  const producer = options.dryRun
    ? undefined
    : kafka.producer({
        transactionalId,
        idempotent: true,
      });
  try {
    if (producer) {
      await producer.connect();
      // Takes the DLQ's transactional id over (InitProducerId) before any offset is read: see "One run at a time".
      await (await producer.transaction()).abort();
    }
    const allGroup = redriveGroup(dlqTopic);
    const classPrefix = `${allGroup}.class.`;
    const classGroups = (await admin.listGroups()).map((g) => g.groupId).filter((g) => g.startsWith(classPrefix));
    const all = await committed(admin, allGroup, dlqTopic);
    const byClassGroup = new Map<string, Map<number, bigint>>();
    for (const g of classGroups) byClassGroup.set(g.slice(classPrefix.length), await committed(admin, g, dlqTopic));

    const from = new Map(all);
    if (errorClass) {
      for (const [p, o] of byClassGroup.get(errorClass) ?? new Map<number, bigint>())
        if (o > (from.get(p) ?? 0n)) from.set(p, o);
    }
    const classRedrivenBefore = (written: string, partition: number) => {
      const current = byClassGroup.get(currentErrorClass(written))?.get(partition) ?? 0n;
      const former = byClassGroup.get(written)?.get(partition) ?? 0n;
      return current > former ? current : former;
    };

    const result: RedriveResult = {
      dlqTopic,
      dryRun: options.dryRun,
      scanned: 0,
      redriven: 0,
      alreadyRedriven: 0,
      notRedrivable: 0,
      foreignSource: 0,
      skippedPermanent: 0,
      skippedAtBound: 0,
      maxAttempts,
      byClass: {},
      byTarget: {},
      plan: [],
      group,
      transactionalId,
      committedGroups: [],
    };
    const plan = new Map<string, RedrivePlanRow>();
    const rowOf = (cls: string) => {
      let row = plan.get(cls);
      if (!row) {
        row = {
          errorClass: cls,
          permanent: isPermanentClass(cls),
          scanned: 0,
          redriven: 0,
          alreadyRedriven: 0,
          skippedPermanent: 0,
          skippedAtBound: 0,
          notRedrivable: 0,
          foreignSource: 0,
        };
        plan.set(cls, row);
      }
      return row;
    };
    const chosen: ConsumedRecord[] = [];
    const now = (options.now ?? (() => new Date()))();
    const ends = await admin.fetchTopicOffsets(dlqTopic);
    const total = ends.reduce((sum, p) => sum + BigInt(p.high) - (from.get(p.partition) ?? BigInt(p.low)), 0n);
    const onRecord = (r: ConsumedRecord) => {
      result.scanned += 1;
      options.onProgress?.(BigInt(result.scanned), total);
      const cls = errorClassOf(r.headers);
      if (errorClass && cls !== errorClass) return;
      const row = rowOf(cls);
      row.scanned += 1;
      if (headerString(r.headers, WINDOW_PARTIAL_KIND.header) === WINDOW_PARTIAL_KIND.value || isReplayOnlyClass(cls)) {
        result.notRedrivable += 1;
        row.notRedrivable += 1;
        return;
      }
      const named = headerString(r.headers, DLQ_HEADERS.sourceTopic);
      if (named !== undefined && named !== home) {
        result.foreignSource += 1;
        row.foreignSource += 1;
        return;
      }
      if (BigInt(r.offset) < classRedrivenBefore(writtenClassOf(r), r.partition)) {
        result.alreadyRedriven += 1;
        row.alreadyRedriven += 1;
        return;
      }
      if (row.permanent && !includePermanent) {
        result.skippedPermanent += 1;
        row.skippedPermanent += 1;
        return;
      }
      if (deadLetterAttempt(r.headers) >= maxAttempts) {
        result.skippedAtBound += 1;
        row.skippedAtBound += 1;
        return;
      }
      row.redriven += 1;
      chosen.push(r);
    };
    const readUpTo = await readTopic(kafka, dlqTopic, onRecord, { from });
    const messages = byTopic(chosen, (r) => redrivenMessage(r, dlqTopic, now));
    for (const r of chosen)
      result.byClass[errorClassOf(r.headers)] = (result.byClass[errorClassOf(r.headers)] ?? 0) + 1;
    for (const [topic, list] of messages) result.byTarget[topic] = list.length;
    result.redriven = chosen.length;
    result.plan = [...plan.values()].sort((a, b) => a.errorClass.localeCompare(b.errorClass));
    // Records left for a later run (permanent, not asked for) must stay above every group offset that covers them.
    const committing =
      errorClass !== undefined
        ? result.skippedPermanent > 0
          ? []
          : [group]
        : result.skippedPermanent > 0
          ? result.plan.filter((row) => row.skippedPermanent === 0).map((row) => redriveGroup(dlqTopic, row.errorClass))
          : [group];
    if (producer && committing.length > 0) {
      const transaction = await producer.transaction();
      try {
        for (const [topic, list] of messages) await transaction.send({ topic, compression: 'gzip', messages: list });
        for (const consumerGroupId of committing)
          await transaction.sendOffsets(
            consumerGroupId,
            dlqTopic,
            [...readUpTo].map(([partition, offset]) => ({ partition, offset: offset.toString() })),
          );
        await transaction.commit();
        result.committedGroups = committing;
      } catch (err) {
        await transaction.abort().catch(() => undefined);
        throw new ServiceError(
          'kafka',
          `redrive of ${dlqTopic} did not commit (nothing was redriven; run it again: if another redrive of ${dlqTopic} ` +
            `started meanwhile, it took the DLQ over and fenced this one): ${(err as Error).message}`,
          { retriable: true, cause: err },
        );
      }
    }
    options.onProgress?.(BigInt(result.scanned), BigInt(result.scanned));
    return result;
  } finally {
    await producer?.disconnect().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * The original record again, for the topic the DLQ belongs to (never one its headers name: `redrive` passes over a
 * dead letter whose source header names another topic): Sluice's dlq headers removed, where it was redriven from
 * (and its original coordinates) added.
 */
export function redrivenMessage(r: ConsumedRecord, dlqTopic: string, now: Date): [string, Message] {
  const target = baseTopic(dlqTopic);
  return [
    target,
    {
      key: r.key,
      value: r.value,
      headers: {
        ...withoutHeaders(r.headers, 'sluice.dlq.'),
        [REDRIVE_HEADERS.fromTopic]: dlqTopic,
        [REDRIVE_HEADERS.fromPartition]: String(r.partition),
        [REDRIVE_HEADERS.fromOffset]: r.offset,
        [REDRIVE_HEADERS.at]: now.toISOString(),
        [REDRIVE_HEADERS.attempt]: String(deadLetterAttempt(r.headers)),
        [REDRIVE_ORIGIN_HEADERS.topic]: target,
        [REDRIVE_ORIGIN_HEADERS.partition]: headerString(r.headers, DLQ_HEADERS.sourcePartition) ?? '',
        [REDRIVE_ORIGIN_HEADERS.offset]: headerString(r.headers, DLQ_HEADERS.sourceOffset) ?? '',
      },
    },
  ];
}
