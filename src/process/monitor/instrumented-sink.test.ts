import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { SpanKind } from '@opentelemetry/api';
import { startTracing, type Tracing } from '../../telemetry';
import { instrumentRowSink } from './instrumented-sink';

const failingSink = { write: () => Promise.reject(new Error('ClickHouse unreachable')) };
const okSink = { write: () => Promise.resolve([]) };
const position = [{ topic: 't', partition: 0, fromOffset: '0', toOffset: '1' }];

describe('instrumented row sink: the ClickHouse insert span', () => {
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
    for (let i = 0; i < 20; i++) await sink.write('page_views', [{ a: i }], position);
    await expect(instrumentRowSink(failingSink, 's').write('page_views', [{ a: 1 }], position)).rejects.toThrow(
      'unreachable',
    );
    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(1);
    expect(spans[0]).toMatchObject({
      name: 'INSERT page_views',
      kind: SpanKind.CLIENT,
      status: { code: 2, message: 'ClickHouse unreachable' },
    });
    expect(spans[0]!.attributes).toMatchObject({ 'db.system': 'clickhouse', 'db.operation.batch.size': 1 });
  });

  it('samples by ratio otherwise', async () => {
    exporter = new InMemorySpanExporter();
    tracing = startTracing({ serviceName: 'test', sampleRatio: 1, exporter, immediate: true });
    const sink = instrumentRowSink(okSink, 's');
    for (let i = 0; i < 5; i++) await sink.write('page_views', [{ a: i }], position);
    expect(exporter.getFinishedSpans()).toHaveLength(5);
  });
});
