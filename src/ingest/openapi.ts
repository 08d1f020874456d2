import { loadAvroSchema } from '../schema';

type JsonSchema = Record<string, unknown>;

interface AvroField {
  name: string;
  type: unknown;
  doc?: string;
  default?: unknown;
}

/** The JSON form of an Avro type, as the API takes it (JSON numbers and strings; unions as plain values). */
function jsonSchemaOf(type: unknown): JsonSchema {
  if (Array.isArray(type)) return { anyOf: type.map(jsonSchemaOf) };
  if (typeof type === 'object' && type !== null) {
    const t = type as { type: string; values?: unknown; items?: unknown; logicalType?: string; symbols?: string[] };
    if (t.type === 'map') return { type: 'object', additionalProperties: jsonSchemaOf(t.values) };
    if (t.type === 'array') return { type: 'array', items: jsonSchemaOf(t.items) };
    if (t.type === 'enum') return { type: 'string', enum: t.symbols };
    if (t.logicalType === 'uuid') return { type: 'string', format: 'uuid' };
    if (t.logicalType === 'timestamp-millis') return { type: 'integer', description: 'epoch milliseconds, UTC' };
    return jsonSchemaOf(t.type);
  }
  switch (type) {
    case 'null':
      return { type: 'null' };
    case 'boolean':
      return { type: 'boolean' };
    case 'int':
    case 'long':
      return { type: 'integer' };
    case 'float':
    case 'double':
      return { type: 'number' };
    default:
      return { type: 'string' };
  }
}

function eventSchema(schemaFile: string): JsonSchema {
  const avro = loadAvroSchema(schemaFile) as { doc?: string; fields: AvroField[] };
  return {
    type: 'object',
    description: `${avro.doc ?? 'An event'} (Avro schema ${schemaFile}; fields the schema does not name are refused)`,
    required: avro.fields.filter((f) => !('default' in f)).map((f) => f.name),
    additionalProperties: false,
    properties: Object.fromEntries(
      avro.fields.map((f) => [
        f.name,
        {
          ...jsonSchemaOf(f.type),
          ...(f.doc && { description: f.doc }),
          ...('default' in f && { default: f.default }),
        },
      ]),
    ),
  };
}

const ERROR = {
  type: 'object',
  required: ['error', 'message'],
  properties: {
    error: { type: 'string', description: 'stable code' },
    message: { type: 'string' },
    issues: {
      type: 'array',
      items: { type: 'object', properties: { path: { type: 'string' }, reason: { type: 'string' } } },
    },
  },
};
const errorAnswer = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});
const RATE_HEADERS = {
  'RateLimit-Limit': { schema: { type: 'integer' }, description: 'events per second for this API key' },
  'RateLimit-Remaining': { schema: { type: 'integer' }, description: 'events left in the current second' },
  'RateLimit-Reset': { schema: { type: 'integer' }, description: 'seconds until the budget is renewed' },
};

export interface OpenApiSettings {
  schema: string;
  maxEventsPerRequest: number;
  maxBodyBytes: number;
  rateLimitPerSecond: number;
}

/** A valid event of the example: the API's own specs post it and expect a 202. */
export const EXAMPLE_EVENT = {
  event_id: '3f8d5c1e-2b4a-4c6d-8e0f-1a2b3c4d5e6f',
  event_type: 'purchase',
  user_id: 'user-42',
  campaign_id: 'spring-sale',
  ad_id: null,
  event_time: Date.UTC(2026, 0, 1, 12),
  amount: 19.99,
  properties: { page: '/checkout' },
};

/**
 * The OpenAPI 3.1 description of the public API (GET /openapi.json), built
 * from the running settings, so its limits and event schema are the ones
 * enforced.
 */
export function openApiDocument(settings: OpenApiSettings): Record<string, unknown> {
  const ok = (description: string) => ({
    description,
    content: { 'application/json': { schema: { type: 'object', properties: { status: { type: 'string' } } } } },
  });
  return {
    openapi: '3.1.0',
    info: {
      title: 'Sluice ingestion API',
      version: '1',
      description:
        'Events are checked against the Avro schema and the rules of the streams reading the topic, then produced to Kafka; 202 means every event of the request is in Kafka and will be counted.',
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer' },
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
      },
      schemas: { Event: eventSchema(settings.schema), Error: ERROR },
    },
    paths: {
      '/v1/events': {
        post: {
          summary: 'Send one event, an array of events, or {"events": [...]}',
          security: [{ bearer: [] }, { apiKey: [] }],
          parameters: [
            {
              name: 'Idempotency-Key',
              in: 'header',
              required: false,
              schema: { type: 'string', minLength: 1, maxLength: 255 },
              description: 'a repeat within 24 h gets the first 202 again and produces nothing',
            },
          ],
          requestBody: {
            required: true,
            description: `at most ${settings.maxEventsPerRequest} events and ${settings.maxBodyBytes} bytes${settings.rateLimitPerSecond > 0 ? `, and no more events than the rate limit (${settings.rateLimitPerSecond} per second)` : ''}`,
            content: {
              'application/json': {
                schema: {
                  oneOf: [
                    { $ref: '#/components/schemas/Event' },
                    { type: 'array', items: { $ref: '#/components/schemas/Event' } },
                    {
                      type: 'object',
                      required: ['events'],
                      properties: { events: { type: 'array', items: { $ref: '#/components/schemas/Event' } } },
                    },
                  ],
                },
                examples: {
                  one: { value: EXAMPLE_EVENT },
                  batch: { value: { events: [EXAMPLE_EVENT] } },
                },
              },
            },
          },
          responses: {
            '202': {
              description: 'every event is in Kafka',
              headers: RATE_HEADERS,
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    properties: {
                      accepted: { type: 'integer' },
                      event_ids: { type: 'array', items: { type: 'string' } },
                      records: {
                        type: 'array',
                        items: {
                          type: 'object',
                          properties: {
                            event_id: { type: 'string' },
                            partition: { type: 'integer' },
                            offset: { type: 'string' },
                          },
                        },
                      },
                    },
                  },
                },
              },
            },
            '400': errorAnswer('malformed JSON or invalid events (every issue listed); nothing was accepted'),
            '401': errorAnswer('no or unknown API key'),
            '409': errorAnswer('an event id accepted before, or an Idempotency-Key being answered now'),
            '413': errorAnswer('body, event count or batch above the rate limit too large: split the batch'),
            '415': errorAnswer('not application/json'),
            '422': errorAnswer('an Idempotency-Key reused with another body'),
            '429': { ...errorAnswer('over the rate limit: retry after Retry-After seconds'), headers: RATE_HEADERS },
            '503': errorAnswer('Kafka or Redis unavailable: retry'),
          },
        },
      },
      '/healthz': { get: { summary: 'alive', responses: { '200': ok('alive') } } },
      '/readyz': {
        get: { summary: 'ready to accept', responses: { '200': ok('ready'), '503': errorAnswer('not ready') } },
      },
      '/openapi.json': {
        get: {
          summary: 'this description',
          responses: { '200': { description: 'OpenAPI 3.1', content: { 'application/json': {} } } },
        },
      },
    },
  };
}
