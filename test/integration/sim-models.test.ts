import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { RedisDedupStore } from '../../src/dedup';
import { SeededRandom } from '../../src/generator';
import { createKafka, streamKafka } from '../../src/kafka';
import { CommitFencedError, type Assignment, type BatchControl, type StreamKafka } from '../../src/kafka/group';
import { RedisSnapshotStore, StateLostError, WindowParts, type PartitionSnapshot } from '../../src/state';
import { SimKafka } from '../sim/models/kafka';
import { SimRedis } from '../sim/models/redis';
import { Owner, Scheduler } from '../sim/scheduler';
import { createTestContext, type TestContext } from '../helpers/context';
import { freePorts } from '../helpers/private-stack';
import { answersPing, spawnRedisServer } from '../helpers/redis';
import { waitFor } from '../helpers/processes';
import { sleep } from '../../src/clock';

/**
 * The simulation's models of Redis and Kafka (test/sim/models) against the
 * real services, on the behaviour the runtime's correctness rests on: the
 * same scenario on both must give the same answers, which are also the ones
 * worked out by hand in the comments.
 */

/** Runs simulated time until `promise` settles. */
async function settle<T>(scheduler: Scheduler, promise: Promise<T>): Promise<T> {
  let done = false;
  void promise.then(
    () => (done = true),
    () => (done = true),
  );
  await scheduler.runWhile(() => !done, scheduler.now() + 600_000);
  return promise;
}

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext('simmodels');
});
afterAll(async () => ctx.cleanup());

