/**
 * The reference event as v1 producers write it and the validator returns
 * it: the fields of `avro/analytics_event.avsc` (v1) with their decoded
 * JavaScript types. A producer may leave the optional fields out (the schema
 * defaults fill them); once decoded, every field is present.
 */
export interface AnalyticsEvent {
  /** Lowercase canonical UUID; the dedup key and the Kafka record key. */
  event_id: string;
  event_type: string;
  user_id: string;
  campaign_id: string | null;
  ad_id: string | null;
  /** Event time, epoch milliseconds UTC (Avro `timestamp-millis`). */
  event_time: number;
  /** Money involved; the reference workload sets it on purchases only, in whole cents. */
  amount: number | null;
  properties: Record<string, string>;
}

/**
 * The event as the generator writes it and the stream reads it, with
 * `avro/analytics_event.v2.avsc`: v1's fields plus `channel`, which the
 * reader fills with 'unknown' for events v1 writers wrote.
 */
export interface AnalyticsEventV2 extends AnalyticsEvent {
  channel: string;
}

/** The Avro schema file (in `avro/`, without `.avsc`) of `AnalyticsEvent`: what v1 producers write. */
export const ANALYTICS_EVENT_SCHEMA = 'analytics_event';

/** The Avro schema file of `AnalyticsEventV2`: the stream's reader schema, and what the reference workload writes. */
export const ANALYTICS_EVENT_V2_SCHEMA = 'analytics_event.v2';
