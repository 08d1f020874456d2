import { Writable } from 'node:stream';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { context, SpanKind, trace } from '@opentelemetry/api';
import { createLogger } from './logger';
import { producerLinks, startTracing, traceHeaders, tracer, tracingFromEnv, type Tracing } from './tracing';

describe('tracing', () => {
  let exporter: InMemorySpanExporter;
  let tracing: Tracing | undefined;
  afterEach(async () => {
    await tracing?.shutdown();
    tracing = undefined;
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
    const log = createLogger(
      'info',
      {},
      new Writable({ write: (c: Buffer, _e, done) => (chunks.push(c.toString()), done()) }),
    );
    log.info('outside');
    const ids = tracer().startActiveSpan('work', (span) => {
      log.info('inside');
      span.end();
      return span.spanContext();
    });
    const [outside, inside] = chunks
      .join('')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(outside).not.toHaveProperty('trace_id');
    expect(inside).toMatchObject({ trace_id: ids.traceId, span_id: ids.spanId });
  });

  it('is configured from the standard OTLP variables', () => {
    expect(tracingFromEnv('sluice', {})).toBeUndefined();
    expect(
      tracingFromEnv('sluice', {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
        OTEL_TRACES_SAMPLER_ARG: '0.1',
      }),
    ).toEqual({ serviceName: 'sluice', sampleRatio: 0.1 });
  });
});