describe('the Redis model', () => {
  const claims = [
    // one call: a fresh id twice (the first claims it), a second id
    [
      { id: 'a', topic: 't', partition: 0, offset: '1' },
      { id: 'a', topic: 't', partition: 0, offset: '2' },
      { id: 'b', topic: 't', partition: 0, offset: '3' },
    ],
    // the record that holds the mark passes again, wherever it stands in the call; another one does not
    [
      { id: 'a', topic: 't', partition: 0, offset: '2' },
      { id: 'a', topic: 't', partition: 0, offset: '1' },
      { id: 'b', topic: 't', partition: 1, offset: '3' },
      { id: 'c', topic: 't', partition: 1, offset: '9' },
    ],
  ];
  const expected = [
    [true, false, true],
    [false, true, false, true],
  ];

  it('answers dedup claims as the Redis script does', async () => {
    const real = new RedisDedupStore(ctx.redis, { keyPrefix: ctx.config.redis.keyPrefix, namespace: 'agree' });
    const scheduler = new Scheduler(0);
    const model = new SimRedis(scheduler, new SeededRandom(1));
    const simulated = new RedisDedupStore(model.client(new Owner('p')), { keyPrefix: 'x:', namespace: 'agree' });
    const got: { real: boolean[][]; model: boolean[][] } = { real: [], model: [] };
    for (const call of claims) {
      got.real.push(await real.claim(call));
      got.model.push(await settle(scheduler, simulated.claim(call)));
    }
    expect(got.real).toEqual(expected);
    expect(got.model).toEqual(expected);
  });

  const snapshot = (id: string, offset: string): PartitionSnapshot => ({
    id,
    offset,
    savedAt: 0,
    watermark: { maxEventTimeMs: Number(offset) },
    windows: [],
  });
  const ref = { topic: 'events', partition: 0 };

  /** Saves snapshots at offsets 10, 20 and 20 again, prunes below 20 (as a commit naming 20 then 20 would), loads by the names a commit's metadata gives. */
  async function snapshots(store: RedisSnapshotStore, run: <T>(p: Promise<T>) => Promise<T>): Promise<unknown[]> {
    await run(store.load(ref, []));
    await run(store.save([{ ref, snapshot: snapshot('10.a', '10') }]));
    await run(store.save([{ ref, snapshot: snapshot('20.b', '20') }]));
    const first = await run(store.load(ref, ['30.x', '10.a'])); // 30.x was never saved: the fallback 10.a
    await run(store.save([{ ref, snapshot: snapshot('20.c', '20') }])); // beside 20.b, at the same offset
    await run(store.prune(ref, '20'));
    const named = await run(store.load(ref, ['20.b', '20.c'])); // the first named that exists: 20.b, not 20.c
    const gone = await run(store.load(ref, ['10.a'])); // pruned
    return [first?.id, named?.id, gone];
  }

  it('keeps and restores window-state snapshots as Redis does: by the names a commit gives, pruning older ones', async () => {
    const real = await snapshots(new RedisSnapshotStore(ctx.redis, `${ctx.config.redis.keyPrefix}state:`), (p) => p);
    const scheduler = new Scheduler(0);
    const model = new SimRedis(scheduler, new SeededRandom(1));
    const simulated = await snapshots(new RedisSnapshotStore(model.client(new Owner('p')), 'x:state:'), (p) =>
      settle(scheduler, p),
    );
    expect(real).toEqual(['10.a', '20.b', undefined]);
    expect(simulated).toEqual(real);
  });

  /** Incremental state: a base and two deltas with their parts, loaded by their chain; pruning below the older named one keeps the chain. */
  async function chains(store: RedisSnapshotStore, run: <T>(p: Promise<T>) => Promise<T>): Promise<unknown[]> {
    const chainRef = { topic: 'events', partition: 1 };
    const link = (id: string, offset: string, chain: string[], parts: string[]): PartitionSnapshot => ({
      ...snapshot(id, offset),
      windows: new WindowParts({ format: 2, kind: chain.length === 0 ? 'base' : 'delta' }, Promise.resolve(parts)),
      chain,
    });
    await run(store.load(chainRef, []));
    await run(store.save([{ ref: chainRef, snapshot: link('10.a', '10', [], ['b0', 'b1']) }]));
    await run(store.save([{ ref: chainRef, snapshot: link('20.b', '20', ['10.a'], ['d1']) }]));
    await run(store.save([{ ref: chainRef, snapshot: link('30.c', '30', ['10.a', '20.b'], ['d2']) }]));
    const whole = await run(store.load(chainRef, ['30.c', '20.b']));
    await run(store.prune(chainRef, '20'));
    const pruned = await run(store.load(chainRef, ['30.c']));
    return [whole?.id, whole?.windows, pruned?.id];
  }

  it('keeps and restores incremental window state (records, parts, chains) as Redis does', async () => {
    const real = await chains(new RedisSnapshotStore(ctx.redis, `${ctx.config.redis.keyPrefix}state:`), (p) => p);
    const scheduler = new Scheduler(0);
    const model = new SimRedis(scheduler, new SeededRandom(1));
    const simulated = await chains(new RedisSnapshotStore(model.client(new Owner('p')), 'x:state:'), (p) =>
      settle(scheduler, p),
    );
    const head = (kind: string) => ({ format: 2, kind });
    expect(real).toEqual([
      '30.c',
      {
        links: [
          { windows: head('base'), parts: ['b0', 'b1'] },
          { windows: head('delta'), parts: ['d1'] },
          { windows: head('delta'), parts: ['d2'] },
        ],
      },
      '30.c',
    ]);
    expect(simulated).toEqual(real);
  });

  describe('a Redis that restarts', () => {
    let dir: string;
    let port: number;
    let server: Awaited<ReturnType<typeof spawnRedisServer>> | undefined;
    const startServer = async () => {
      server = await spawnRedisServer(
        ['--port', String(port), '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec'],
        () => answersPing({ redis: { url: `redis://127.0.0.1:${port}`, keyPrefix: '' } }),
      );
    };
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-redis-'));
      [port] = (await freePorts(1)) as [number];
      await startServer();
    });
    afterAll(async () => {
      await server?.stop('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });

    it('reports a new run_id after a kill -9, and the store says its state may be lost, as the model does', async () => {
      const client = new Redis({
        port,
        host: '127.0.0.1',
        maxRetriesPerRequest: 1,
        retryStrategy: (n) => Math.min(n * 100, 500),
      });
      client.on('error', () => undefined);
      const real = new RedisSnapshotStore(client, 'p:');
      await real.load(ref, []);
      await real.save([{ ref, snapshot: snapshot('10.s', '10') }]);
      await sleep(1500); // past the AOF's one-second fsync: this snapshot survives the kill
      await server!.stop('SIGKILL');
      await startServer();
      await waitFor('the client to reconnect', async () => (await client.ping().catch(() => '')) === 'PONG', 20_000);
      const realError = await real.save([{ ref, snapshot: snapshot('20.s', '20') }]).catch((e: unknown) => e);
      const realAfter = await real.load(ref, ['10.s']);
      client.disconnect();

      const scheduler = new Scheduler(0);
      const model = new SimRedis(scheduler, new SeededRandom(1));
      const simulated = new RedisSnapshotStore(model.client(new Owner('p')), 'p:');
      await settle(scheduler, simulated.load(ref, []));
      await settle(scheduler, simulated.save([{ ref, snapshot: snapshot('10.s', '10') }]));
      await scheduler.runUntil(scheduler.now() + 1500);
      model.crash(1000);
      model.restart();
      const modelError = await settle(scheduler, simulated.save([{ ref, snapshot: snapshot('20.s', '20') }])).catch(
        (e: unknown) => e,
      );
      const modelAfter = await settle(scheduler, simulated.load(ref, ['10.s']));

      expect(realError).toBeInstanceOf(StateLostError);
      expect(modelError).toBeInstanceOf(StateLostError);
      expect(realAfter?.offset).toBe('10');
      expect(modelAfter?.offset).toBe('10');
    }, 60_000);
  });
});

describe('the Kafka model', () => {
  // The simulation models kafkajs's group member (eager: a rejoin goes back to the committed offsets, and
  // the session timeout is the client's): it is held to kafkajs whatever kafka.client the suite runs with.
  // The platformatic member's own behaviour under KIP-848 is test/integration/rebalance.test.ts's.
  const kafkajs = () => createKafka({ kafka: { ...ctx.config.kafka, client: 'kafkajs' } });
  /**
   * Two partitions, 10 records each. A member reads partition p up to offset 9 (resolving, not
   * committing), commits offset 3, and a second member joins: after the rebalance, where does the
   * next fetch of each partition start? Returns (partition -> fetched offset) of the batches seen
   * after the second join, and the member id each join reported.
   */
  async function rejoin(
    kafka: StreamKafka,
    topic: string,
    group: string,
    wait: (ms: number) => Promise<void>,
  ): Promise<{ fetched: Map<number, string>; joins: Assignment[] }> {
    const joins: Assignment[] = [];
    const fetched = new Map<number, string>();
    let phase: 'first' | 'second' = 'first';
    const consumer = kafka.consumer({ groupId: group, topic, sessionTimeoutMs: 10_000 });
    const handlers = (record: boolean) => ({
      onAssignment: (a: Assignment) => {
        if (record) joins.push(a);
      },
      onBatch: async (partition: number, records: { offset: string }[], control: BatchControl) => {
        if (!record) return;
        if (phase === 'second') {
          if (!fetched.has(partition)) fetched.set(partition, control.fetchedOffset);
          return;
        }
        control.resolve(records[records.length - 1]!.offset);
      },
      onCrash: () => undefined,
    });
    await consumer.start(handlers(true));
    await wait(4000);
    await consumer.commit([
      { partition: 0, offset: '3' },
      { partition: 1, offset: '3' },
    ]);
    phase = 'second';
    const other = kafka.consumer({ groupId: group, topic, sessionTimeoutMs: 10_000 });
    await other.start(handlers(false));
    await wait(8000);
    await other.disconnect();
    await consumer.disconnect();
    return { fetched, joins };
  }

  it('starts every partition a member keeps or gains at its committed offset after a rebalance, as kafkajs does', async () => {
    const topic = await ctx.createTopic('rejoin', 2);
    const producer = createKafka(ctx.config).producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: Array.from({ length: 20 }, (_, i) => ({ partition: i % 2, value: `v${i}` })),
    });
    await producer.disconnect();
    const real = await rejoin(streamKafka(kafkajs()), topic, `${ctx.group}.rejoin`, sleep);

    const scheduler = new Scheduler(0);
    const world = new Owner('world');
    const model = new SimKafka(scheduler, world);
    model.createTopic('t', 2);
    for (let i = 0; i < 20; i++)
      model.produce('t', i % 2, { timestamp: 0, key: null, value: Buffer.from(`v${i}`), headers: {} });
    const simulated = await settle(
      scheduler,
      rejoin(model.client(new Owner('p')), 't', 'g', (ms) => scheduler.sleep(world, ms)),
    );

    // The member keeps one partition of the two: whichever, its next fetch starts at 3, not at 10.
    expect([...real.fetched.values()]).toEqual(['3']);
    expect([...simulated.fetched.values()]).toEqual(['3']);
    expect(real.joins.length).toBeGreaterThanOrEqual(2);
    expect(simulated.joins.length).toBeGreaterThanOrEqual(2);
    expect(real.joins[1]!.memberId).toBe(real.joins[0]!.memberId);
    expect(simulated.joins[1]!.memberId).toBe(simulated.joins[0]!.memberId);
  }, 60_000);

  /** A member whose batch runs past its session timeout without a heartbeat: is its commit refused, and does it join again as someone else? */
  async function expelled(
    kafka: StreamKafka,
    topic: string,
    group: string,
    wait: (ms: number) => Promise<void>,
  ): Promise<{ commit: unknown; joins: string[] }> {
    const joins: string[] = [];
    let commit: unknown = 'not tried';
    let stalled = false;
    const consumer = kafka.consumer({ groupId: group, topic, sessionTimeoutMs: 6000 });
    await consumer.start({
      onAssignment: (a) => joins.push(a.memberId),
      onBatch: async () => {
        if (stalled) return;
        stalled = true;
        await wait(11_000); // no heartbeat: the coordinator expels the member
        commit = await consumer.commit([{ partition: 0, offset: '1' }]).then(
          () => 'landed',
          (err: unknown) => err,
        );
      },
      onCrash: () => undefined,
    });
    await wait(25_000);
    await consumer.disconnect();
    return { commit, joins };
  }

  it('refuses the commit of a member expelled for its session timeout, which joins again under a new member id, as Kafka does', async () => {
    const topic = await ctx.createTopic('expel', 1);
    const producer = createKafka(ctx.config).producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ value: 'x' }, { value: 'y' }] });
    await producer.disconnect();
    const real = await expelled(streamKafka(kafkajs()), topic, `${ctx.group}.expel`, sleep);

    const scheduler = new Scheduler(0);
    const world = new Owner('world');
    const model = new SimKafka(scheduler, world);
    model.createTopic('t', 1);
    model.produce('t', 0, { timestamp: 0, key: null, value: Buffer.from('x'), headers: {} });
    const simulated = await settle(
      scheduler,
      expelled(model.client(new Owner('p')), 't', 'g', (ms) => scheduler.sleep(world, ms)),
    );

    for (const outcome of [real, simulated]) {
      expect(outcome.commit).toBeInstanceOf(CommitFencedError);
      expect(outcome.joins.length).toBeGreaterThanOrEqual(2);
      expect(outcome.joins[1]).not.toBe(outcome.joins[0]);
    }
  }, 90_000);
});
