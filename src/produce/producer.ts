import type { Type } from 'avsc';
import type { SluiceConfig } from '../config';
import { ServiceError, SluiceError } from '../errors';
import {
  createKafka,
  type Compression,
  type KafkaProducer,
  type Message,
  type SendRequest,
  type WrittenRecord,
} from '../kafka';
import { SchemaCodec, loadAvroSchema, parseAvroType } from '../schema';
import { SpanKind } from '@opentelemetry/api';
import { traceHeaders, withSpan } from '../telemetry/tracing';
import type { StreamDefinition } from '../process';
import { streamRules } from './stream-rules';
import { EventValidationError, logicalTypeChecks, validateEvent, type FieldIssue } from './validate';

export type ProducerCompression = Compression;

export interface EventProducerOptions<T> {
  config: SluiceConfig;
  topic: string;
  /** Registry subject; `<topic>-value` by default (docs/design.md §3.1). */
  subject?: string;
  /** The writer schema: its JSON, or the name of a file in `avro/` (e.g. `analytics_event`). */
  schema: object | string;
  /** The field whose value becomes the record key (and so picks the partition). */
  keyField?: keyof T & string;
  /**
   * `register` (default) registers the schema under the subject (a no-op when
   * it is already there) and uses its id; `latest` uses the subject's latest
   * id, for producers that must not change the registry.
   */
  schemaId?: 'register' | 'latest';
  /** A codec to share with other producers; one is built from `config` otherwise. */
  codec?: SchemaCodec;
  /** How long a record may wait for others to share its produce request. */
  lingerMs?: number;
  /** At most this many records in one produce request. */
  maxBatchEvents?: number;
  /** ...or this many bytes of encoded values (Kafka refuses record batches above the topic's max.message.bytes, 1 MiB by default). */
  maxBatchBytes?: number;
  /** Backpressure: `send` waits while this many records are sent but not yet acknowledged... */
  maxInFlightEvents?: number;
  /** ...or while their encoded values add up to this many bytes. */
  maxInFlightBytes?: number;
  compression?: ProducerCompression;
  /** Fields the schema does not know are an error (default), rather than silently dropped. */
  rejectUnknownFields?: boolean;
  /**
   * Makes each `send`/`sendBatch` call all-or-nothing for `read_committed` readers (Sluice's
   * processors): its events are written in one Kafka transaction (with those of other calls waiting
   * at the same time), under this transactional id, unique per producing process.
   */
  transactionalId?: string;
  /**
   * The streams that read the topic (e.g. `streamsReading(topic)`, or the
   * definition imported from streams/): an event one of them would
   * dead-letter is refused before it is sent, with the stream's own reasons,
   * as the HTTP ingest API refuses it; so a send that resolves is an event
   * the stream will count. Without it only the schema is checked.
   */
  streams?: readonly StreamDefinition<unknown>[];
}

/** Where Kafka stored one event. */
export interface SentEvent {
  key: string;
  partition: number;
  offset: string;
}

export interface ProducerStats {
  /** Records handed to `send` and not yet acknowledged (or failed). */
  inFlightEvents: number;
  inFlightBytes: number;
  /** The most records ever in flight at once: never above `maxInFlightEvents` (unless one event exceeds the byte bound alone). */
  peakInFlightEvents: number;
  sentEvents: number;
  produceRequests: number;
}

export interface EventProducer<T> {
  /** Resolves the schema id and connects; `send` does this on first use if not called. */
  connect(): Promise<void>;
  /** Validates, encodes and sends one event; resolves once Kafka (all in-sync replicas) acknowledged it. */
  send(event: T): Promise<SentEvent>;
  /** All-or-nothing validation, then sends each; resolves when every one is acknowledged, in input order. */
  sendBatch(events: readonly T[]): Promise<SentEvent[]>;
  /** Validation only: the fields of `event` that do not fit the schema, or the rules of `streams` it breaks (empty when valid). */
  validate(event: unknown): FieldIssue[];
  /** The registry id events are written with (after connect). */
  readonly schemaId: number | undefined;
  readonly topic: string;
  stats(): ProducerStats;
  /** Sends what is buffered, waits for the acknowledgements, disconnects. */
  close(): Promise<void>;
}

interface Pending {
  message: Message;
  key: string;
  bytes: number;
  /** The send call it came from: a transactional producer never splits one across transactions. */
  unit: number;
  resolve(sent: SentEvent): void;
  reject(err: unknown): void;
}

