import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { KafkaAdmin } from '../kafka';
import { ingestObservability } from './monitor';

/**
 * The status of the ingest API costs a Redis ping and Kafka admin calls:
 * however often it is asked for, it is worked out at most once per TTL.
 * Kafka and Redis are counted stand-ins here: what is tested is how often
 * they are asked, not what they answer.
 */
describe('ingest status', () => {
  const calls = { ready: 0, offsets: 0, deadLetters: 0 };
  const admin = {
    async fetchTopicOffsets() {
      calls.offsets += 1;
      return [{ partition: 0, offset: '0', high: '7', low: '0' }];
    },
  } as unknown as KafkaAdmin;
  let server: Server;
  let url: string;

  beforeAll(async () => {
    const observability = ingestObservability({
      topic: 'events',
      admin,
      deadLetters: async () => {
        calls.deadLetters += 1;
        return 2;
      },
      ready: async () => {
        calls.ready += 1;
      },
      // Longer than the test: how the TTL runs out is cachedFor's own spec.
      statusTtlMs: 60_000,
    });
    const app = express();
    app.use(observability.router);
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/status.json`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  it('is worked out once for any number of requests within its TTL, at once or one after another', async () => {
    const first = await Promise.all(Array.from({ length: 20 }, async () => (await fetch(url)).json()));
    for (let i = 0; i < 20; i++) await (await fetch(url)).json();
    expect(calls).toEqual({ ready: 1, offsets: 1, deadLetters: 1 });
    expect(first[0]).toMatchObject({
      kind: 'ingest',
      ready: true,
      partitions: [{ partition: 0, endOffset: '7' }],
      sideTopics: { 'events.dlq': 2 },
    });
  });
});
