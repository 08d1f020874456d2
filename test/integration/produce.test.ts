import { loadConfig } from '../../src/config';
import { randomUUID } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readTopic as readToEnd } from '../helpers/topics';
import { createTestContext, type TestContext } from '../helpers/context';
import { createKafka } from '../../src/kafka';
import { createEventProducer, EventValidationError, type SentEvent } from '../../src/produce';
import type { AnalyticsEvent, AnalyticsEventV2 } from '../../streams/event-counts';
import { loadAvroSchema, SchemaCodec } from '../../src/schema';
import { ensureDebianPackages } from '../../src/stack/packages';

const V1 = loadAvroSchema('analytics_event');
const V2 = loadAvroSchema('analytics_event.v2');

function makeEvents(n: number, extra: Partial<AnalyticsEvent> = {}): AnalyticsEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    event_id: randomUUID(),
    event_type: ['view', 'click', 'purchase'][i % 3]!,
    user_id: `user-${i % 17}`,
    campaign_id: i % 4 === 0 ? null : `c-${i % 5}`,
    ad_id: null,
    event_time: 1_700_000_000_000 + i * 1000,
    amount: i % 3 === 2 ? i * 1.25 : null,
    properties: { n: String(i) },
    ...extra,
  }));
}

/** key -> partition, as librdkafka (kcat) sees the topic. */
function kcatPartitions(topic: string): Map<string, number> {
  const run = spawnSync(
    'kcat',
    ['-C', '-b', loadConfig().kafka.brokers.join(','), '-t', topic, '-f', '%p %k\n', '-e', '-q'],
    { encoding: 'utf8', timeout: 20_000 },
  );
  if (run.status !== 0) throw new Error(`kcat failed: ${run.stderr}`);
  return new Map(
    run.stdout
      .trim()
      .split('\n')
      .map((line) => {
        const [p, k] = line.split(' ');
        return [k!, Number(p)] as const;
      }),
  );
}

async function totalRecords(ctx: TestContext, topic: string): Promise<number> {
  const offsets = await ctx.admin.fetchTopicOffsets(topic);
  return offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0);
}

