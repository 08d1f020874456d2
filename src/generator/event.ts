/**
 * The reference event as the generator writes it and the validator returns
 * it: the fields of `avro/analytics_event.avsc` (v1) with their decoded
 * JavaScript types.
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

/** The Avro schema file (in `avro/`, without `.avsc`) the reference workload is written with. */
export const ANALYTICS_EVENT_SCHEMA = 'analytics_event';
