import type { RowSink } from '../process/ports';
import { sinkObservations } from './metrics';

/** Wraps the stream's row sink so every checkpoint batch observes its size, latency and failure per table. */
export function instrumentRowSink(sink: RowSink, stream: string): RowSink {
  const metrics = sinkObservations();
  return {
    async write(table, rows, positions) {
      metrics.batchRows.observe({ stream, table }, rows.length);
      const end = metrics.insertSeconds.startTimer({ stream, table });
      try {
        await sink.write(table, rows, positions);
        end();
      } catch (err) {
        metrics.writeFailures.inc({ stream, table });
        throw err;
      }
    },
  };
}
