import { MAGIC_BYTE, WIRE_HEADER_BYTES, loadAvroSchema, parseAvroType } from '../schema';
import { ANALYTICS_EVENT_SCHEMA } from './event';
import type { EncodeEvent } from './workload';

/**
 * Encodes the reference event synchronously (the generator is synchronous so
 * that it stays fast and deterministic) in Confluent wire format with the
 * given schema id, parsing the schema exactly as the codec does.
 */
export function createEventEncoder(schemaId: number, schema: object = loadAvroSchema(ANALYTICS_EVENT_SCHEMA)): EncodeEvent {
  const type = parseAvroType(schema);
  return (event) => {
    const body = type.toBuffer(event);
    const out = Buffer.allocUnsafe(WIRE_HEADER_BYTES + body.length);
    out[0] = MAGIC_BYTE;
    out.writeInt32BE(schemaId, 1);
    body.copy(out, WIRE_HEADER_BYTES);
    return out;
  };
}
