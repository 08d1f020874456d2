import {
  context,
  propagation,
  trace,
  TraceFlags,
  type Context,
  type Link,
  type Span as ApiSpan,
  type SpanContext,
  type SpanOptions,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import {
  BatchSpanProcessor,
  SamplingDecision,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  type ReadableSpan,
  type Sampler,
  type SamplingResult,
  type Span,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { SpanStatusCode } from '@opentelemetry/api';

export interface TracingOptions {
  serviceName: string;
  /** Share of traces kept (0..1); spans that end with an error are kept regardless. */
  sampleRatio: number;
  /** Defaults to OTLP over HTTP (OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). */
  exporter?: SpanExporter;
  /** Export each span as it ends (tests) instead of in batches. */
  immediate?: boolean;
}

export interface Tracing {
  shutdown(): Promise<void>;
}

/**
 * Tracing is on when an OTLP endpoint is configured (the standard
 * OTEL_EXPORTER_OTLP_*ENDPOINT variables) or SLUICE_TRACING=1; the ratio is
 * OTEL_TRACES_SAMPLER_ARG (default 1).
 */
export function tracingFromEnv(serviceName: string, env: NodeJS.ProcessEnv = process.env): TracingOptions | undefined {
  const on =
    env.SLUICE_TRACING === '1' ||
    Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT) ||
    Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  if (!on) return undefined;
  const ratio = env.OTEL_TRACES_SAMPLER_ARG === undefined ? 1 : Number(env.OTEL_TRACES_SAMPLER_ARG);
  return {
    serviceName: env.OTEL_SERVICE_NAME ?? serviceName,
    sampleRatio: Number.isFinite(ratio) ? Math.min(1, Math.max(0, ratio)) : 1,
  };
}

/**
 * Head sampling that still records the spans it does not sample, so the
 * processor below can keep those that end in an error.
 */
class RecordAlwaysSampler implements Sampler {
  private readonly ratio: TraceIdRatioBasedSampler;
  constructor(ratio: number) {
    this.ratio = new TraceIdRatioBasedSampler(ratio);
  }
  shouldSample(ctx: Context, traceId: string, ...rest: unknown[]): SamplingResult {
    const parent = trace.getSpanContext(ctx);
    // A sampled parent (e.g. from the producer's traceparent) keeps the whole trace.
    if (parent && parent.traceFlags & TraceFlags.SAMPLED) return { decision: SamplingDecision.RECORD_AND_SAMPLED };
    const decision = (this.ratio.shouldSample as (c: Context, t: string, ...r: unknown[]) => SamplingResult)(
      ctx,
      traceId,
      ...rest,
    ).decision;
    return { decision: decision === SamplingDecision.RECORD_AND_SAMPLED ? decision : SamplingDecision.RECORD };
  }
  toString(): string {
    return `RecordAlways{${this.ratio.toString()}}`;
  }
}

/** Exports sampled spans, and unsampled ones that ended with an error (as if sampled). */
class KeepErrorsProcessor implements SpanProcessor {
  constructor(private readonly inner: SpanProcessor) {}
  onStart(span: Span, parent: Context): void {
    this.inner.onStart(span, parent);
  }
  onEnd(span: ReadableSpan): void {
    const context = span.spanContext();
    if (context.traceFlags & TraceFlags.SAMPLED) return this.inner.onEnd(span);
    if (span.status.code !== SpanStatusCode.ERROR) return;
    const sampled: SpanContext = { ...context, traceFlags: context.traceFlags | TraceFlags.SAMPLED };
    this.inner.onEnd(
      new Proxy(span, {
        get: (target, key, receiver) =>
          key === 'spanContext' ? () => sampled : (Reflect.get(target, key, receiver) as unknown),
      }),
    );
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

/** Registers a global tracer provider (and the async context manager, so log lines get trace ids). */
export function startTracing(options: TracingOptions): Tracing {
  const exporter = options.exporter ?? new OTLPTraceExporter();
  const inner = options.immediate ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter);
  const provider = new NodeTracerProvider({
    sampler: new RecordAlwaysSampler(options.sampleRatio),
    spanProcessors: [new KeepErrorsProcessor(inner)],
  });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  return {
    async shutdown() {
      await provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}

export const tracer = () => trace.getTracer('sluice');

/** The W3C trace context (traceparent, tracestate) of the active span, as Kafka record headers. */
export function traceHeaders(ctx: Context = context.active()): Record<string, string> {
  const headers: Record<string, string> = {};
  new W3CTraceContextPropagator().inject(ctx, headers, { set: (carrier, key, value) => (carrier[key] = value) });
  return headers;
}

type HeaderValue = Buffer | string | (Buffer | string)[] | undefined;

/** Links to the producer spans named in records' traceparent headers (a batch span links to each record's trace). */
export function producerLinks(records: { headers?: Record<string, HeaderValue> }[], limit = 128): Link[] {
  const propagator = new W3CTraceContextPropagator();
  const links: Link[] = [];
  const seen = new Set<string>();
  for (const record of records) {
    if (links.length >= limit) break;
    const extracted = propagator.extract(context.active(), record.headers ?? {}, {
      get: (carrier, key) => {
        const value = carrier[key];
        const first = Array.isArray(value) ? value[0] : value;
        return first === undefined ? undefined : first.toString();
      },
      keys: (carrier) => Object.keys(carrier),
    });
    const spanContext = trace.getSpanContext(extracted);
    if (!spanContext || seen.has(spanContext.spanId)) continue;
    seen.add(spanContext.spanId);
    links.push({ context: spanContext });
  }
  return links;
}

/** Marks a span failed with the error (and so always exported). */
export function failSpan(span: ApiSpan, err: unknown): void {
  span.recordException(err instanceof Error ? err : new Error(String(err)));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

/**
 * Runs `work` inside a span that is active while it runs (so log lines and records produced meanwhile
 * carry its trace) and ends when it settles; a failure marks the span failed and is rethrown.
 * A no-op span while tracing is off.
 */
export function withSpan<R>(name: string, options: SpanOptions, work: (span: ApiSpan) => Promise<R>): Promise<R> {
  return tracer().startActiveSpan(name, options, async (span) => {
    try {
      return await work(span);
    } catch (err) {
      failSpan(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}
