import { randomUUID } from 'node:crypto';
import { createKafka, type ConsumedRecord } from '../../src/kafka';
import { startStream } from '../../src/process';
import { createLogger } from '../../src/telemetry';
import eventCounts from '../../streams/event-counts';
import { DeadLetterPublisher, readTopic, redrive } from '../../src/dlq';
import { loadAvroSchema, SchemaCodec } from '../../src/schema';
import { runCli } from '../helpers/cli';
import { waitFor } from '../helpers/processes';
import { createTestContext, type TestContext } from '../helpers/context';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext('dlqbound');
});
afterAll(async () => {
  await ctx.cleanup();
});

/**
 * Records a read_committed reader sees, in partition and offset order, once
 * there are at least `atLeast`: a transaction's commit returns before its
 * markers reach the partition, so its records become visible a moment later.
 */
async function records(topic: string, atLeast = 0): Promise<ConsumedRecord[]> {
  let seen: ConsumedRecord[] = [];
  await waitFor(
    `${atLeast} committed records in ${topic}`,
    async () => {
      seen = [];
      await readTopic(createKafka(ctx.config), topic, (r) => seen.push(r));
      return seen.length >= atLeast;
    },
    15_000,
  );
  return seen.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
}
const header = (r: ConsumedRecord, name: string) => r.headers[name]?.toString();
const env = () => ({
  SLUICE_KAFKA_BROKERS: ctx.config.kafka.brokers.join(','),
  SLUICE_REGISTRY_URL: ctx.config.registry.url,
});

describe('sluice dlq redrive: permanent classes and the attempt bound', () => {
  it('skips a permanent class, redrives a transient one until its attempt reaches the bound', async () => {
    const source = await ctx.createTopic('events', 1);
    const dlq = await ctx.createTopic('events.dlq', 1);
    const kafka = createKafka(ctx.config);
    // The publisher writes dead letters as the stream's checkpoints do (the same deadLetterMessage).
    const publisher = new DeadLetterPublisher(kafka, { stream: 'event-counts' });
    const original = (key: string, offset: number): ConsumedRecord => ({
      topic: source,
      partition: 0,
      offset: String(offset),
      timestamp: '1',
      key: Buffer.from(key),
      value: Buffer.from(`not avro ${key}`),
      headers: {},
    });
    try {
      await publisher.send([
        { source: original('poison', 0), errorClass: 'WIRE_FORMAT_INVALID', message: 'no magic byte', attempt: 1 },
        { source: original('fixable', 1), errorClass: 'EVENT_INVALID', message: 'amount < 0', attempt: 1 },
      ]);

      const dry = runCli(['dlq', 'redrive', source], env());
      expect(dry.status).toBe(0);
      expect(dry.stderr).toBe('');
      expect(dry.stdout).toMatch(/^\s+EVENT_INVALID\s+transient\s+1\s+1\s+-$/m);
      expect(dry.stdout).toMatch(
        /^\s+WIRE_FORMAT_INVALID\s+permanent\s+1\s+0\s+1 permanent \(add --include-permanent\)$/m,
      );
      expect((await records(source)).length).toBe(0);

      // Each round: redrive, and the copy fails again as the stream would dead-letter it (its consumed record, headers and all).
      for (const attempt of [1, 2]) {
        const result = await redrive(kafka, dlq, { dryRun: false });
        expect(result).toMatchObject({ redriven: 1, skippedPermanent: 1, byClass: { EVENT_INVALID: 1 } });
        const copies = await records(source, attempt);
        const copy = copies[copies.length - 1]!;
        expect(copy.key!.toString()).toBe('fixable');
        expect(header(copy, 'sluice.redrive.attempt')).toBe(String(attempt));
        await publisher.send([{ source: copy, errorClass: 'EVENT_INVALID', message: 'amount < 0', attempt: 1 }]);
        const letters = await records(dlq, 2 + attempt);
        expect(header(letters[letters.length - 1]!, 'sluice.dlq.attempt')).toBe(String(attempt + 1));
      }
      // Attempt 3 is at the default bound: passed over, and the loop ends.
      expect(await redrive(kafka, dlq, { dryRun: false })).toMatchObject({
        redriven: 0,
        skippedAtBound: 1,
        skippedPermanent: 1,
        maxAttempts: 3,
      });
      expect((await records(source)).length).toBe(2);

      // The permanent record was left for a run that asks for it, and only it goes.
      const forced = runCli(['dlq', 'redrive', source, '--include-permanent', '--yes', '--json'], env());
      expect(forced.stderr).toBe('');
      expect(JSON.parse(forced.stdout)).toMatchObject({ redriven: 1, byClass: { WIRE_FORMAT_INVALID: 1 } });
      const all = await records(source, 3);
      expect(all.map((r) => r.key!.toString())).toEqual(['fixable', 'fixable', 'poison']);
    } finally {
      await publisher.disconnect();
    }
  });
});