describe('event producer SDK', () => {
  let ctx: TestContext;
  const codec = (c: TestContext) => SchemaCodec.fromConfig(c.config);

  beforeAll(async () => {
    ensureDebianPackages({ kcat: 'kcat' }, () => undefined);
    ctx = await createTestContext('produce');
  });
  afterAll(async () => {
    await ctx.cleanup();
  });

  it('round-trips v1 events through Kafka, readable with the v1 and v2 reader schemas', async () => {
    const topic = await ctx.createTopic('v1', 6);
    const producer = createEventProducer<AnalyticsEvent>({ config: ctx.config, topic, schema: 'analytics_event' });
    const events = makeEvents(120);
    let sent: SentEvent[];
    try {
      // Half through concurrent single sends, half as one batch.
      sent = [
        ...(await Promise.all(events.slice(0, 60).map((e) => producer.send(e)))),
        ...(await producer.sendBatch(events.slice(60))),
      ];
    } finally {
      await producer.close();
    }
    expect(sent.map((s) => s.key)).toEqual(events.map((e) => e.event_id));
    expect(new Set(sent.map((s) => `${s.partition}:${s.offset}`)).size).toBe(120);

    const records = await readToEnd(createKafka(ctx.config), topic);
    expect(records).toHaveLength(120);
    expect(await totalRecords(ctx, topic)).toBe(120); // exactly once: no duplicates from retries
    const reader = codec(ctx);
    const byId = new Map(events.map((e) => [e.event_id, e]));
    for (const record of records) {
      const key = record.key!.toString();
      const asV1 = await reader.decode(record.value!, V1);
      const asV2 = await reader.decode(record.value!, V2);
      expect(asV1.schemaId).toBe(producer.schemaId);
      expect(asV1.value).toEqual(byId.get(key));
      // A v2 reader fills the field v1 writers do not have with its default.
      expect(asV2.value).toEqual({ ...byId.get(key), channel: 'unknown' });
    }
  });

  it('v2 events are readable with the v1 reader (the new field is dropped)', async () => {
    const topic = await ctx.createTopic('v2', 3);
    const producer = createEventProducer<AnalyticsEventV2>({ config: ctx.config, topic, schema: 'analytics_event.v2' });
    const events: AnalyticsEventV2[] = makeEvents(30).map((e) => ({ ...e, channel: 'ios' }));
    try {
      await producer.sendBatch(events);
    } finally {
      await producer.close();
    }
    const reader = codec(ctx);
    const byId = new Map(events.map((e) => [e.event_id, e]));
    for (const record of await readToEnd(createKafka(ctx.config), topic)) {
      const original = byId.get(record.key!.toString())!;
      expect((await reader.decode(record.value!, V2)).value).toEqual(original);
      const withoutChannel: Partial<AnalyticsEventV2> = { ...original };
      delete withoutChannel.channel;
      expect((await reader.decode(record.value!, V1)).value).toEqual(withoutChannel);
    }
  });

  it('puts each key on the partition Java/librdkafka murmur2 picks (checked with kcat)', async () => {
    const topic = await ctx.createTopic('keys', 6);
    const twin = await ctx.createTopic('keys-kcat', 6);
    const producer = createEventProducer<AnalyticsEvent>({ config: ctx.config, topic, schema: 'analytics_event' });
    const events = makeEvents(300);
    let sent: SentEvent[];
    try {
      sent = await producer.sendBatch(events);
    } finally {
      await producer.close();
    }
    const sdkChoice = new Map(sent.map((s) => [s.key, s.partition]));
    expect(new Set(sdkChoice.values()).size).toBe(6); // 300 random keys use every partition

    // Where the records actually are, as a non-JS client reads them.
    expect(kcatPartitions(topic)).toEqual(sdkChoice);

    // librdkafka partitions the same keys itself with murmur2 (the Java client's default for keyed records).
    const lines = events.map((e) => `${e.event_id}\tx`).join('\n');
    const produce = spawnSync(
      'kcat',
      [
        '-P',
        '-b',
        loadConfig().kafka.brokers.join(','),
        '-t',
        twin,
        '-K',
        '\t',
        '-X',
        'topic.partitioner=murmur2_random',
        '-X',
        'topic.request.required.acks=all',
      ],
      { input: `${lines}\n`, encoding: 'utf8', timeout: 20_000 },
    );
    expect(produce.status).toBe(0);
    expect(kcatPartitions(twin)).toEqual(sdkChoice);
  });

  it('rejects an invalid event listing every bad field, and sends nothing', async () => {
    const topic = await ctx.createTopic('invalid', 1);
    const producer = createEventProducer<AnalyticsEvent>({ config: ctx.config, topic, schema: 'analytics_event' });
    const [good] = makeEvents(1);
    const bad = {
      ...good!,
      event_time: 'yesterday',
      amount: 'ten',
      properties: { a: 1 },
      colour: 'red',
    } as unknown as AnalyticsEvent;
    try {
      const error = await producer.send(bad).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EventValidationError);
      expect((error as EventValidationError).issues.map((i) => i.path)).toEqual([
        'event_time',
        'amount',
        'properties.a',
        'colour',
      ]);
      expect((error as Error).message).toMatch(
        /^event does not match Avro schema dev\.sluice\.events\.AnalyticsEvent: event_time: expected long, got string "yesterday"/,
      );
      // A batch with one bad event is refused whole.
      const batchError = await producer
        .sendBatch([good!, { ...good!, user_id: 7 } as unknown as AnalyticsEvent])
        .catch((e: unknown) => e);
      expect((batchError as EventValidationError).issues).toEqual([
        { path: '[1].user_id', reason: 'expected string, got number 7' },
      ]);
    } finally {
      await producer.close();
    }
    expect(await totalRecords(ctx, topic)).toBe(0);
  });

  it('fails at once, not retriable, on a missing topic, and registers nothing under its subject', async () => {
    const topic = ctx.topic('never-created');
    const producer = createEventProducer<AnalyticsEvent>({ config: ctx.config, topic, schema: 'analytics_event' });
    const started = Date.now();
    const error = await producer.send(makeEvents(1)[0]!).catch((e: unknown) => e);
    await producer.close();
    expect(error).toMatchObject({ code: 'TOPIC_MISSING', retriable: false });
    expect((error as Error).message).toMatch(new RegExp(`^topic ${topic.replace(/\./g, '\\.')} does not exist`));
    expect(Date.now() - started).toBeLessThan(10_000);
    const subject = await fetch(`${ctx.config.registry.url}/subjects/${encodeURIComponent(`${topic}-value`)}/versions`);
    expect(subject.status).toBe(404);
  });

  it('bounds the events in flight: send waits instead of buffering without limit', async () => {
    const topic = await ctx.createTopic('backpressure', 6);
    const bound = 40;
    const producer = createEventProducer<AnalyticsEvent>({
      config: ctx.config,
      topic,
      schema: 'analytics_event',
      maxInFlightEvents: bound,
      maxBatchEvents: 15,
      lingerMs: 2,
    });
    const events = makeEvents(600);
    let observedMax = 0;
    const sampler = setInterval(() => (observedMax = Math.max(observedMax, producer.stats().inFlightEvents)), 1);
    try {
      await producer.connect();
      // 400 callers at once, then one batch of 200 larger than the bound.
      const singles = Promise.all(events.slice(0, 400).map((e) => producer.send(e)));
      const batch = producer.sendBatch(events.slice(400));
      await Promise.all([singles, batch]);
    } finally {
      clearInterval(sampler);
      await producer.close();
    }
    const stats = producer.stats();
    expect(stats.peakInFlightEvents).toBe(bound); // reached, never exceeded
    expect(observedMax).toBeLessThanOrEqual(bound);
    expect(stats.sentEvents).toBe(600);
    expect(stats.inFlightEvents).toBe(0);
    // Concurrent sends share produce requests (at most maxBatchEvents each).
    expect(stats.produceRequests).toBeGreaterThanOrEqual(600 / 15);
    expect(stats.produceRequests).toBeLessThan(600);
    expect(await totalRecords(ctx, topic)).toBe(600);
  });
});
