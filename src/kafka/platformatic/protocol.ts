import { Admin, type BaseOptions } from '@platformatic/kafka';
import { settingName } from '../../config';
import { ConfigError } from '../../errors';
import type { GroupConsumer, GroupConsumerOptions, GroupHandlers } from '../group';

export type GroupProtocol = 'classic' | 'consumer';

/** ConsumerGroupHeartbeat: a broker offers KIP-848's protocol exactly when it advertises this API (Kafka 4.0+). */
const CONSUMER_GROUP_HEARTBEAT = 68;

/**
 * The group protocol a member joins with. Unset, it is `consumer` (KIP-848: the broker assigns
 * partitions incrementally, no group-wide pause) where the brokers offer it, else `classic`
 * (cooperative-sticky, still incremental): a cluster older than Kafka 4.0 keeps working without a
 * setting. Set to `consumer` on such a cluster, it fails at start, naming the setting, rather than
 * silently running another protocol than the one asked for.
 */
export function chooseGroupProtocol(
  configured: GroupProtocol | undefined,
  brokersOfferConsumer: boolean,
): GroupProtocol {
  if (brokersOfferConsumer) return configured ?? 'consumer';
  if (configured === 'consumer')
    throw new ConfigError(
      `${settingName('kafka.groupProtocol')} is 'consumer' (KIP-848), which these brokers do not offer (it needs Kafka 4.0 or later with the consumer group protocol enabled): set it to 'classic' or upgrade the cluster`,
    );
  return 'classic';
}

/** Whether the brokers offer the consumer group protocol, from their ApiVersions answer. */
export async function brokersOfferConsumerProtocol(base: BaseOptions): Promise<boolean> {
  const admin = new Admin(base);
  try {
    return (await admin.listApis()).some((api) => api.apiKey === CONSUMER_GROUP_HEARTBEAT);
  } finally {
    await admin.close().catch(() => undefined);
  }
}

/**
 * A group member whose protocol is settled when it starts (asking the brokers needs a connection,
 * which building a client does not make): until then there is nothing to pause, seek or commit.
 */
export class ProtocolResolvingConsumer implements GroupConsumer {
  private member?: GroupConsumer;

  constructor(
    private readonly options: GroupConsumerOptions,
    private readonly protocol: () => Promise<GroupProtocol>,
    private readonly build: (options: GroupConsumerOptions, protocol: GroupProtocol) => GroupConsumer,
  ) {}

  async start(handlers: GroupHandlers): Promise<void> {
    this.member ??= this.build(this.options, await this.protocol());
    await this.member.start(handlers);
  }
  pause(partitions: number[]): void {
    this.started().pause(partitions);
  }
  resume(partitions: number[]): void {
    this.started().resume(partitions);
  }
  seek(partition: number, offset: string): void {
    this.started().seek(partition, offset);
  }
  commit(offsets: { partition: number; offset: string; metadata?: string }[]): Promise<void> {
    return this.started().commit(offsets);
  }
  async disconnect(): Promise<void> {
    await this.member?.disconnect();
  }

  private started(): GroupConsumer {
    if (!this.member) throw new Error('invariant: the group member is used before start()');
    return this.member;
  }
}
