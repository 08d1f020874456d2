import { nodeRunsPlatformatic } from '../client';

// The library is an ES module Node.js before 22.22 cannot load: there only the kafkajs client runs.
const onPlatformatic = nodeRunsPlatformatic() ? describe : describe.skip;
const load = () => require('./admin') as typeof import('./admin');

onPlatformatic('the platformatic admin', () => {
  it("reads a topic's configs, an override being one set on the topic itself", () => {
    const { describedConfigs } = load();
    const config = (name: string, value: string | null, configSource: number) => ({
      name,
      value,
      configSource,
      readOnly: false,
      isSensitive: value === null,
      synonyms: [],
      configType: 0,
      documentation: null,
    });
    const described = describedConfigs([
      {
        resourceType: 2,
        resourceName: 'orders',
        configs: [
          config('retention.ms', '86400000', 1),
          config('cleanup.policy', 'delete', 5),
          config('max.message.bytes', '1048588', 4),
          config('sasl.jaas.config', null, 5),
        ] as never,
      },
    ]);
    expect(described.get('orders')).toEqual([
      { name: 'retention.ms', value: '86400000', setOnTopic: true },
      { name: 'cleanup.policy', value: 'delete', setOnTopic: false },
      { name: 'max.message.bytes', value: '1048588', setOnTopic: false },
      { name: 'sasl.jaas.config', value: '', setOnTopic: false },
    ]);
  });

  it("reads a group's committed offsets as decimal strings, with '-1' where none was committed and empty metadata as none", () => {
    const { groupOffsets } = load();
    const partition = (partitionIndex: number, committedOffset: bigint, metadata: string | null) => ({
      partitionIndex,
      committedOffset,
      committedLeaderEpoch: -1,
      metadata,
    });
    const groups = [
      { groupId: 'other', topics: [{ name: 'orders', partitions: [partition(0, 5n, null)] }] },
      {
        groupId: 'g',
        topics: [
          {
            name: 'orders',
            partitions: [
              partition(0, 12345678901234567890n, 'sluice-state:3:abc:def'),
              partition(1, -1n, ''),
              partition(2, 0n, null),
            ],
          },
        ],
      },
    ];
    expect(groupOffsets(groups, 'g')).toEqual([
      {
        topic: 'orders',
        partitions: [
          { partition: 0, offset: '12345678901234567890', metadata: 'sluice-state:3:abc:def' },
          { partition: 1, offset: '-1', metadata: null },
          { partition: 2, offset: '0', metadata: null },
        ],
      },
    ]);
    expect(groupOffsets(groups, 'missing')).toEqual([]);
  });

  it('describes a KIP-848 group with its members, as a classic one is described', () => {
    const { consumerGroupDescription } = load();
    const member = { memberId: 'm-1', clientId: 'sluice@web-3#42', clientHost: '/10.0.0.3' };
    expect(
      consumerGroupDescription({
        errorCode: 0,
        errorMessage: null,
        groupId: 'g',
        groupState: 'Reconciling',
        groupEpoch: 4,
        assignmentEpoch: 4,
        assignorName: 'uniform',
        members: [{ ...member, memberEpoch: 4 } as never],
        authorizedOperations: 0,
      }),
    ).toEqual({ groupId: 'g', state: 'Reconciling', protocolType: 'consumer', members: [member] });
  });
});
