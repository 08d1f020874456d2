import type { SluiceConfig } from '../../config';
import { labelProcessMetrics, observabilityRouter, startObservabilityServer, type Logger } from '../../telemetry';
import { StreamMonitor, type MonitoredStream, type StreamMonitorOptions } from './stream-monitor';

export const DEFAULT_HTTP_PORT = 9464;

export interface StreamHttpOptions extends StreamMonitorOptions {
  host: string;
  port: number;
  /** The port was chosen by the operator: failing to bind it is an error, not a fallback to a free port. */
  portExplicit: boolean;
}

export interface ServedStream {
  url: string;
  monitor: StreamMonitor;
  close(): Promise<void>;
}

/**
 * Serves a running stream's metrics, health and status page. With the default
 * port already taken (several processors on one machine), it falls back to a
 * free port and says so; in a pod each processor has the port to itself.
 */
export async function serveStream(
  stream: MonitoredStream,
  config: SluiceConfig,
  options: StreamHttpOptions,
  log: Logger,
): Promise<ServedStream> {
  labelProcessMetrics({ stream: stream.name, group: stream.status().group });
  const monitor = new StreamMonitor(stream, config, options);
  monitor.start();
  const router = observabilityRouter({
    status: async (fresh) => {
      if (fresh) await monitor.refresh();
      return monitor.report();
    },
    readiness: () => monitor.readiness(),
    beforeScrape: () => monitor.exportNow(),
  });
  let server;
  try {
    server = await startObservabilityServer(router, options.host, options.port);
  } catch (err) {
    if (options.portExplicit || options.port === 0) {
      await monitor.close();
      throw err;
    }
    log.warn({ port: options.port }, 'default metrics port in use; serving on a free port instead');
    server = await startObservabilityServer(router, options.host, 0);
  }
  log.info({ url: server.url, stream: stream.name }, 'metrics, health and status page listening');
  return {
    url: server.url,
    monitor,
    async close() {
      await server.close();
      await monitor.close();
    },
  };
}
