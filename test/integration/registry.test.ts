import { SchemaCodec, loadAvroSchema, startRegistry, type RunningRegistry } from '../../src/schema';
import { createTestContext, type TestContext } from '../helpers/context';

/**
 * Embedded registry instances on this spec's own state topic (not the shared
 * `_schemas`), on random ports: restart, a second instance, racing writers,
 * and Confluent's error codes, all through the real HTTP API and real Kafka.
 */
const v1 = loadAvroSchema('analytics_event');
const v2 = loadAvroSchema('analytics_event.v2');
const v2Fields = (v2 as { fields: object[] }).fields;
/** BACKWARD-incompatible: a new field without a default cannot be filled from v2 data. */
const v3Breaking = { ...v2, fields: [...v2Fields, { name: 'region', type: 'string' }] };

const CT = 'application/vnd.schemaregistry.v1+json';

interface Answer {
  status: number;
  contentType: string | null;
  body: Record<string, unknown> & { error_code?: number; message?: string };
}

async function call(registry: RunningRegistry, method: string, path: string, body?: unknown): Promise<Answer> {
  const response = await fetch(`${registry.url}${path}`, {
    method,
    headers: { 'content-type': CT, accept: CT },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    body: (await response.json()) as Answer['body'],
  };
}

const submit = (schema: object) => ({ schema: JSON.stringify(schema) });

describe('embedded schema registry (own topic, in-process instances)', () => {
  let ctx: TestContext;
  let topic: string;
  const open: RunningRegistry[] = [];
  const start = async () => {
    const registry = await startRegistry(ctx.config, { port: 0, topic });
    open.push(registry);
    return registry;
  };
  const stop = async (registry: RunningRegistry) => {
    await registry.close();
    open.splice(open.indexOf(registry), 1);
  };
  let a: RunningRegistry;
  const subject = () => `${ctx.id}.events-value`;

  beforeAll(async () => {
    ctx = await createTestContext('registry');
    topic = ctx.topic('_schemas');
    a = await start();
  });
  afterAll(async () => {
    for (const registry of [...open]) await registry.close();
    await ctx.cleanup();
  });

  it('creates its state topic compacted, with one partition', async () => {
    const [meta] = await ctx.admin.fetchTopicMetadata([topic]);
    expect(meta!.partitions).toHaveLength(1);
    const configs = await ctx.admin.describeConfigs([{ type: 'topic', name: topic, configNames: ['cleanup.policy'] }]);
    expect(configs.get(topic)![0]!.value).toBe('compact');
  });

  it('registers v1 and v2 with global ids, idempotently, and shares an id across subjects', async () => {
    const first = await call(a, 'POST', `/subjects/${subject()}/versions`, submit(v1));
    expect(first.status).toBe(200);
    expect(first.contentType).toMatch(/^application\/vnd\.schemaregistry\.v1\+json/);
    const second = await call(a, 'POST', `/subjects/${subject()}/versions`, submit(v2));
    expect(second.body.id).not.toBe(first.body.id);
    // Whitespace differences do not make a new schema.
    const again = await call(a, 'POST', `/subjects/${subject()}/versions`, { schema: JSON.stringify(v1, null, 4) });
    expect(again.body.id).toBe(first.body.id);
    const other = await call(a, 'POST', `/subjects/${ctx.id}.other-value/versions`, submit(v1));
    expect(other.body.id).toBe(first.body.id);

    expect((await call(a, 'GET', `/subjects/${subject()}/versions`)).body).toEqual([1, 2]);
    const latest = await call(a, 'GET', `/subjects/${subject()}/versions/latest`);
    expect(latest.body).toMatchObject({ subject: subject(), version: 2, id: second.body.id });
    expect(JSON.parse(latest.body.schema as string)).toEqual(v2);
    const byId = await call(a, 'GET', `/schemas/ids/${first.body.id}`);
    expect(JSON.parse(byId.body.schema as string)).toEqual(v1);
    expect((await call(a, 'GET', `/schemas/ids/${first.body.id}/versions`)).body).toEqual([
      { subject: `${ctx.id}.events-value`, version: 1 },
      { subject: `${ctx.id}.other-value`, version: 1 },
    ]);
    const lookup = await call(a, 'POST', `/subjects/${subject()}`, submit(v2));
    expect(lookup.body).toMatchObject({ version: 2, id: second.body.id });
    const raw = await fetch(`${a.url}/subjects/${subject()}/versions/1/schema`);
    expect(await raw.json()).toEqual(v1);
  });

  it('rejects an incompatible v3 with HTTP 409 / error_code 409 naming the field, under BACKWARD by default', async () => {
    expect((await call(a, 'GET', '/config')).body).toEqual({ compatibilityLevel: 'BACKWARD' });
    const rejected = await call(a, 'POST', `/subjects/${subject()}/versions`, submit(v3Breaking));
    expect(rejected.status).toBe(409);
    expect(rejected.body.error_code).toBe(409);
    expect(rejected.body.message).toMatch(/field region/);
    const check = await call(a, 'POST', `/compatibility/subjects/${subject()}/versions/latest`, submit(v3Breaking));
    expect(check.body).toEqual({ is_compatible: false });
    const fine = await call(a, 'POST', `/compatibility/subjects/${subject()}/versions/latest`, submit(v2));
    expect(fine.body).toEqual({ is_compatible: true });
    expect((await call(a, 'GET', `/subjects/${subject()}/versions`)).body).toEqual([1, 2]);

    // Under FORWARD the same change is fine (v2 readers ignore the new field).
    expect((await call(a, 'PUT', `/config/${subject()}`, { compatibility: 'FORWARD' })).body).toEqual({
      compatibility: 'FORWARD',
    });
    expect((await call(a, 'GET', `/config/${subject()}`)).body).toEqual({ compatibilityLevel: 'FORWARD' });
    expect(
      (await call(a, 'POST', `/compatibility/subjects/${subject()}/versions/latest`, submit(v3Breaking))).body,
    ).toEqual({ is_compatible: true });
    expect((await call(a, 'DELETE', `/config/${subject()}`)).body).toEqual({ compatibilityLevel: 'FORWARD' });
  });

  it("answers Confluent's error codes", async () => {
    const expectError = (answer: Answer, status: number, code: number) => {
      expect({ status: answer.status, code: answer.body.error_code }).toEqual({ status, code });
      expect(typeof answer.body.message).toBe('string');
    };
    expectError(await call(a, 'GET', `/subjects/${ctx.id}.missing-value/versions`), 404, 40401);
    expectError(await call(a, 'GET', `/subjects/${ctx.id}.missing-value/versions/1`), 404, 40401);
    expectError(await call(a, 'GET', `/subjects/${subject()}/versions/99`), 404, 40402);
    expectError(await call(a, 'GET', '/schemas/ids/987654'), 404, 40403);
    expectError(
      await call(a, 'POST', `/subjects/${subject()}`, submit({ type: 'record', name: 'Nope', fields: [] })),
      404,
      40403,
    );
    expectError(
      await call(a, 'POST', `/subjects/${subject()}/versions`, {
        schema: '{"type":"record","name":"X","fields":[{"name":"a","type":"strng"}]}',
      }),
      422,
      42201,
    );
    expectError(await call(a, 'POST', `/subjects/${subject()}/versions`, { schema: 'not json' }), 422, 42201);
    expectError(await call(a, 'GET', `/subjects/${subject()}/versions/zero`), 422, 42202);
    expectError(await call(a, 'PUT', '/config', { compatibility: 'SIDEWAYS' }), 422, 42203);
    expectError(await call(a, 'GET', `/config/${subject()}`), 404, 40408);
  });

  it('keeps ids and versions across a restart, and a second instance serves the same ids', async () => {
    const before = (await call(a, 'GET', `/subjects/${subject()}/versions/latest`)).body;
    await stop(a);
    a = await start();
    expect((await call(a, 'GET', `/subjects/${subject()}/versions/latest`)).body).toEqual(before);

    const b = await start();
    expect((await call(b, 'GET', `/subjects/${subject()}/versions/latest`)).body).toEqual(before);
    // A write on one instance is visible on the other at once: a miss catches up with the log first.
    const added = await call(b, 'POST', `/subjects/${ctx.id}.fromb-value/versions`, submit(v2));
    expect(added.body.id).toBe(before.id);
    expect((await call(a, 'GET', `/subjects/${ctx.id}.fromb-value/versions/1`)).body).toMatchObject({ id: before.id });
    await stop(b);
  });

  it('lets the log decide between two instances racing to register different schemas', async () => {
    const b = await start();
    const race = `${ctx.id}.race-value`;
    await call(a, 'PUT', `/config/${race}`, { compatibility: 'NONE' });
    const schemas = Array.from({ length: 6 }, (_, i) => ({
      type: 'record',
      name: `Race${i}`,
      fields: [{ name: 'n', type: 'int' }],
    }));
    const answers = await Promise.all(
      schemas.map((s, i) => call(i % 2 === 0 ? a : b, 'POST', `/subjects/${race}/versions`, submit(s))),
    );
    expect(answers.map((r) => r.status)).toEqual(schemas.map(() => 200));
    const ids = answers.map((r) => r.body.id as number);
    expect(new Set(ids).size).toBe(schemas.length);
    // Every id each writer was given holds exactly the schema it sent, on both instances.
    for (const registry of [a, b]) {
      for (const [i, id] of ids.entries()) {
        expect(JSON.parse((await call(registry, 'GET', `/schemas/ids/${id}`)).body.schema as string)).toEqual(
          schemas[i],
        );
      }
      expect((await call(registry, 'GET', `/subjects/${race}/versions`)).body).toEqual([1, 2, 3, 4, 5, 6]);
    }
    await stop(b);
  });

  it('soft-deletes, then permanently deletes, a version and a subject', async () => {
    const doomed = `${ctx.id}.doomed-value`;
    await call(a, 'POST', `/subjects/${doomed}/versions`, submit(v1));
    await call(a, 'POST', `/subjects/${doomed}/versions`, submit(v2));
    expect((await call(a, 'DELETE', `/subjects/${doomed}/versions/2?permanent=true`)).body.error_code).toBe(40407);
    expect((await call(a, 'DELETE', `/subjects/${doomed}/versions/2`)).body).toBe(2);
    expect((await call(a, 'GET', `/subjects/${doomed}/versions`)).body).toEqual([1]);
    expect((await call(a, 'GET', `/subjects/${doomed}/versions?deleted=true`)).body).toEqual([1, 2]);
    expect((await call(a, 'DELETE', `/subjects/${doomed}`)).body).toEqual([1]);
    expect((await call(a, 'GET', `/subjects/${doomed}/versions`)).body.error_code).toBe(40401);
    expect((await call(a, 'GET', '/subjects')).body).not.toContain(doomed);
    expect((await call(a, 'GET', '/subjects?deleted=true')).body).toContain(doomed);
    expect((await call(a, 'DELETE', `/subjects/${doomed}?permanent=true`)).body).toEqual([1, 2]);
    expect((await call(a, 'GET', '/subjects?deleted=true')).body).not.toContain(doomed);
  });

  it('decodes through the codec with writer -> reader resolution in both directions', async () => {
    const codec = SchemaCodec.fromConfig({ registry: { url: a.url } });
    const id1 = await codec.register(subject(), v1);
    const id2 = await codec.register(subject(), v2);
    const event = {
      event_id: '4a0d6c1e-9b7f-4e2a-8c3d-1f2e3a4b5c6d',
      event_type: 'click',
      user_id: 'u-1',
      campaign_id: null,
      ad_id: 'ad-3',
      event_time: 1_764_000_000_000,
      amount: null,
      properties: {},
    };
    const fresh = SchemaCodec.fromConfig({ registry: { url: a.url } }); // nothing cached: fetches writers by id
    expect((await fresh.decode(await codec.encode(id1, event), v2)).value).toEqual({ ...event, channel: 'unknown' });
    expect((await fresh.decode(await codec.encode(id2, { ...event, channel: 'web' }), v1)).value).toEqual(event);
  });
});
