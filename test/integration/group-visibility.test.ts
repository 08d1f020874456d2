import type { SluiceConfig } from '../../src/config';
import { createKafka, nodeRunsPlatformatic } from '../../src/kafka';
import { refuseLiveMembers } from '../../src/replay/groups';
import { createTestContext, type TestContext } from '../helpers/context';
import { waitFor } from '../helpers/processes';

const platformaticLoads = nodeRunsPlatformatic();
if (!platformaticLoads)
  console.warn(
    `group-visibility.test.ts skipped: @platformatic/kafka needs Node.js 22.22 or later, this is ${process.version}`,
  );

/**
 * A KIP-848 group (group.protocol=consumer) answers the classic DescribeGroups as Dead, live or not: through
 * kafkajs its members are invisible. The liveness checks before a replay or a delete must then refuse, not
 * take the group for empty; through platformatic they see the members.
 */
(platformaticLoads ? describe : describe.skip)('a KIP-848 group seen through each client', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext('groupvis');
  });
  afterAll(async () => ctx.cleanup());

  it('is refused as possibly live through kafkajs, and described with its member through platformatic', async () => {
    const topic = await ctx.createTopic('events', 2);
    const withClient = (client: 'kafkajs' | 'platformatic'): SluiceConfig => ({
      ...ctx.config,
      kafka: { ...ctx.config.kafka, client, groupProtocol: 'consumer' },
    });
    const groupId = `${ctx.group}.kip848`;
    const consumer = createKafka(withClient('platformatic')).consumer({ groupId, topic, sessionTimeoutMs: 10_000 });
    let assigned: number[] = [];
    await consumer.start({
      onAssignment: (a) => (assigned = a.partitions),
      onBatch: async () => undefined,
      onCrash: () => undefined,
    });
    const kafkajsAdmin = createKafka(withClient('kafkajs')).admin();
    const platformaticAdmin = createKafka(withClient('platformatic')).admin();
    await kafkajsAdmin.connect();
    await platformaticAdmin.connect();
    try {
      await waitFor('the member owning both partitions', async () => assigned.length === 2, 30_000);

      const [throughPlatformatic] = await platformaticAdmin.describeGroups([groupId]);
      expect(throughPlatformatic).toMatchObject({ state: 'Stable', members: [expect.anything()] });
      await expect(refuseLiveMembers(platformaticAdmin, groupId)).rejects.toMatchObject({ code: 'GROUP_ACTIVE' });

      const [throughKafkajs] = await kafkajsAdmin.describeGroups([groupId]);
      expect(throughKafkajs).toMatchObject({ state: 'Unknown', members: [], membersUnknown: true });
      await expect(refuseLiveMembers(kafkajsAdmin, groupId)).rejects.toThrow(
        /may have live members: .*kafka\.client=platformatic/,
      );
      // A group that does not exist is still just Dead to kafkajs, and nothing is refused for it.
      const [missing] = await kafkajsAdmin.describeGroups([`${ctx.group}.nobody`]);
      expect(missing).toMatchObject({ state: 'Dead', members: [] });
      expect(missing!.membersUnknown).toBeUndefined();
      await expect(refuseLiveMembers(kafkajsAdmin, `${ctx.group}.nobody`)).resolves.toBeUndefined();
    } finally {
      await consumer.disconnect();
      await kafkajsAdmin.disconnect();
      await platformaticAdmin.disconnect();
    }
  }, 90_000);

  it('stops a member the classic protocol refuses beside the other client, naming the settings', async () => {
    const topic = await ctx.createTopic('mixed', 2);
    const classic = (client: 'kafkajs' | 'platformatic') =>
      createKafka({ ...ctx.config, kafka: { ...ctx.config.kafka, client, groupProtocol: 'classic' } });
    const member = (client: 'kafkajs' | 'platformatic', groupId: string) => {
      const consumer = classic(client).consumer({ groupId, topic, sessionTimeoutMs: 10_000 });
      let assigned: number[] = [];
      let crashed: unknown;
      const started = consumer.start({
        onAssignment: (a) => (assigned = a.partitions),
        onBatch: async () => undefined,
        onCrash: (err) => (crashed = err),
      });
      return { consumer, started, assigned: () => assigned, crashed: () => crashed };
    };
    const refusal = /refused this member .*kafka\.client \(SLUICE_KAFKA_CLIENT\) and kafka\.groupProtocol/;
    for (const [first, second] of [
      ['platformatic', 'kafkajs'],
      ['kafkajs', 'platformatic'],
    ] as const) {
      const groupId = `${ctx.group}.mixed.${first}`;
      const a = member(first, groupId);
      await a.started;
      await waitFor(`the ${first} member owning both partitions`, async () => a.assigned().length === 2, 30_000);
      const b = member(second, groupId);
      try {
        // Refused at start (platformatic joins before start resolves) or soon after (kafkajs joins in the background).
        const atStart = await b.started.then(
          () => undefined,
          (err: unknown) => err,
        );
        if (atStart === undefined) await waitFor(`the ${second} member stopped`, async () => !!b.crashed(), 30_000);
        const err = (atStart ?? b.crashed()) as { code?: string; message?: string };
        expect(err.code).toBe('GROUP_PROTOCOL_MISMATCH');
        expect(err.message).toMatch(refusal);
        expect(a.assigned()).toHaveLength(2); // the group goes on with the members it has
      } finally {
        await b.consumer.disconnect().catch(() => undefined);
        await a.consumer.disconnect();
      }
    }
  }, 120_000);
});
