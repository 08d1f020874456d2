import { defineStream } from '../../src/process';
import eventCounts from '../event-counts';
import { EVENTS_RAW_MIGRATIONS } from '../event-counts/tables';

/**
 * The raw half of the reference pipeline: events -> decode, validate, dedup ->
 * events_raw, with no windows. The benchmark measures it beside the raw
 * consume rate of kcat and of the Kafka client.
 */
export default defineStream({
  ...eventCounts,
  name: 'events-raw',
  windowed: undefined,
  tables: [],
  migrations: EVENTS_RAW_MIGRATIONS,
});
