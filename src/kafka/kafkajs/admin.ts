import { ConfigResourceTypes, ConfigSource, type Admin } from 'kafkajs';
import type { KafkaAdmin } from '../api';

/** The project's admin operations on a kafkajs admin client; each maps onto one kafkajs call. */
export function kafkajsAdmin(admin: Admin): KafkaAdmin {
  return {
    connect: () => admin.connect(),
    disconnect: () => admin.disconnect(),
    async describeCluster() {
      const { clusterId, brokers, controller } = await admin.describeCluster();
      return { clusterId, controller, brokers: brokers.map(({ nodeId, host, port }) => ({ nodeId, host, port })) };
    },
    listTopics: () => admin.listTopics(),
    async createTopics(topics) {
      await admin.createTopics({ waitForLeaders: true, topics });
    },
    deleteTopics: (topics) => admin.deleteTopics({ topics }),
    async createPartitions(topics) {
      await admin.createPartitions({ topicPartitions: topics });
    },
    async fetchTopicMetadata(topics) {
      return (await admin.fetchTopicMetadata({ topics })).topics;
    },
    async describeConfigs(resources) {
      const described = await admin.describeConfigs({
        includeSynonyms: false,
        resources: resources.map(({ type, name, configNames }) => ({
          type: type === 'topic' ? ConfigResourceTypes.TOPIC : ConfigResourceTypes.BROKER,
          name,
          ...(configNames ? { configNames } : {}),
        })),
      });
      return new Map(
        described.resources.map((r) => [
          r.resourceName,
          r.configEntries.map((e) => ({
            name: e.configName,
            value: e.configValue,
            setOnTopic: e.configSource === ConfigSource.TOPIC_CONFIG,
          })),
        ]),
      );
    },
    async alterTopicConfigs(topics) {
      // kafkajs has no IncrementalAlterConfigs: AlterConfigs replaces the whole set.
      await admin.alterConfigs({
        validateOnly: false,
        resources: topics.map(({ topic, config }) => ({
          type: ConfigResourceTypes.TOPIC,
          name: topic,
          configEntries: Object.entries(config).map(([name, value]) => ({ name, value })),
        })),
      });
    },
    async fetchTopicOffsets(topic) {
      return (await admin.fetchTopicOffsets(topic)).map(({ partition, low, high }) => ({ partition, low, high }));
    },
    deleteRecords: (topic, partitions) => admin.deleteTopicRecords({ topic, partitions }),
    fetchTopicOffsetsByTimestamp: (topic, timestamp) => admin.fetchTopicOffsetsByTimestamp(topic, timestamp),
    async listGroups() {
      return (await admin.listGroups()).groups.map(({ groupId, protocolType }) => ({ groupId, protocolType }));
    },
    async describeGroups(groupIds) {
      const described = (await admin.describeGroups(groupIds)).groups;
      // The classic DescribeGroups answers Dead for a KIP-848 group, live or not; the group list still has it.
      const listed = described.some((g) => g.state === 'Dead')
        ? new Set((await admin.listGroups()).groups.map((g) => g.groupId))
        : new Set<string>();
      return described.map((g) =>
        g.state === 'Dead' && listed.has(g.groupId)
          ? { groupId: g.groupId, state: 'Unknown', protocolType: 'consumer', members: [], membersUnknown: true }
          : {
              groupId: g.groupId,
              state: g.state,
              protocolType: g.protocolType,
              members: g.members.map(({ memberId, clientId, clientHost }) => ({ memberId, clientId, clientHost })),
            },
      );
    },
    async deleteGroups(groupIds) {
      await admin.deleteGroups(groupIds);
    },
    async fetchOffsets(groupId, topics) {
      return (await admin.fetchOffsets(topics ? { groupId, topics } : { groupId })).map((t) => ({
        topic: t.topic,
        partitions: t.partitions.map((p) => ({
          partition: p.partition,
          offset: p.offset,
          metadata: p.metadata ?? null,
        })),
      }));
    },
    setOffsets: (groupId, topic, partitions) => admin.setOffsets({ groupId, topic, partitions }),
  };
}
