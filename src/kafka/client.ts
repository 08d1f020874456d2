import { hostname } from 'node:os';
import { settingName, type SluiceConfig } from '../config';
import { ConfigError } from '../errors';
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

/** What to do about a group whose members the client cannot see (`GroupDescription.membersUnknown`), worded once. */
export const MEMBERS_UNKNOWN_HINT =
  'it uses the consumer group protocol (KIP-848), whose members kafka.client=kafkajs cannot see: run this with kafka.client=platformatic (SLUICE_KAFKA_CLIENT=platformatic)';

/** The Kafka client libraries Sluice runs on (`kafka.client`). */
export const KAFKA_CLIENTS = ['kafkajs', 'platformatic'] as const;
export type KafkaClientName = (typeof KAFKA_CLIENTS)[number];

/** The oldest Node.js @platformatic/kafka runs on (its `engines`). */
const PLATFORMATIC_MIN_NODE: readonly [number, number] = [22, 22];

/** True when this Node.js can run @platformatic/kafka. */
export function nodeRunsPlatformatic(version = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const [needMajor, needMinor] = PLATFORMATIC_MIN_NODE;
  return major > needMajor || (major === needMajor && minor >= needMinor);
}

/**
 * The client library a process uses: `kafka.client` when set, else the default (below). Choosing
 * platformatic on a Node.js too old for it fails here, naming the setting, before any connection.
 */
export function kafkaClientName(config: Pick<SluiceConfig, 'kafka'>): KafkaClientName {
  const chosen = config.kafka.client;
  if (chosen === 'platformatic' && !nodeRunsPlatformatic())
    throw new ConfigError(
      `${settingName('kafka.client')} is 'platformatic', which needs Node.js ${PLATFORMATIC_MIN_NODE.join('.')} or later; this is ${process.version}: install the project's Node.js 24 with scripts/ensure-node.sh (sluice then runs on it unless SLUICE_NODE=system) or set it to 'kafkajs'`,
    );
  return chosen ?? defaultKafkaClient();
}

/**
 * platformatic wherever it runs, kafkajs where it cannot (Node.js before 22.22). Measured on the 2M
 * benchmark (bench/README.md): its consumer reads 1.2× as fast as kafkajs's and takes a third less of
 * the processor's CPU, the stream's rate is the same, and it rebalances incrementally (a member joining
 * moves only the partitions it takes; with kafkajs every member gives up every partition). Transactions
 * stay on kafkajs under either (src/kafka/platformatic/index.ts says why).
 */
function defaultKafkaClient(): KafkaClientName {
  return nodeRunsPlatformatic() ? 'platformatic' : 'kafkajs';
}

/**
 * The one place that picks the Kafka client library: everything else asks for a `KafkaClient` here,
 * so a second implementation is chosen in this one function. The platformatic implementation is
 * loaded only when chosen: it is an ES module that older Node.js cannot load.
 */
export function createKafka(config: Pick<SluiceConfig, 'kafka'>, options: KafkaClientOptions = {}): KafkaClient {
  if (kafkaClientName(config) === 'platformatic') {
    const { platformaticClient } = require('./platformatic') as typeof import('./platformatic');
    return platformaticClient(config, options);
  }
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
