import { MemoryDedupStore } from '../dedup';
import { SluiceError } from '../errors';
import { loadAvroSchema, parseAvroType } from '../schema';
import type { AggregationSpec, GroupFields } from '../window';
import type { ConsumedRecord } from '../kafka';
import type { Row, StreamDefinition } from './definition';
import type { DeadLetter, LateEvent } from '../dlq';
import type { Decoder } from './ports';
import { StreamTask } from './task';
import { StreamWindows } from './windows';

/** Schema id the driver writes in front of the Avro bodies it encodes itself. */
const LOCAL_SCHEMA_ID = 1;

/**
 * Runs a stream definition on in-memory records with a controllable clock:
 * no Kafka, Redis, registry or ClickHouse. Users test their own streams with
 * it the way Kafka Streams users use TopologyTestDriver: pipe records in,
 * advance processing time, read the rows each table would get, the dead
 * letters and the late events.
 *
 * It drives the same StreamTask the runtime uses; dedup runs against the
 * in-memory twin of the Redis store, and events are Avro-encoded with the
 * stream's own schema and decoded back, so encoding problems show up too.
 */
export class StreamTestDriver<
  E,
  K extends GroupFields = GroupFields,
  A extends AggregationSpec<E> = AggregationSpec<E>,
> {
  private readonly task: StreamTask<E, K, A>;
  private readonly offsets = new Map<number, number>();
  private readonly rows = new Map<string, Row[]>();
  private readonly deadLetters: DeadLetter[] = [];
  private readonly lateEvents: LateEvent[] = [];
  private readonly type;
  private clock: number;

  constructor(
    private readonly definition: StreamDefinition<E, K, A>,
    options: { partitions?: number[]; startTimeMs?: number } = {},
  ) {
    this.clock = options.startTimeMs ?? 0;
    this.type = parseAvroType(loadAvroSchema(definition.source.schema));
    const decoder: Decoder = {
      decode: async (value: Buffer) => {
        if (value.length < 5 || value[0] !== 0 || value.readInt32BE(1) !== LOCAL_SCHEMA_ID) {
          throw new SluiceError(
            'WIRE_FORMAT_INVALID',
            'not a record written by the test driver (magic byte 0, schema id 1)',
          );
        }
        try {
          return this.type.fromBuffer(value.subarray(5)) as Record<string, unknown>;
        } catch (err) {
          throw new SluiceError('AVRO_INVALID', `cannot decode the Avro body: ${(err as Error).message}`);
        }
      },
    };
    const windows = definition.windowed ? new StreamWindows(definition.windowed, definition.source.topic) : undefined;
    this.task = new StreamTask(
      definition,
      { decoder, dedup: definition.dedup ? new MemoryDedupStore() : undefined, now: () => this.clock },
      windows,
    );
    for (const p of options.partitions ?? [0]) {
      this.task.assign(definition.source.topic, p, '0');
      this.offsets.set(p, 0);
    }
  }

  /** The processing-time clock, epoch ms. */
  get now(): number {
    return this.clock;
  }

  /** Encodes an event the way a producer would (Confluent wire format, the stream's schema). */
  encode(event: Record<string, unknown>): Buffer {
    const header = Buffer.alloc(5);
    header.writeInt32BE(LOCAL_SCHEMA_ID, 1);
    return Buffer.concat([header, this.type.toBuffer(event)]);
  }

  /**
   * Pipes records into a partition, in order: events are encoded first, Buffers (or null tombstones)
   * go in as they are. Records are stamped with `timestamp` (default: the driver's clock), as Kafka
   * stamps a record when its producer writes it; an event's time moves its partition's watermark no
   * further than its record's timestamp.
   */
  async pipe(
    partition: number,
    records: (Record<string, unknown> | Buffer | null)[],
    options: { key?: string | null; timestamp?: number } = {},
  ): Promise<void> {
    const key = options.key ?? null;
    const timestamp = String(options.timestamp ?? this.clock);
    const offset = this.offsets.get(partition);
    if (offset === undefined) throw new Error(`partition ${partition} is not one of the driver's partitions`);
    const metas: ConsumedRecord[] = records.map((r, i) => ({
      topic: this.definition.source.topic,
      partition,
      offset: String(offset + i),
      timestamp,
      key: key === null ? null : Buffer.from(key),
      value: r === null ? null : Buffer.isBuffer(r) ? r : this.encode(r),
      headers: {},
    }));
    this.offsets.set(partition, offset + records.length);
    await this.task.processBatch(this.definition.source.topic, partition, metas);
    this.collect();
  }

  /** Moves processing time on (idle partitions release the watermark) and closes what is due. */
  advanceTime(ms: number): void {
    this.clock += ms;
    this.task.closeWindows(this.clock);
    this.collect();
  }

  /** End of input, as a bounded run ends: every open window closes. */
  endOfInput(): void {
    this.task.closeAllWindows();
    this.collect();
  }

  /** Rows written to `table` so far, in order. */
  readRows(table: string): Row[] {
    return [...(this.rows.get(table) ?? [])];
  }

  readDeadLetters(): DeadLetter[] {
    return [...this.deadLetters];
  }

  readLate(): LateEvent[] {
    return [...this.lateEvents];
  }

  get counters() {
    return this.task.counters;
  }

  private collect(): void {
    const checkpoint = this.task.takeCheckpoint();
    for (const [table, { rows }] of checkpoint.rows) this.rows.set(table, [...(this.rows.get(table) ?? []), ...rows]);
    this.deadLetters.push(...checkpoint.deadLetters);
    this.lateEvents.push(...checkpoint.late);
  }
}
