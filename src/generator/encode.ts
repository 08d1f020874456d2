import { MAGIC_BYTE, WIRE_HEADER_BYTES, loadAvroSchema, parseAvroType } from '../schema';
import { ANALYTICS_EVENT_V2_SCHEMA, type AnalyticsEvent } from '../../streams/event-counts/event';

/**
 * Encodes the reference event synchronously (the generator is synchronous so
 * that it stays fast and deterministic) in Confluent wire format with the
 * given schema id, parsing the schema exactly as the codec does.
 *
 * The schema is v2 by default, what the generator writes; the id must be
 * that schema's. An event without `channel` is written with v2's default
 * ('unknown'); a v1 schema (a spec's v1 producer) writes no channel at all.
 */
export function createEventEncoder(
  schemaId: number,
  schema: object = loadAvroSchema(ANALYTICS_EVENT_V2_SCHEMA),
): (event: AnalyticsEvent) => Buffer {
  const type = parseAvroType(schema);
  // The body is written into a reused scratch buffer after the header, then
  // copied out once: one allocation per record (this runs millions of times).
  let scratch = Buffer.alloc(16 * 1024);
  scratch[0] = MAGIC_BYTE;
  scratch.writeInt32BE(schemaId, 1);
  return (event) => {
    for (;;) {
      const end = type.encode(event, scratch, WIRE_HEADER_BYTES);
      if (end > 0) return Buffer.from(scratch.subarray(0, end));
      // Too small (avsc returns minus the missing bytes): grow and retry.
      const grown = Buffer.alloc(scratch.length * 2 - end);
      scratch.copy(grown, 0, 0, WIRE_HEADER_BYTES);
      scratch = grown;
    }
  };
}
