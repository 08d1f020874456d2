import { loadConfig } from '../config';
import { createLogger } from '../telemetry';
import eventCounts from '../../streams/event-counts';
import { startStream } from './start';

describe('startStream', () => {
  it.each(['orders.late', 'orders.dlq', 'orders.retry.2'])(
    'refuses a source named like a side topic (%s) before touching any service',
    async (topic) => {
      // No service runs behind these addresses: the refusal must come first.
      const config = loadConfig({ SLUICE_KAFKA_BROKERS: '127.0.0.1:1', SLUICE_CLICKHOUSE_URL: 'http://127.0.0.1:1' });
      await expect(startStream(eventCounts, config, { topic, bounded: true }, createLogger('silent'))).rejects.toThrow(
        `a stream cannot read topic '${topic}'`,
      );
    },
  );
});