/** A produce request failed after kafkajs's own retries; the events in it may be resent safely (idempotent producer). */
export class ProduceError extends ServiceError {
  constructor(topic: string, cause: unknown) {
    super('kafka', `producing to ${topic} failed: ${(cause as Error).message}`, { retriable: true, cause });
    this.name = 'ProduceError';
  }
}

/** Throws TOPIC_MISSING (not retriable) unless `topic` exists: the producer never creates topics (`allowAutoTopicCreation: false`). */
async function requireTopic(config: SluiceConfig, topic: string): Promise<void> {
  const admin = createKafka(config).admin();
  let topics: string[];
  try {
    await admin.connect();
    topics = await admin.listTopics();
  } catch (err) {
    // Already one line naming the setting to fix (a refused login, a bad certificate): pass it on unchanged.
    if (err instanceof SluiceError) throw err;
    throw new ServiceError('kafka', `cannot list topics to check that ${topic} exists: ${(err as Error).message}`, {
      retriable: true,
      cause: err,
    });
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  if (!topics.includes(topic)) {
    throw new SluiceError(
      'TOPIC_MISSING',
      `topic ${topic} does not exist: create it (npx sluice topics apply) before producing to it; nothing was registered or sent`,
    );
  }
}

function schemaName(json: object): string {
  const { name, namespace } = json as { name?: string; namespace?: string };
  return name ? (namespace && !name.includes('.') ? `${namespace}.${name}` : name) : 'schema';
}

/**
 * A typed producer for one topic: Avro in Confluent wire format, the key from
 * one field, acks=all on an idempotent producer, batching by linger and
 * bounded memory.
 *
 * Batching: events accumulate while a produce request is in flight (or for
 * `lingerMs`) and go out together. There is only ever one request in flight,
 * which is what kafkajs's idempotent producer requires to keep per-partition
 * sequence numbers in order.
 */
export function createEventProducer<T extends object>(options: EventProducerOptions<T>): EventProducer<T> {
  const {
    config,
    topic,
    subject = `${options.topic}-value`,
    keyField = 'event_id' as keyof T & string,
    lingerMs = 5,
    maxBatchEvents = 2000,
    maxBatchBytes = 512 * 1024,
    maxInFlightEvents = 20_000,
    maxInFlightBytes = 32 * 1024 * 1024,
    compression = 'gzip',
    rejectUnknownFields = true,
    transactionalId,
  } = options;
  if (maxInFlightEvents < 1 || maxBatchEvents < 1 || maxInFlightBytes < 1) {
    throw new SluiceError(
      'PRODUCER_OPTIONS_INVALID',
      'maxInFlightEvents, maxBatchEvents and maxInFlightBytes must be at least 1',
    );
  }
  const schemaJson = typeof options.schema === 'string' ? loadAvroSchema(options.schema) : options.schema;
  const type: Type = parseAvroType(schemaJson);
  const name = schemaName(schemaJson);
  const checkLogicalTypes = logicalTypeChecks(schemaJson);
  // A stream that cannot read this schema fails here, at construction, not at the first send.
  const rules =
    options.streams && options.streams.length > 0
      ? streamRules(schemaJson, options.streams, `schema ${name}`)
      : undefined;
  const against = rules
    ? `Avro schema ${name} or the rules of stream(s) ${rules.streams.join(', ')}`
    : `Avro schema ${name}`;

  let producer: KafkaProducer | undefined;
  let codec: SchemaCodec | undefined = options.codec;
  let schemaId: number | undefined;
  let connecting: Promise<void> | undefined;
  let closed = false;

  let queue: Pending[] = [];
  let queuedBytes = 0;
  let inFlightEvents = 0;
  let inFlightBytes = 0;
  let peakInFlightEvents = 0;
  let sentEvents = 0;
  let produceRequests = 0;
  /** True while the drain loop runs; there is never more than one produce request in flight. */
  let draining = false;
  let units = 0;
  let drained: Promise<void> = Promise.resolve();
  let lingerTimer: NodeJS.Timeout | undefined;
  /** `send` calls waiting for room, in arrival order. */
  const waiting: Array<() => void> = [];

  const closedError = () => new SluiceError('PRODUCER_CLOSED', `the producer for ${topic} is closed: create a new one`);
  const hasRoom = (bytes: number) =>
    inFlightEvents === 0 || (inFlightEvents + 1 <= maxInFlightEvents && inFlightBytes + bytes <= maxInFlightBytes);

  function release(count: number, bytes: number): void {
    inFlightEvents -= count;
    inFlightBytes -= bytes;
    // Wake as many waiters as there are free slots, in order; each re-checks the byte bound when it runs.
    for (let free = maxInFlightEvents - inFlightEvents; free > 0 && waiting.length > 0; free--) waiting.shift()!();
  }

  async function connect(): Promise<void> {
    if (closed) throw closedError();
    connecting ??= (async () => {
      if (!codec) {
        codec = SchemaCodec.fromConfig(config);
      }
      // The topic first: a producer pointed at a missing topic must fail at once and for good (kafkajs would retry
      // metadata until its timeout, then call it retriable), and must not have registered a schema under its subject.
      await requireTopic(config, topic);
      schemaId =
        options.schemaId === 'latest' ? await codec.latestId(subject) : await codec.register(subject, schemaJson);
      // Keys are placed by Kafka's default partitioner (murmur2 of the key, as the Java client does).
      producer = createKafka(config).producer({
        idempotent: true,
        // A transaction left open by a process that died holds back read_committed readers of the topic
        // (the stream) until Kafka aborts it: keep that short.
        ...(transactionalId ? { transactionalId, transactionTimeoutMs: 10_000 } : {}),
      });
      await producer.connect();
    })().catch((err) => {
      connecting = undefined;
      throw err;
    });
    return connecting;
  }

  /** Sends everything queued, one request at a time, until the queue is empty. */
  function drain(): Promise<void> {
    if (lingerTimer) clearTimeout(lingerTimer);
    lingerTimer = undefined;
    if (draining) return drained;
    draining = true;
    drained = (async () => {
      try {
        while (queue.length > 0) {
          let take = 0;
          let bytes = 0;
          while (
            take < queue.length &&
            take < maxBatchEvents &&
            (take === 0 || bytes + queue[take]!.bytes <= maxBatchBytes)
          ) {
            bytes += queue[take]!.bytes;
            take++;
          }
          // In a transaction a call's events go together, whatever the batch bounds.
          while (transactionalId && take < queue.length && queue[take]!.unit === queue[take - 1]!.unit) {
            bytes += queue[take]!.bytes;
            take++;
          }
          const batch = queue.slice(0, take);
          queue = queue.slice(take);
          queuedBytes -= bytes;
          await produce(batch);
        }
      } finally {
        draining = false;
      }
    })();
    return drained;
  }

  async function produce(batch: Pending[]): Promise<void> {
    const bytes = batch.reduce((n, p) => n + p.bytes, 0);
    produceRequests++;
    try {
      const request: SendRequest = { topic, compression, messages: batch.map((p) => p.message) };
      let written: WrittenRecord[];
      if (transactionalId) {
        const transaction = await producer!.transaction();
        try {
          written = await transaction.send(request);
          await transaction.commit();
        } catch (err) {
          await transaction.abort().catch(() => undefined);
          throw err;
        }
      } else written = await producer!.send(request);
      sentEvents += batch.length;
      batch.forEach((p, i) => p.resolve({ key: p.key, partition: written[i]!.partition, offset: written[i]!.offset }));
    } catch (err) {
      const error = new ProduceError(topic, err);
      for (const p of batch) p.reject(error);
    } finally {
      release(batch.length, bytes);
    }
  }

  function check(event: unknown, at = ''): FieldIssue[] {
    const issues = [...validateEvent(type, event), ...checkLogicalTypes(event)].filter(
      (i) => rejectUnknownFields || !i.reason.startsWith('unknown field'),
    );
    const key = (event as Record<string, unknown> | null)?.[keyField];
    if (issues.length === 0 && (typeof key !== 'string' || key === '') && typeof key !== 'number') {
      issues.push({ path: keyField, reason: 'the key field must be a non-empty string' });
    }
    // The streams' rules only on an event that fits the schema (they read it as the stream would decode it);
    // their reasons belong to the event as a whole, as in the ingest API's answers.
    if (issues.length === 0 && rules) {
      return rules.check(event as Record<string, unknown>).map((reason) => ({ path: at || '(event)', reason }));
    }
    return at ? issues.map((i) => ({ ...i, path: `${at}.${i.path}` })) : issues;
  }

  /**
   * Encodes the event and waits until the in-flight bound has room for it;
   * resolves, once it is queued, to (a box around) the promise of its
   * acknowledgement: boxed, because an async function cannot resolve to a promise.
   */
  async function admit(event: T): Promise<{ acked: Promise<SentEvent> }> {
    return (await admitUnit([event]))[0]!;
  }

  /**
   * Encodes the events of one send call and waits until the in-flight bound has room for them
   * (all of them at once for a transactional producer, which must queue a call whole; one at a
   * time otherwise); resolves, once they are queued, to (boxes around) the promises of their
   * acknowledgements: boxed, because an async function cannot resolve to a promise.
   */
  async function admitUnit(events: readonly T[]): Promise<{ acked: Promise<SentEvent> }[]> {
    const unit = ++units;
    const encoded: { key: string; value: Buffer; bytes: number }[] = [];
    const out: { acked: Promise<SentEvent> }[] = [];
    const enqueue = ({ key, value, bytes }: { key: string; value: Buffer; bytes: number }) => {
      inFlightEvents++;
      inFlightBytes += bytes;
      peakInFlightEvents = Math.max(peakInFlightEvents, inFlightEvents);
      queuedBytes += bytes;
      const acked = new Promise<SentEvent>((resolve, reject) => {
        // The active span's W3C trace context travels in the record headers, so the processor's spans can link to it.
        queue.push({ message: { key, value, headers: traceHeaders() }, key, bytes, unit, resolve, reject });
      });
      acked.catch(() => undefined); // the caller awaits it; this only stops an unhandled-rejection warning meanwhile
      out.push({ acked });
    };
    for (const event of events) {
      const key = String((event as Record<string, unknown>)[keyField]);
      const value = await codec!.encode(schemaId!, event);
      const e = { key, value, bytes: value.length + Buffer.byteLength(key) };
      if (transactionalId) {
        encoded.push(e);
        continue;
      }
      // One event at a time waits for room, so a batch larger than the bound holds only the bound in encoded form.
      while (!hasRoom(e.bytes)) await new Promise<void>((resolve) => waiting.push(resolve));
      enqueue(e);
      kick();
    }
    if (transactionalId) {
      const bytes = encoded.reduce((n, e) => n + e.bytes, 0);
      const fits = () =>
        inFlightEvents === 0 ||
        (inFlightEvents + encoded.length <= maxInFlightEvents && inFlightBytes + bytes <= maxInFlightBytes);
      while (!fits()) await new Promise<void>((resolve) => waiting.push(resolve));
      for (const e of encoded) enqueue(e);
      kick();
    }
    return out;
  }

  /** Sends a full batch now, else after the linger; while a request is in flight the drain loop picks the queue up when it returns. */
  function kick(): void {
    if (queue.length >= maxBatchEvents || queuedBytes >= maxBatchBytes) {
      if (!draining) void drain();
    } else if (!draining) {
      lingerTimer ??= setTimeout(() => void drain(), lingerMs);
    }
  }

  /** A PRODUCER span around a send, active while its records are queued (their headers carry it). */
  function traced<R>(spanName: string, count: number, work: () => Promise<R>): Promise<R> {
    return withSpan(
      spanName,
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          'messaging.system': 'kafka',
          'messaging.destination.name': topic,
          'messaging.batch.message_count': count,
        },
      },
      work,
    );
  }

  return {
    get schemaId() {
      return schemaId;
    },
    topic,
    connect,
    validate: (event) => check(event),
    async send(event) {
      const issues = check(event);
      if (issues.length > 0) throw new EventValidationError(name, issues, against);
      if (closed) throw closedError();
      await connect();
      return traced(`send ${topic}`, 1, async () => (await admit(event)).acked);
    },
    async sendBatch(events) {
      const issues = events.flatMap((e, i) => check(e, `[${i}]`));
      if (issues.length > 0) throw new EventValidationError(name, issues, against);
      if (closed) throw closedError();
      await connect();
      return traced(`send ${topic}`, events.length, async () =>
        Promise.all((await admitUnit(events)).map((a) => a.acked)),
      );
    },
    stats: () => ({ inFlightEvents, inFlightBytes, peakInFlightEvents, sentEvents, produceRequests }),
    async close() {
      if (closed) return;
      closed = true;
      if (connecting) await connecting.catch(() => undefined);
      while (queue.length > 0 || draining) await drain();
      await producer?.disconnect().catch(() => undefined);
    },
  };
}
