import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { loadConfig } from '../config';
import { createEventProducer, streamRules, type EventProducer, type SentEvent } from '../produce';
import eventCounts from '../../streams/event-counts';
import { createIngestApp } from './app';
import { hashApiKey } from './auth';

const KEY = 'openapi-key';

interface RouteLayer {
  route?: { path: string; methods: Record<string, boolean> };
}

/** GET /openapi.json describes every route the app serves, and its example requests are accepted (202). */
describe('the OpenAPI description of the ingest API', () => {
  let server: Server;
  let base: string;
  let app: ReturnType<typeof createIngestApp>;
  const schemaValidator = createEventProducer<Record<string, unknown>>({
    config: loadConfig({}),
    topic: 'unused',
    schema: 'analytics_event',
  });

  beforeAll(async () => {
    // The real validator and the reference stream's rules; sending is recorded (no Kafka in a unit spec).
    const producer: EventProducer<Record<string, unknown>> = {
      ...schemaValidator,
      validate: (event) => schemaValidator.validate(event),
      sendBatch: async (events): Promise<SentEvent[]> =>
        events.map((e, i) => ({ key: String(e.event_id), partition: 0, offset: String(i) })),
    };
    app = createIngestApp({
      settings: { ...loadConfig({}).ingest, schema: 'analytics_event' },
      producer,
      apiKeyHashes: new Set([hashApiKey(KEY)]),
      rateLimiter: { limit: 0, windowMs: 1000, take: async () => ({ allowed: true, retryAfterMs: 0 }) },
      ready: async () => undefined,
      logger: pino({ level: 'silent' }),
      idField: 'event_id',
      streamRules: streamRules('analytics_event', [eventCounts]),
    });
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await schemaValidator.close();
  });

  const describedDocument = async () =>
    (await (await fetch(`${base}/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, { examples: object }> } }>>;
      components: { schemas: { Event: { properties: object; required: string[] } } };
    };

  it('describes exactly the routes the app serves, method by method', async () => {
    const doc = await describedDocument();
    expect(doc.openapi).toBe('3.1.0');
    const served = (app.router as unknown as { stack: RouteLayer[] }).stack
      .filter((layer) => layer.route)
      .flatMap((layer) => Object.keys(layer.route!.methods).map((m) => `${m.toUpperCase()} ${layer.route!.path}`))
      .sort();
    const described = Object.entries(doc.paths)
      .flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    expect(described).toEqual(served);
  });

  it('describes the event with the fields of the schema in use', async () => {
    const { Event } = (await describedDocument()).components.schemas;
    expect(Object.keys(Event.properties)).toEqual([
      'event_id',
      'event_type',
      'user_id',
      'campaign_id',
      'ad_id',
      'event_time',
      'amount',
      'properties',
    ]);
    expect(Event.required).toEqual(['event_id', 'event_type', 'user_id', 'event_time']);
  });

  it('gives example requests the API accepts', async () => {
    const examples = (await describedDocument()).paths['/v1/events']!.post!.requestBody!.content['application/json']!
      .examples as Record<string, { value: unknown }>;
    expect(Object.keys(examples).length).toBeGreaterThan(0);
    for (const [name, { value }] of Object.entries(examples)) {
      const res = await fetch(`${base}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(value),
      });
      expect([name, res.status]).toEqual([name, 202]);
    }
  });
});
