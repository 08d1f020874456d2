import { Writable } from 'node:stream';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { context, SpanKind, trace } from '@opentelemetry/api';
import { createLogger } from './logger';
import { instrumentRowSink } from './sink';
import { producerLinks, startTracing, traceHeaders, tracer, tracingFromEnv, type Tracing } from './tracing';

const failingSink = { write: () => Promise.reject(new Error('ClickHouse unreachable')) };
const okSink = { write: () => Promise.resolve([]) };
const position = [{ topic: 't', partition: 0, fromOffset: '0', toOffset: '1' }];

describe('tracing', () => {
  let exporter: InMemorySpanExporter;
  let tracing: Tracing | undefined;
  afterEach(async () => {
    await tracing?.shutdown();
    tracing = undefined;
  });

  it('keeps every span that ends with an error, even when the sampling ratio keeps none', async () => {
    exporter = new InMemorySpanExporter();
    tracing = startTracing({ serviceName: 'test', sampleRatio: 0, exporter, immediate: true });
    const sink = instrumentRowSink(okSink, 's');
    for (let i = 0; i < 20; i++) await sink.write('events_raw', [{ a: i }], position);
    await expect(instrumentRowSink(failingSink, 's').write('events_raw', [{ a: 1 }], position)).rejects.toThrow('unreachable');
    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(1);
    expect(spans[0]).toMatchObject({ name: 'INSERT events_raw', kind: SpanKind.CLIENT, status: { code: 2, message: 'ClickHouse unreachable' } });
    expect(spans[0]!.attributes).toMatchObject({ 'db.system': 'clickhouse', 'db.operation.batch.size': 1 });
  });

  it('samples by ratio otherwise', async () => {
    exporter = new InMemorySpanExporter();
    tracing = startTracing({ serviceName: 'test', sampleRatio: 1, exporter, immediate: true });
    const sink = instrumentRowSink(okSink, 's');
    for (let i = 0; i < 5; i++) await sink.write('events_raw', [{ a: i }], position);
    expect(exporter.getFinishedSpans()).toHaveLength(5);
  });

  it('carries the producer span through record headers: the consumer batch span links to it and is in no trace of its own choosing', async () => {
    exporter = new InMemorySpanExporter();
    tracing = startTracing({ serviceName: 'test', sampleRatio: 1, exporter, immediate: true });
    const producerSpans = ['a', 'b'].map((name) => tracer().startSpan(`send ${name}`, { kind: SpanKind.PRODUCER }));
    const records = producerSpans.map((span) => {
      const headers = traceHeaders(trace.setSpan(context.active(), span));
      span.end();
      const withOther: Record<string, string | Buffer> = { ...headers, other: Buffer.from('x') };
      return { headers: withOther };
    });
    expect(records[0]!.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const links = producerLinks([...records, { headers: {} }, records[0]!]);
    const batch = tracer().startSpan('process batch', { kind: SpanKind.CONSUMER, links });
    batch.end();
    const exported = exporter.getFinishedSpans().find((s) => s.name === 'process batch')!;
    expect(exported.links.map((l) => l.context.spanId)).toEqual(producerSpans.map((s) => s.spanContext().spanId));
    expect(exported.links.map((l) => l.context.traceId)).toEqual(producerSpans.map((s) => s.spanContext().traceId));
  });

  it('puts the trace and span ids on log lines written inside a span', async () => {
    exporter = new InMemorySpanExporter();
    tracing = startTracing({ serviceName: 'test', sampleRatio: 1, exporter, immediate: true });
    const chunks: string[] = [];
    const log = createLogger('info', {}, new Writable({ write: (c: Buffer, _e, done) => (chunks.push(c.toString()), done()) }));
    log.info('outside');
    const ids = tracer().startActiveSpan('work', (span) => {
      log.info('inside');
      span.end();
      return span.spanContext();
    });
    const [outside, inside] = chunks.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(outside).not.toHaveProperty('trace_id');
    expect(inside).toMatchObject({ trace_id: ids.traceId, span_id: ids.spanId });
  });

  it('is configured from the standard OTLP variables', () => {
    expect(tracingFromEnv('sluice', {})).toBeUndefined();
    expect(tracingFromEnv('sluice', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_SAMPLER_ARG: '0.1' })).toEqual({ serviceName: 'sluice', sampleRatio: 0.1 });
  });
});
