import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Router } from 'express';
import { register, type Registry } from 'prom-client';
import { ConfigError } from '../errors';
import { STATUS_PAGE_HTML } from './status-page';

/** One line of a readiness answer and of the status page's checks table. */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface ObservabilityRoutes {
  /** Body of `/status.json`; `fresh` asks the source to poll first. */
  status(fresh: boolean): Promise<unknown> | unknown;
  /** `/readyz`; when absent the router serves no health endpoints (the host app has its own). */
  readiness?(): { ready: boolean; checks: Check[] };
  registry?: Registry;
  /** Brings values read from the runtime up to date right before a scrape. */
  beforeScrape?(): void;
}

/**
 * `/` (the status page), `/status.json`, `/metrics` and, for processors,
 * `/healthz` and `/readyz`. A router, so the ingest API mounts the same
 * endpoints on its own server.
 */
export function observabilityRouter(routes: ObservabilityRoutes): Router {
  const registry = routes.registry ?? register;
  const router = express.Router();
  router.get('/', (_req, res) => {
    res.type('html').set('Cache-Control', 'no-store').send(STATUS_PAGE_HTML);
  });
  router.get('/status.json', async (req, res) => {
    res.set('Cache-Control', 'no-store').json(await routes.status(req.query.fresh === '1'));
  });
  router.get('/metrics', async (_req, res) => {
    routes.beforeScrape?.();
    res.type(registry.contentType).send(await registry.metrics());
  });
  const readiness = routes.readiness;
  if (readiness) {
    router.get('/healthz', (_req, res) => {
      res.json({ status: 'alive' });
    });
    router.get('/readyz', (_req, res) => {
      const { ready, checks } = readiness();
      res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', checks });
    });
  }
  return router;
}

export interface RunningHttpServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Serves the router on host:port (port 0 picks a free one). */
export async function startObservabilityServer(router: Router, host: string, port: number): Promise<RunningHttpServer> {
  const app = express();
  app.disable('x-powered-by');
  app.use(router);
  app.use((_req, res) => {
    res
      .status(404)
      .json({ error: 'not_found', message: 'no such endpoint: GET /, /status.json, /metrics, /healthz, /readyz' });
  });
  const server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    // An 'error' listener of our own: a port in use must reject here, not crash the process.
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((err: Error) => {
    throw new ConfigError(
      `cannot serve metrics and health on ${host}:${port} (${err.message}): choose another --http-port (0 picks a free one)`,
    );
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${actual}`,
    port: actual,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
