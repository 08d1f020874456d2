import { Kafka, logLevel as KafkaLogLevel, type KafkaConfig } from 'kafkajs';
import type { SluiceConfig } from '../config';

/**
 * The one place that builds the Kafka client library's objects. Everything
 * else asks for a `Kafka` here, so the library can be swapped in one module.
 */
export function createKafka(config: Pick<SluiceConfig, 'kafka'>, overrides: Partial<KafkaConfig> = {}): Kafka {
  // kafkajs warns about its v2 partitioner change on every producer; Sluice
  // chooses its partitioner explicitly, so the warning is noise.
  process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';
  return new Kafka({
    clientId: config.kafka.clientId,
    brokers: config.kafka.brokers,
    logLevel: KafkaLogLevel.NOTHING,
    connectionTimeout: 3000,
    ...overrides,
  });
}

export interface ClusterInfo {
  clusterId: string;
  brokers: number;
  controller: number | null;
}

/** Asks the cluster who it is; the cheapest proof that a real broker answers. */
export async function describeCluster(config: Pick<SluiceConfig, 'kafka'>, retries = 0): Promise<ClusterInfo> {
  const admin = createKafka(config, { retry: { retries } }).admin();
  try {
    await admin.connect();
    const info = await admin.describeCluster();
    return { clusterId: info.clusterId, brokers: info.brokers.length, controller: info.controller };
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
