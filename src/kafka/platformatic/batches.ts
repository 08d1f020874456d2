import type { fetchV17, RecordsBatch } from '@platformatic/kafka';
import type { RecordHeaders } from '../api';
import type { ConsumedRecord } from '../record';

/**
 * The pure parts of the platformatic consumer (group.ts): turning one partition of a fetch response
 * into the records a batch delivers, and the member id the runner is told. Only types are imported
 * from @platformatic/kafka, so these run (and are tested) on any Node.js.
 */

/** One partition of a fetch response (the same in every Fetch version the client speaks). */
export type FetchedPartition = fetchV17.FetchResponsePartition;

/** Record batch attribute bits (Kafka's RecordBatch v2). */
const TRANSACTIONAL = 0x10;
const CONTROL = 0x20;
/** A control record's type (its key's second int16): 0 is an abort marker, 1 a commit marker. */
const ABORT_MARKER = 0;

/** What one partition of a fetch response holds for a batch. */
export interface PartitionRead {
  /** The records, in offset order: no commit markers, no records of aborted transactions, none before the fetch offset. */
  records: ConsumedRecord[];
  /** The offset after the last batch the response held (records, markers or aborted records); undefined when it held none. */
  next?: bigint;
}

function isAbortMarker(batch: RecordsBatch): boolean {
  const key = batch.records[0]?.key;
  return key != null && key.length >= 4 && key.readInt16BE(2) === ABORT_MARKER;
}

/**
 * The batches a read_committed reader delivers, as Kafka's own consumer decides: a producer listed in
 * `abortedTransactions` (from its first offset on) is aborted until its abort marker, and its batches
 * in between are dropped, even when the marker is beyond this response. @platformatic/kafka 2.12.1
 * filters too, but keeps one aborted range per producer and none whose marker is not in the response,
 * so it delivers records of aborted transactions in both cases; filtering again here makes that safe
 * (its filter only ever removes aborted batches, which this one would drop as well).
 */
export function committedBatches(
  batches: readonly RecordsBatch[],
  abortedTransactions: readonly { producerId: bigint; firstOffset: bigint }[] | null | undefined,
): RecordsBatch[] {
  const pending = [...(abortedTransactions ?? [])].sort((a, b) =>
    a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0,
  );
  const aborted = new Set<bigint>();
  const out: RecordsBatch[] = [];
  for (const batch of batches) {
    const last = batch.firstOffset + BigInt(batch.lastOffsetDelta);
    if (batch.attributes & TRANSACTIONAL) {
      while (pending.length > 0 && pending[0]!.firstOffset <= last) aborted.add(pending.shift()!.producerId);
    }
    if (batch.attributes & CONTROL) {
      if (isAbortMarker(batch)) aborted.delete(batch.producerId);
      continue;
    }
    if (batch.attributes & TRANSACTIONAL && aborted.has(batch.producerId)) continue;
    out.push(batch);
  }
  return out;
}

function headersOf(entries: readonly [Buffer | null, Buffer | null][]): RecordHeaders {
  const headers: RecordHeaders = {};
  for (const [k, v] of entries) {
    if (k === null) continue;
    const name = k.toString();
    const value = v ?? Buffer.alloc(0);
    const seen = headers[name];
    headers[name] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value];
  }
  return headers;
}

/** The records one partition's fetch response delivers from `fetchOffset` on, and where the next fetch starts. */
export function readPartition(topic: string, fetchOffset: bigint, response: FetchedPartition): PartitionRead {
  const batches = response.records ?? [];
  const lastBatch = batches.at(-1);
  const next = lastBatch ? lastBatch.firstOffset + BigInt(lastBatch.lastOffsetDelta) + 1n : undefined;
  const records: ConsumedRecord[] = [];
  for (const batch of committedBatches(batches, response.abortedTransactions)) {
    for (const r of batch.records) {
      const offset = batch.firstOffset + BigInt(r.offsetDelta);
      // A compressed batch is returned whole: records before the fetch offset were delivered before.
      if (offset < fetchOffset) continue;
      records.push({
        topic,
        partition: response.partitionIndex,
        offset: offset.toString(),
        timestamp: (batch.firstTimestamp + r.timestampDelta).toString(),
        key: r.key ?? null,
        value: r.value ?? null,
        headers: headersOf(r.headers),
      });
    }
  }
  return next !== undefined && next > fetchOffset ? { records, next } : { records };
}

/**
 * The member id the runner is told. The runner takes a changed id for "this member was expelled and
 * joined again: others may have committed its partitions meanwhile" (GroupHandlers.onAssignment).
 * Under KIP-848 a fenced member joins again under the same id (at epoch 0), and a consumer rebuilt after
 * the library gave up may be handed its id back, so every loss of membership is counted into the id.
 */
export class MemberIdentity {
  private losses = 0;

  /** The membership ended (fenced, unknown to the coordinator, expelled, or the consumer was rebuilt). */
  lost(): void {
    this.losses++;
  }

  /** The id to report for the library's member id. */
  of(libraryMemberId: string): string {
    return this.losses === 0 ? libraryMemberId : `${libraryMemberId}#${this.losses}`;
  }
}
