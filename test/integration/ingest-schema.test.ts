import { ConfigError } from '../../src/errors';
import { latestRegisteredSchema } from '../../src/ingest/schema-choice';
import { SchemaCodec, loadAvroSchema } from '../../src/schema';
import { createTestContext, type TestContext } from '../helpers/context';

/**
 * `sluice serve` without a schema validates against the latest version
 * registered for its topic, so the HTTP API takes the fields (v2's
 * `channel`) that SDK producers of the latest schema send; with none
 * registered yet, ingest.schema's.
 */
describe('the ingest schema by default: the latest registered for the topic', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext('ingest_schema');
  });
  afterAll(async () => {
    await ctx?.cleanup();
  });

  it('leaves the choice to ingest.schema when nothing is registered under <topic>-value yet', async () => {
    expect(await latestRegisteredSchema(ctx.config, ctx.topic('unregistered'))).toBeUndefined();
  });

  it('refuses a latest version that is in no file of avro/, naming what to set', async () => {
    const topic = ctx.topic('foreign');
    await SchemaCodec.fromConfig(ctx.config).register(`${topic}-value`, {
      type: 'record',
      name: 'Foreign',
      fields: [{ name: 'x', type: 'int' }],
    });
    const error = await latestRegisteredSchema(ctx.config, topic).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toBe(
      `the latest schema registered under ${topic}-value is in no file of avro/: name the schema with --schema (ingest.schema)`,
    );
  });

  it('names the file of avro/ holding the latest version registered', async () => {
    const topic = ctx.topic('events');
    const codec = SchemaCodec.fromConfig(ctx.config);
    await codec.register(`${topic}-value`, loadAvroSchema('analytics_event'));
    expect(await latestRegisteredSchema(ctx.config, topic)).toBe('analytics_event');
    await codec.register(`${topic}-value`, loadAvroSchema('analytics_event.v2'));
    expect(await latestRegisteredSchema(ctx.config, topic)).toBe('analytics_event.v2');
  });
});
