/**
 * The reference event (avro/analytics_event.avsc, v1; `channel` is v2's
 * addition). Optional fields may be left out: the schema defaults fill them.
 */
export interface AnalyticsEvent {
  event_id: string;
  event_type: string;
  user_id: string;
  campaign_id?: string | null;
  ad_id?: string | null;
  /** Epoch milliseconds UTC. */
  event_time: number;
  amount?: number | null;
  properties?: Record<string, string>;
  channel?: string;
}