describe('redrive through the real stream', () => {
  it('a redriven record that fails again in the stream is dead-lettered with attempt 2; random bytes are not redriven', async () => {
    const topic = await ctx.createTopic('live', 1);
    const dlq = await ctx.createTopic('live.dlq', 1);
    await ctx.createTopic('live.late', 1);
    const codec = SchemaCodec.fromConfig(ctx.config);
    const schemaId = await codec.register('events-value', loadAvroSchema('analytics_event'));
    const invalid = {
      event_id: randomUUID(),
      event_type: 'purchase',
      user_id: 'u1',
      campaign_id: null,
      ad_id: null,
      event_time: Date.UTC(2026, 0, 1),
      amount: 1e308, // above the stream's bound: EVENT_INVALID, which a fixed validator could accept
      properties: {},
    };
    const kafka = createKafka(ctx.config);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: [
        { key: 'poison', value: Buffer.from('random bytes, not wire format') },
        { key: invalid.event_id, value: await codec.encode(schemaId, invalid) },
      ],
    });
    await producer.disconnect();
    const run = async () =>
      (await startStream(eventCounts, ctx.config, { bounded: true, groupId: ctx.group, topic }, createLogger('warn')))
        .done;

    await run();
    const first = await records(dlq, 2);
    expect(first.map((r) => [r.key!.toString(), header(r, 'sluice.dlq.attempt')])).toEqual([
      ['poison', '1'],
      [invalid.event_id, '1'],
    ]);
    expect(header(first[0]!, 'sluice.dlq.error.class')).toBe('WIRE_FORMAT_INVALID');
    expect(header(first[1]!, 'sluice.dlq.error.class')).toBe('EVENT_INVALID');

    expect(await redrive(kafka, dlq, { dryRun: false })).toMatchObject({
      redriven: 1,
      skippedPermanent: 1,
      byClass: { EVENT_INVALID: 1 },
    });
    await run(); // the same group reads on: only the redriven copy is new
    const second = await records(dlq, 3);
    expect(second).toHaveLength(3);
    const again = second[2]!;
    expect([
      again.key!.toString(),
      header(again, 'sluice.dlq.error.class'),
      header(again, 'sluice.dlq.attempt'),
    ]).toEqual([invalid.event_id, 'EVENT_INVALID', '2']);
    expect(Buffer.compare(again.value!, first[1]!.value!)).toBe(0);
  }, 120_000);
});

describe('sluice dlq list | show on a .late topic', () => {
  it('counts late events per reason and shows them decoded with the registry, filtered, as text and JSON', async () => {
    const source = await ctx.createTopic('clicks', 2);
    const late = await ctx.createTopic('clicks.late', 2);
    const codec = SchemaCodec.fromConfig(ctx.config);
    const schemaId = await codec.register('events-value', loadAvroSchema('analytics_event'));
    const events = [0, 1, 2].map((n) => ({
      event_id: randomUUID(),
      event_type: 'click',
      user_id: `u${n}`,
      campaign_id: null,
      ad_id: null,
      event_time: Date.UTC(2026, 0, 1, 0, 0, n),
      amount: null,
      properties: {},
    }));
    const publisher = new DeadLetterPublisher(createKafka(ctx.config), { stream: 'event-counts' });
    try {
      await publisher.late(
        await Promise.all(
          events.map(async (e, n) => ({
            source: {
              topic: source,
              partition: n === 2 ? 1 : 0,
              offset: String(10 + n),
              timestamp: '1',
              key: Buffer.from(e.event_id),
              value: await codec.encode(schemaId, e),
              headers: {},
            },
            windowStart: Date.UTC(2026, 0, 1),
            windowEnd: Date.UTC(2026, 0, 1, 0, 1),
            watermark: Date.UTC(2026, 0, 1, 0, 3),
            eventTime: e.event_time,
            reason: n === 1 ? 'window-closed-idle' : undefined,
          })),
        ),
      );
    } finally {
      await publisher.disconnect();
    }

    const list = runCli(['dlq', 'list', late], env());
    expect(list.stderr).toBe('');
    expect(list.stdout).toContain(`${late}: 3 record(s)`);
    expect(list.stdout).toMatch(/after-allowed-lateness\s+2/);
    expect(list.stdout).toMatch(/window-closed-idle\s+1/);

    const text = runCli(['dlq', 'show', late, '--class', 'after-allowed-lateness'], env());
    expect(text.stderr).toBe('');
    expect(text.stdout.match(/^\S+\.late\[\d\]@\d+/gm)).toHaveLength(2);
    expect(text.stdout).toContain(`avro   schema id ${schemaId}: {"event_id":"${events[0]!.event_id}"`);
    expect(text.stdout).toContain('header sluice.late.source.offset = 12');

    // Late events are keyed by event id, so they spread over the partitions: ask for the one the first landed on.
    const stored = await records(late, 3);
    const partition = stored.find((r) => r.key!.toString() === events[0]!.event_id)!.partition;
    const expected = stored
      .filter((r) => r.partition === partition)
      .map((r) => events.find((e) => e.event_id === r.key!.toString())!);
    const json = runCli(['dlq', 'show', late, '--partition', String(partition), '--json'], env());
    expect(json.stderr).toBe('');
    const shown = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(shown.map((r) => r.payload)).toEqual(
      expected.map((e) =>
        expect.objectContaining({ event_id: e.event_id, user_id: e.user_id, event_time: e.event_time }),
      ),
    );
    expect(shown.every((r) => r.partition === partition)).toBe(true);
    const first = shown.find((r) => r.key === events[0]!.event_id)!;
    expect(first).toMatchObject({ topic: late, schema_id: schemaId });
    expect(first.headers).toEqual(expect.arrayContaining(['sluice.late.reason', 'after-allowed-lateness']));
  });
});
