import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { produceWorkload } from '../../src/generator';
import type { AnalyticsEvent } from '../../streams/event-counts';
import { createEventProducer } from '../../src/produce';
import { startTracing } from '../../src/telemetry/tracing';
import { createTestContext, type TestContext } from '../helpers/context';
import { spawnSluice, waitFor } from '../helpers/processes';
import { metricValue, observabilityUrl } from '../helpers/telemetry';

interface OtlpSpan {
  name: string;
  traceId: string;
  spanId: string;
  links?: { traceId: string; spanId: string }[];
  kind: number;
  attributes: { key: string; value: { stringValue?: string; intValue?: string | number } }[];
}

/** A processor with OTLP configured exports its ClickHouse insert spans to a collector (here, an in-process OTLP/HTTP receiver). */
describe('processor traces over OTLP', () => {
  let ctx: TestContext;
  let receiver: Server;
  const spans: OtlpSpan[] = [];
  let child: ReturnType<typeof spawnSluice> | undefined;

  beforeAll(async () => {
    ctx = await createTestContext('tracing');
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.url === '/v1/traces') {
          const body = JSON.parse(Buffer.concat(chunks).toString()) as {
            resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[];
          };
          for (const rs of body.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    if (child && child.process.exitCode === null) {
      child.process.kill('SIGKILL');
      await child.exited;
    }
    await new Promise((resolve) => receiver.close(resolve));
    await ctx.cleanup();
  });

  it('exports one INSERT span per checkpoint batch and table, with the batch size', async () => {
    const topic = await ctx.createTopic('events', 2);
    await ctx.createTopic('events.dlq', 1);
    await ctx.createTopic('events.late', 1);
    await produceWorkload({ config: ctx.config, topic, count: 1000, seed: 9 });
    const port = (receiver.address() as AddressInfo).port;
    child = spawnSluice(
      ['run', 'event-counts', '--topic', topic, '--group', ctx.group, '--flush-interval', '300', '--http-port', '0'],
      {
        SLUICE_CLICKHOUSE_DATABASE: ctx.id,
        SLUICE_REDIS_KEY_PREFIX: ctx.config.redis.keyPrefix,
        SLUICE_LOG_LEVEL: 'info',
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      },
    );
    const url = await observabilityUrl(child);
    let text = '';
    await waitFor(
      'rows written',
      async () => {
        text = await (await fetch(`${url}/metrics`)).text();
        const seen = (name: string) => text.includes(`${name}{`);
        if (!seen('sluice_sink_insert_duration_seconds_count')) return false;
        return (
          metricValue(text, 'sluice_records_in_total') === 1000 &&
          metricValue(text, 'sluice_pending_rows') === 0 &&
          metricValue(text, 'sluice_sink_insert_duration_seconds_count', { table: 'events_raw' }) > 0
        );
      },
      30_000,
    );
    child.process.kill('SIGTERM'); // shutdown flushes the span batch
    expect(await child.exited).toBe(0);
    const inserts = spans.filter((s) => s.name === 'INSERT events_raw');
    expect(inserts.length).toBeGreaterThan(0);
    const batchSizes = inserts.map((s) =>
      Number(s.attributes.find((a) => a.key === 'db.operation.batch.size')!.value.intValue),
    );
    // Every raw row went through a traced insert (the sampler keeps all by default).
    expect(batchSizes.reduce((a, b) => a + b, 0)).toBe(
      metricValue(text, 'sluice_sink_batch_rows_sum', { table: 'events_raw' }),
    );
    expect(inserts[0]!.attributes.find((a) => a.key === 'db.system')!.value.stringValue).toBe('clickhouse');
  }, 45_000);

  it('links the processor spans to the producer spans through the W3C trace context in record headers', async () => {
    const topic = await ctx.createTopic('traced', 2);
    await ctx.createTopic('traced.dlq', 1);
    await ctx.createTopic('traced.late', 1);
    const port = (receiver.address() as AddressInfo).port;
    // The producer side traces in this process; its spans are kept in memory.
    const produced = new InMemorySpanExporter();
    const tracing = startTracing({ serviceName: 'test-producer', sampleRatio: 1, immediate: true, exporter: produced });
    const producer = createEventProducer<AnalyticsEvent>({ config: ctx.config, topic, schema: 'analytics_event' });
    const events: AnalyticsEvent[] = Array.from({ length: 20 }, (_, i) => ({
      event_id: randomUUID(),
      event_type: 'view',
      user_id: `u${i}`,
      campaign_id: null,
      ad_id: null,
      event_time: Date.now(),
      amount: null,
      properties: {},
    }));
    let sends: { traceId: string; spanId: string }[];
    try {
      await producer.sendBatch(events);
      sends = produced
        .getFinishedSpans()
        .filter((s) => s.name === `send ${topic}`)
        .map((s) => s.spanContext());
    } finally {
      await producer.close();
      await tracing.shutdown();
    }
    expect(sends).toHaveLength(1);

    child = spawnSluice(
      [
        'run',
        'event-counts',
        '--topic',
        topic,
        '--group',
        `${ctx.group}.traced`,
        '--flush-interval',
        '300',
        '--http-port',
        '0',
      ],
      {
        SLUICE_CLICKHOUSE_DATABASE: ctx.id,
        SLUICE_REDIS_KEY_PREFIX: ctx.config.redis.keyPrefix,
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      },
    );
    const url = await observabilityUrl(child);
    await waitFor(
      'the traced events processed',
      async () => metricValue(await (await fetch(`${url}/metrics`)).text(), 'sluice_records_in_total') === 20,
      30_000,
    );
    child.process.kill('SIGTERM');
    expect(await child.exited).toBe(0);
    const processed = spans.filter((s) => s.name === `process ${topic}`);
    expect(processed.length).toBeGreaterThan(0);
    const links = processed.flatMap((s) => s.links ?? []);
    expect(links).toContainEqual(expect.objectContaining({ traceId: sends[0]!.traceId, spanId: sends[0]!.spanId }));
  }, 45_000);
});
