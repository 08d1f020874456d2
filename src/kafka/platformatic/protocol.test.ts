import { ConfigError } from '../../errors';
import type { GroupConsumer } from '../group';
import { nodeRunsPlatformatic } from '../client';

// The library is an ES module Node.js before 22.22 cannot load: there only the kafkajs client runs.
const onPlatformatic = nodeRunsPlatformatic() ? describe : describe.skip;
const load = () => require('./protocol') as typeof import('./protocol');

onPlatformatic('the group protocol', () => {
  it("is KIP-848's unless set, classic on brokers without it, and a set 'consumer' they lack fails naming the setting", () => {
    const { chooseGroupProtocol } = load();
    expect(chooseGroupProtocol(undefined, true)).toBe('consumer');
    expect(chooseGroupProtocol('classic', true)).toBe('classic');
    expect(chooseGroupProtocol('consumer', true)).toBe('consumer');
    expect(chooseGroupProtocol(undefined, false)).toBe('classic');
    expect(chooseGroupProtocol('classic', false)).toBe('classic');
    expect(() => chooseGroupProtocol('consumer', false)).toThrow(ConfigError);
    expect(() => chooseGroupProtocol('consumer', false)).toThrow(
      /kafka\.groupProtocol \(SLUICE_KAFKA_GROUP_PROTOCOL\)/,
    );
  });

  it('builds the member with the protocol settled at start, and refuses to be used before', async () => {
    const { ProtocolResolvingConsumer } = load();
    const calls: string[] = [];
    const member: GroupConsumer = {
      start: async () => void calls.push('start'),
      pause: (p) => void calls.push(`pause ${p.join(',')}`),
      resume: (p) => void calls.push(`resume ${p.join(',')}`),
      seek: (p, o) => void calls.push(`seek ${p} ${o}`),
      commit: async () => void calls.push('commit'),
      disconnect: async () => void calls.push('disconnect'),
    };
    const options = { groupId: 'g', topic: 't', sessionTimeoutMs: 10_000 };
    const consumer = new ProtocolResolvingConsumer(
      options,
      async () => 'consumer',
      (o, protocol) => {
        calls.push(`build ${o.groupId} ${protocol}`);
        return member;
      },
    );
    expect(() => consumer.seek(0, '1')).toThrow(/invariant/);
    await consumer.start({ onAssignment: () => undefined, onBatch: async () => undefined, onCrash: () => undefined });
    consumer.pause([1]);
    consumer.resume([1]);
    consumer.seek(2, '7');
    await consumer.commit([{ partition: 2, offset: '7' }]);
    await consumer.disconnect();
    expect(calls).toEqual(['build g consumer', 'start', 'pause 1', 'resume 1', 'seek 2 7', 'commit', 'disconnect']);
    // Never started: nothing to disconnect.
    await expect(
      new ProtocolResolvingConsumer(
        options,
        async () => 'classic',
        () => member,
      ).disconnect(),
    ).resolves.toBeUndefined();
  });
});
