import type { SluiceConfig } from '../../config';
import type { KafkaClient, KafkaClientOptions } from '../api';
import { kafkajsAdmin } from './admin';
import { createKafkajs } from './client';
import { sendFailure } from './errors';
import { KafkajsGroupConsumer } from './group';
import { kafkajsProducer } from './producer';
import { kafkajsPartitionTransactions } from './transactions';

/** Sluice's Kafka client on kafkajs. */
export function kafkajsClient(config: Pick<SluiceConfig, 'kafka'>, options: KafkaClientOptions = {}): KafkaClient {
  const kafka = createKafkajs(config, {
    ...(options.clientId !== undefined ? { clientId: options.clientId } : {}),
    ...(options.retries !== undefined ? { retry: { retries: options.retries } } : {}),
  });
  return {
    admin: () => kafkajsAdmin(kafka.admin()),
    producer: (producerOptions) => kafkajsProducer(kafka, producerOptions),
    consumer: (consumerOptions) => new KafkajsGroupConsumer(kafka, consumerOptions),
    transactions: (transactionOptions) => kafkajsPartitionTransactions(kafka, transactionOptions),
    sendFailure,
  };
}
