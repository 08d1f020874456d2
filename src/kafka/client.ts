import { hostname } from 'node:os';
import type { SluiceConfig } from '../config';
import type { KafkaClient, KafkaClientOptions } from './api';
import { kafkajsClient } from './kafkajs';

/**
 * The client id a process shows to the brokers: the configured id (or the role's, e.g. `sluice-event-counts`)
 * with this host and pid, so that the members of a group (`sluice groups`) and the broker's logs tell
 * processes apart; every process used to be `sluice@/127.0.0.1`. An id that already names its process
 * (it contains '@') is kept as given.
 */
export function processClientId(base: string, host = hostname(), pid = process.pid): string {
  return base.includes('@') ? base : `${base}@${host}#${pid}`;
}

/**
 * The one place that picks the Kafka client library: everything else asks for a `KafkaClient` here,
 * so a second implementation is chosen in this one function.
 */
export function createKafka(config: Pick<SluiceConfig, 'kafka'>, options: KafkaClientOptions = {}): KafkaClient {
  return kafkajsClient(config, options);
}

export interface ClusterInfo {
  clusterId: string;
  brokers: number;
  controller: number | null;
}

/** Asks the cluster who it is; the cheapest proof that a real broker answers. */
export async function describeCluster(config: Pick<SluiceConfig, 'kafka'>, retries = 0): Promise<ClusterInfo> {
  const admin = createKafka(config, { retries }).admin();
  try {
    await admin.connect();
    const info = await admin.describeCluster();
    return { clusterId: info.clusterId, brokers: info.brokers.length, controller: info.controller };
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
