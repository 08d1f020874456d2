import express, { type Router } from 'express';

/**
 * The operator endpoints of the ingest API: the status page, status.json and
 * metrics, served on their own address (`ingest.adminHost`/`adminPort`,
 * loopback by default) rather than beside the public API. They need no key,
 * show recent error text and the topic's offsets, and cost Kafka and Redis
 * round trips: not for anyone who can reach the API.
 */
export function createAdminApp(router: Router): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.use(router);
  app.use((_req, res) => {
    res
      .status(404)
      .json({ error: 'not_found', message: 'no such endpoint: GET / (status page), GET /status.json, GET /metrics' });
  });
  return app;
}
