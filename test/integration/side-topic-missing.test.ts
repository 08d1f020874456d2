import { ServiceError } from '../../src/errors';
import { createKafka } from '../../src/kafka';
import { createTestContext, type TestContext } from '../helpers/context';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext('side-missing');
});
afterAll(async () => {
  await ctx.cleanup();
});

/**
 * A side topic deleted while a stream runs (start-up checks that it exists): the commit that carries its
 * dead letter fails, and the partition's work since its last commit is redone until the topic is back.
 * The failure names the topic instead of the broker's "This server does not host this topic-partition".
 */
describe('a partition transaction writing to a side topic that does not exist', () => {
  it('fails retriably, naming the topic, and commits nothing', async () => {
    const source = await ctx.createTopic('events', 1);
    const transactions = createKafka(ctx.config).transactions({ groupId: ctx.group, topic: source });
    try {
      await transactions.fence(0);
      const err = await transactions
        .commit(0, [{ topic: `${source}.dlq`, key: null, value: Buffer.from('x'), headers: {} }], { offset: '1' })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ServiceError);
      expect((err as ServiceError).retriable).toBe(true);
      expect((err as Error).message).toContain(`(${source}.dlq) does not exist`);
      const [committed] = await ctx.admin.fetchOffsets(ctx.group, [source]);
      expect(committed?.partitions.find((p) => p.partition === 0)?.offset ?? '-1').toBe('-1');
    } finally {
      await transactions.close();
    }
  }, 60_000);
});
