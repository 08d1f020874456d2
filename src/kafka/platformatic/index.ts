import type { SluiceConfig } from '../../config';
import type { KafkaClient, KafkaClientOptions } from '../api';

/** Sluice's Kafka client on @platformatic/kafka (incremental rebalancing: KIP-848 or cooperative-sticky). */
export function platformaticClient(config: Pick<SluiceConfig, 'kafka'>, options: KafkaClientOptions = {}): KafkaClient {
  void config;
  void options;
  throw new Error('invariant: the platformatic client is not built yet');
}
