import { ConfigError } from '../../src/errors';
import { latestRegisteredSchema } from '../../src/ingest/schema-choice';
import { SchemaCodec, loadAvroSchema } from '../../src/schema';
import { createTestContext, type TestContext } from '../helpers/context';

/**
 * `sluice serve` without a schema validates against the latest version
 * registered for its topic, so the HTTP API takes the fields (v2's
 * `channel`) that SDK producers of the latest schema send; with none
 * registered it refuses to start, naming what to set.
 */
describe('the ingest schema by default: the latest registered for the topic', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext('ingest_schema');
  });
  afterAll(async () => {
    await ctx?.cleanup();
  });

  it('refuses to choose when nothing is registered under <topic>-value', async () => {
    const topic = ctx.topic('unregistered');
    const error = await latestRegisteredSchema(ctx.config, topic).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toBe(
      `no schema is registered under ${topic}-value: register one (\`sluice schemas register\`, or produce with the SDK), or name the schema with --schema (ingest.schema)`,
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
