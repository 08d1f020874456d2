import type { Type } from 'avsc';
import { ConfigError, describeError } from '../errors';
import { listStreams, loadStream, type StreamDefinition } from '../process';
import { loadAvroSchema, parseAvroType, readIncompatibility } from '../schema';

/**
 * The rules of the streams that read a topic, applied before an event is
 * produced to it, by the HTTP ingest API (before it answers 202) and by the
 * producer SDK (its `streams` option): an event one of them would
 * dead-letter is refused with the stream's own reasons. The streams'
 * `validate` runs on the value they would decode (the event written with the
 * producer's schema, read with the stream's reader schema, defaults filled
 * in), so a producer and the stream cannot disagree; and an event time too
 * far ahead of its record timestamp, which a windowed stream dead-letters, is
 * judged against the time of the check (earlier than any timestamp Kafka
 * gives the record, so never more lenient).
 */
export interface StreamRules {
  /** The streams whose rules apply. */
  readonly streams: readonly string[];
  /** Why a stream would dead-letter `event` (which fits the ingest schema): each reason once; empty when none would. */
  check(event: Record<string, unknown>, now?: number): string[];
}

/**
 * The stream definitions in streams/ whose source is `topic`. Every stream is
 * loaded to read its source, so one that cannot be loaded stops the API: it
 * might be the one whose rules apply.
 */
export function streamsReading(topic: string): StreamDefinition<unknown>[] {
  return listStreams()
    .map((name) => {
      try {
        return loadStream(name);
      } catch (err) {
        throw new ConfigError(
          `stream ${name} cannot be loaded to see whether it reads ${topic}: ${describeError(err)}`,
        );
      }
    })
    .filter((stream) => stream.source.topic === topic);
}

interface Reader {
  stream: StreamDefinition<unknown>;
  /** The event as the stream would decode it. */
  read(event: Record<string, unknown>): Record<string, unknown>;
}

function readerOf(stream: StreamDefinition<unknown>, writer: Type, writerName: string): Reader {
  const reader = parseAvroType(loadAvroSchema(stream.source.schema));
  const incompatible = readIncompatibility(reader, writer);
  if (incompatible !== undefined) {
    throw new ConfigError(
      `stream ${stream.name} reads with schema ${stream.source.schema}, which cannot read events written with ${writerName}: ${incompatible}`,
    );
  }
  const resolver = reader.createResolver(writer);
  return { stream, read: (event) => reader.fromBuffer(writer.toBuffer(event), resolver) as Record<string, unknown> };
}

/** An instant as ISO text, or the number itself when no Date can hold it. */
function instant(ms: number): string {
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : String(ms);
}

/**
 * `writerSchema` is the producer's schema: the name of a file in avro/ or its
 * JSON; `writerName` names it in the error when a stream cannot read it (the
 * ingest API names its setting, `ingest.schema <file>`).
 */
export function streamRules(
  writerSchema: string | object,
  streams: readonly StreamDefinition<unknown>[],
  writerName = typeof writerSchema === 'string'
    ? `schema ${writerSchema}`
    : `schema ${(writerSchema as { name?: string }).name ?? '(inline)'}`,
): StreamRules {
  const writer = parseAvroType(typeof writerSchema === 'string' ? loadAvroSchema(writerSchema) : writerSchema);
  const readers = streams.map((stream) => readerOf(stream, writer, writerName));
  return {
    streams: streams.map((s) => s.name),
    check(event, now = Date.now()) {
      // A Set: streams sharing a validator (events-raw is event-counts without windows) give the same reasons.
      const reasons = new Set<string>();
      for (const { stream, read } of readers) {
        const validation = stream.validate(read(event));
        if (!validation.ok) {
          for (const reason of validation.errors) reasons.add(reason);
          continue;
        }
        const limit = stream.windowed?.maxEventTimeAheadMs;
        if (limit === undefined) continue;
        const eventTime = stream.eventTime(validation.event);
        if (eventTime - now > limit) {
          reasons.add(
            `event time ${instant(eventTime)} is more than ${limit} ms ahead of the time it was received, ${instant(now)}`,
          );
        }
      }
      return [...reasons];
    },
  };
}
