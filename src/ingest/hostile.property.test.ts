import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import pino from 'pino';
import {
  VALID_V1_EVENT,
  anyString,
  deeplyNestedText,
  expectPrototypeUntouched,
  hostileEventWith,
  hostileValue,
} from '../../test/helpers/hostile';
import { loadConfig } from '../config';
import { createEventProducer, type EventProducer, type SentEvent } from '../produce';
import eventCounts from '../../streams/event-counts';
import { createIngestApp } from './app';
import { hashApiKey } from './auth';
import { streamRules } from '../produce/stream-rules';

/**
 * Generated hostile request bodies through the whole JSON path of the ingest
 * API (content type, body parser, validation) with the real validator, the
 * reference stream's rules and a recording producer: every answer is a 202
 * or a 4xx with a code and a message, never a 500 or a hang; what is
 * accepted is exactly what was sent and passes both; Object.prototype stays
 * untouched.
 */

const KEY = 'hostile-property-key';
const MAX_BODY = 64 * 1024;

describe('ingest API on hostile bodies (property)', () => {
  let server: Server;
  let url: string;
  const produced: Record<string, unknown>[][] = [];
  const schemaValidator = createEventProducer<Record<string, unknown>>({
    config: loadConfig({}),
    topic: 'unused',
    schema: 'analytics_event',
  });
  const rules = streamRules('analytics_event', [eventCounts]);

  beforeAll(async () => {
    // Only validate() of the real producer runs; sending is recorded instead (no Kafka in a unit spec).
    const producer: EventProducer<Record<string, unknown>> = {
      ...schemaValidator,
      validate: (event) => schemaValidator.validate(event),
      async sendBatch(events): Promise<SentEvent[]> {
        produced.push([...events]);
        return events.map((e, i) => ({ key: String(e.event_id), partition: 0, offset: String(i) }));
      },
    };
    const app = createIngestApp({
      settings: { ...loadConfig({}).ingest, maxBodyBytes: MAX_BODY, maxEventsPerRequest: 20 },
      producer,
      apiKeyHashes: new Set([hashApiKey(KEY)]),
      rateLimiter: { limit: 0, windowMs: 1000, take: async () => ({ allowed: true, retryAfterMs: 0 }) },
      ready: async () => undefined,
      logger: pino({ level: 'silent' }),
      idField: 'event_id',
      streamRules: rules,
    });
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/events`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await schemaValidator.close();
  });

  async function post(
    body: Buffer,
    contentType: string | undefined,
  ): Promise<{ status: number; json: Record<string, unknown> }> {
    const headers: Record<string, string> = { authorization: `Bearer ${KEY}` };
    if (contentType !== undefined) headers['content-type'] = contentType;
    const res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(5000) });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  /** Bytes spoiled in one place: invalid UTF-8, a cut, a stray byte. */
  const spoil = fc.oneof(
    fc.constant((b: Buffer) => b),
    fc.nat().map((at) => (b: Buffer) => b.subarray(0, at % (b.length + 1))),
    fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 4 })).map(([at, bytes]) => (b: Buffer) => {
      const i = at % (b.length + 1);
      return Buffer.concat([b.subarray(0, i), bytes, b.subarray(i)]);
    }),
    fc
      .constantFrom(Buffer.from([0xff]), Buffer.from([0xc3, 0x28]), Buffer.from([0xed, 0xa0, 0x80]))
      .map((bad) => (b: Buffer) => {
        // Malformed UTF-8 inside a string of an otherwise valid body.
        const text = b.toString();
        const at = text.indexOf('u-1');
        return at < 0
          ? Buffer.concat([b, bad])
          : Buffer.concat([Buffer.from(text.slice(0, at)), bad, Buffer.from(text.slice(at))]);
      }),
  );

  const event = hostileEventWith(hostileValue);
  const body = fc.oneof(
    {
      weight: 4,
      arbitrary: fc.oneof(event, fc.array(event, { maxLength: 3 })).map((v) => Buffer.from(JSON.stringify(v))),
    },
    { weight: 1, arbitrary: deeplyNestedText.map((t) => Buffer.from(t)) },
    // Built as text: JSON.stringify itself cannot write what JSON.parse reads this deep.
    {
      weight: 1,
      arbitrary: deeplyNestedText.map((t) =>
        Buffer.from(
          `${JSON.stringify({ ...VALID_V1_EVENT, properties: undefined }).slice(0, -1)},"properties":{"a":${t}}}`,
        ),
      ),
    },
    { weight: 1, arbitrary: anyString.map((s) => Buffer.from(s)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) },
  );
  const contentType = fc.oneof(
    { weight: 6, arbitrary: fc.constant('application/json') },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        undefined,
        'text/plain',
        'application/json; charset=latin1',
        'application/json; charset=utf-16',
        'application/x-www-form-urlencoded',
        'application/avro',
        'application/json; charset=utf-8',
      ),
    },
  );

  it('answers 202 or a 4xx with a code and a message; accepts only valid events, exactly as sent', async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(body, spoil, contentType, async (raw, damage, type) => {
        const sent = damage(raw);
        produced.length = 0;
        const { status, json } = await post(sent, type);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status === 202) {
          expect(produced).toHaveLength(1);
          const parsed = JSON.parse(sent.toString('utf8')) as unknown;
          const events = Array.isArray(parsed) ? parsed : [parsed];
          expect(produced[0]).toEqual(events);
          for (const e of produced[0]!) {
            expect(schemaValidator.validate(e)).toEqual([]);
            expect(rules.check(e)).toEqual([]);
          }
        } else {
          expect([400, 413, 415]).toContain(status);
          expect(typeof json.error).toBe('string');
          expect(typeof json.message).toBe('string');
          expect(produced).toHaveLength(0);
        }
        expectPrototypeUntouched();
      }),
      { numRuns: 600 },
    );
    // The generators reach both sides: accepted bodies and refused ones.
    expect(statuses.get(202) ?? 0).toBeGreaterThan(0);
    expect(statuses.get(400) ?? 0).toBeGreaterThan(0);
  });

  it('refuses malformed UTF-8 whole, even inside a string (no silent U+FFFD)', async () => {
    const good = Buffer.from(JSON.stringify(VALID_V1_EVENT));
    const at = good.indexOf('u-1');
    const bad = Buffer.concat([good.subarray(0, at), Buffer.from([0xff]), good.subarray(at)]);
    produced.length = 0;
    const { status, json } = await post(bad, 'application/json');
    expect(status).toBe(400);
    expect(json.error).toBe('malformed_utf8');
    expect(produced).toHaveLength(0);
    expect((await post(good, 'application/json')).status).toBe(202);
  });
});
