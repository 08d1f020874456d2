import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import type { RawAvroSchema } from '@kafkajs/confluent-schema-registry/dist/@types';
import { createKafka } from '../../src/kafka';
import { RegistryClient, SchemaCodec, loadAvroSchema } from '../../src/schema';
import { runCli } from '../helpers/cli';
import { createTestContext, type TestContext } from '../helpers/context';
import { readTopic } from '../helpers/topics';

/**
 * The registry the local stack runs (`sluice stack up` starts it on 8081),
 * used by the Confluent client library and by Sluice's codec on both ends of
 * a real Kafka topic, and by the `sluice schemas` CLI. Every subject here is
 * prefixed with this spec's id and removed afterwards.
 */
const v1 = loadAvroSchema('analytics_event');
const v2 = loadAvroSchema('analytics_event.v2');

const events = Array.from({ length: 20 }, (_, i) => ({
  event_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
  event_type: ['view', 'click', 'purchase'][i % 3]!,
  user_id: `user-${i % 7}`,
  campaign_id: i % 2 === 0 ? `c-${i % 4}` : null,
  ad_id: null,
  event_time: 1_764_000_000_000 + i * 1000,
  amount: i % 3 === 2 ? i * 1.25 : null,
  properties: { i: String(i) },
}));

describe('stack registry with the Confluent client, the codec, Kafka and the CLI', () => {
  let ctx: TestContext;
  let client: RegistryClient;
  const subjects: string[] = [];

  beforeAll(async () => {
    ctx = await createTestContext('schemas');
    client = new RegistryClient(ctx.config.registry.url);
  });
  afterAll(async () => {
    for (const subject of subjects) {
      await client.request('DELETE', `/subjects/${encodeURIComponent(subject)}`).catch(() => undefined);
      await client.request('DELETE', `/subjects/${encodeURIComponent(subject)}?permanent=true`).catch(() => undefined);
    }
    await ctx.cleanup();
  });

  it('carries records written by the Confluent client through Kafka to the codec, v1 data read as v2', async () => {
    const topic = await ctx.createTopic('events', 3);
    const subject = `${topic}-value`;
    subjects.push(subject);
    const confluent = new SchemaRegistry({ host: ctx.config.registry.url });
    const { id: id1 } = await confluent.register({ type: SchemaType.AVRO, schema: JSON.stringify(v1) }, { subject });
    expect(await confluent.getLatestSchemaId(subject)).toBe(id1);

    const kafka = createKafka(ctx.config);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: await Promise.all(
        events.map(async (e) => ({ key: e.event_id, value: await confluent.encode(id1, e) })),
      ),
    });
    await producer.disconnect();

    const codec = SchemaCodec.fromConfig(ctx.config);
    const decoded = new Map<string, Record<string, unknown>>();
    for (const record of await readTopic(kafka, topic)) {
      const { schemaId, value } = await codec.decode(record.value!, v2);
      expect(schemaId).toBe(id1);
      decoded.set(record.key!.toString(), value);
    }
    for (const e of events) expect(decoded.get(e.event_id)).toEqual({ ...e, channel: 'unknown' });

    // And back: v2 written by Sluice's codec, read by the Confluent client as v1 and as itself.
    const id2 = await codec.register(subject, v2);
    expect(id2).not.toBe(id1);
    const buf = await codec.encode(id2, { ...events[0], channel: 'android' });
    expect(await confluent.decode(buf)).toEqual({ ...events[0], channel: 'android' });
    expect(await confluent.decode(buf, { [SchemaType.AVRO]: { readerSchema: v1 as RawAvroSchema } })).toEqual(
      events[0],
    );
  });

  it('rejects a breaking v3 through the Confluent client with 409', async () => {
    const subject = `${ctx.id}.strict-value`;
    subjects.push(subject);
    const confluent = new SchemaRegistry({ host: ctx.config.registry.url });
    await confluent.register({ type: SchemaType.AVRO, schema: JSON.stringify(v2) }, { subject });
    const v3 = { ...v2, fields: [...(v2 as { fields: object[] }).fields, { name: 'region', type: 'string' }] };
    const failure = await confluent
      .register({ type: SchemaType.AVRO, schema: JSON.stringify(v3) }, { subject })
      .catch((err: unknown) => err);
    expect(failure).toMatchObject({ status: 409 });
    expect(String((failure as Error).message)).toMatch(/region/);
  });

  it('`schemas register` registers each version under its subject, idempotently, and `schemas list` shows them', async () => {
    const prefix = `${ctx.id}.cli.`;
    const subject = `${prefix}events-value`;
    subjects.push(subject);
    const first = runCli(['schemas', 'register', '--prefix', prefix]);
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    const [id1, id2] = await Promise.all([1, 2].map(async (v) => (await client.version(subject, v)).id));
    expect(first.stdout).toContain(
      `ok    ${subject} (BACKWARD): analytics_event id ${id1}, analytics_event.v2 id ${id2}`,
    );
    const again = runCli(['schemas', 'register', '--prefix', prefix]);
    expect(again.stdout).toBe(first.stdout);
    expect(await client.versions(subject)).toEqual([1, 2]);

    const list = runCli(['schemas', 'list', '--json']);
    expect(list.status).toBe(0);
    const rows = list.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { subject: string });
    expect(rows.find((r) => r.subject === subject)).toEqual({
      subject,
      compatibility: 'BACKWARD',
      versions: [
        { version: 1, id: id1 },
        { version: 2, id: id2 },
      ],
    });
  });

  it('fails in one line when the registry is unreachable', () => {
    const result = runCli(['schemas', 'list'], { SLUICE_REGISTRY_URL: 'http://127.0.0.1:9' });
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/schema registry at http:\/\/127\.0\.0\.1:9 is unreachable.*sluice stack up/);
  });
});
