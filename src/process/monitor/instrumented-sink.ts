import { SpanKind } from '@opentelemetry/api';
import { withSpan } from '../../telemetry';
import type { RowSink } from '../ports';
import { sinkObservations } from './metrics';

/**
 * Wraps the stream's row sink: every checkpoint batch observes its size,
 * latency and failure per table, inside a ClickHouse insert span (a no-op
 * while tracing is off).
 */
export function instrumentRowSink(sink: RowSink, stream: string): RowSink {
  const metrics = sinkObservations();
  return {
    write(table, rows, positions) {
      return withSpan(
        `INSERT ${table}`,
        {
          kind: SpanKind.CLIENT,
          attributes: {
            'db.system': 'clickhouse',
            'db.operation.name': 'INSERT',
            'db.collection.name': table,
            'db.operation.batch.size': rows.length,
            'sluice.stream': stream,
          },
        },
        async () => {
          metrics.batchRows.observe({ stream, table }, rows.length);
          const end = metrics.insertSeconds.startTimer({ stream, table });
          try {
            const refused = await sink.write(table, rows, positions);
            end();
            return refused;
          } catch (err) {
            metrics.writeFailures.inc({ stream, table });
            throw err;
          }
        },
      );
    },
  };
}
