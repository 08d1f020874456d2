import { gzipSync } from 'node:zlib';
import type { KafkaClient } from '../kafka';
import { DLQ_HEADERS } from './headers';
import { byTopic, SideTopicProducer } from './producer';
import { deadLetterMessage, lateMessage } from './side-record';
import type { SideRecord } from '../kafka/group';
import type { DeadLetter, LateEvent } from './types';

/**
 * Dead letters as `<topic>.dlq` records and late events as `<topic>.late`
 * records: the runtime's SideOutputs port. The runtime writes them, with the
 * offsets they cover, in one Kafka transaction per input partition.
 */
export class SideRecords {
  constructor(private readonly options: { stream: string; now?: () => Date; maxRecordBytes?: number }) {}

  records(deadLetters: DeadLetter[], late: LateEvent[]): SideRecord[] {
    const now = (this.options.now ?? (() => new Date()))();
    const limit = this.options.maxRecordBytes ?? MAX_SIDE_RECORD_BYTES;
    return [...deadLetters.map((e) => deadLetterMessage(e, this.options.stream, now)), ...late.map(lateMessage)].map(
      ([topic, m]) =>
        fitted(
          {
            topic,
            key: (m.key as Buffer | null | undefined) ?? null,
            value: (m.value as Buffer | null | undefined) ?? null,
            headers: (m.headers ?? {}) as Record<string, string | Buffer>,
          },
          limit,
        ),
    );
  }
}

/**
 * The largest side record written as it is: KafkaClient's default `max.message.bytes` (1 MiB) less room for
 * the batch. The runtime writes side records gzip-compressed, so a compressible record far larger than
 * this still fits, as it did in the source topic.
 */
export const MAX_SIDE_RECORD_BYTES = 1_000_000;

/**
 * A side record that fits in its topic. One that does not even compressed (a source record accepted
 * in a compressed batch can be larger than any single record the side topic takes) keeps its key and
 * headers, which name its source topic, partition and offset, and leaves its value behind, said so in
 * `sluice.dlq.value.omitted` (its size): one record too large for the side topic must not stop the
 * stream, and the original stays readable in the source topic at that offset until retention.
 */
function fitted(record: SideRecord, limit: number): SideRecord {
  const size =
    (record.key?.length ?? 0) +
    (record.value?.length ?? 0) +
    Object.entries(record.headers).reduce((n, [k, v]) => n + k.length + v.length, 0);
  if (size <= limit || !record.value || gzipSync(record.value).length + size - record.value.length <= limit)
    return record;
  return {
    ...record,
    value: null,
    headers: { ...record.headers, [DLQ_HEADERS.valueOmitted]: String(record.value.length) },
  };
}

/**
 * Writes dead letters to `<topic>.dlq` and late events to `<topic>.late`
 * outside any transaction: for tools and tests that write side records of
 * their own (the runtime writes them in its checkpoints' transactions).
 * Each call resolves once every record is acknowledged by all in-sync
 * replicas, and rejects with a retriable ServiceError while it cannot.
 */
export class DeadLetterPublisher {
  private readonly producer: SideTopicProducer;

  constructor(
    kafka: KafkaClient,
    private readonly options: { stream: string; now?: () => Date },
  ) {
    this.producer = new SideTopicProducer(kafka);
  }

  send(entries: DeadLetter[]): Promise<void> {
    const now = (this.options.now ?? (() => new Date()))();
    return this.producer.send(byTopic(entries, (e) => deadLetterMessage(e, this.options.stream, now)));
  }

  deadLetters(entries: DeadLetter[]): Promise<void> {
    return this.send(entries);
  }

  late(entries: LateEvent[]): Promise<void> {
    return this.producer.send(byTopic(entries, lateMessage));
  }

  disconnect(): Promise<void> {
    return this.producer.disconnect();
  }
}
