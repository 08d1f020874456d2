import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { SluiceConfig } from '../../config';
import { ServiceError } from '../../errors';
import type { Logger } from '../../telemetry';
import { REGISTRY_CONTENT_TYPE } from '../client';
import { RegistryHttpError } from './errors';
import { DEFAULT_SCHEMAS_TOPIC, SchemaLog, type LogRecord } from './log';
import { RegistryService, type RegistryLog } from './service';
import { RegistryState } from './store';

const flag = (value: unknown) => value === 'true';

function send(res: Response, body: unknown, status = 200): void {
  res.status(status).set('Content-Type', REGISTRY_CONTENT_TYPE).send(JSON.stringify(body));
}

function schemaId(raw: string): number {
  if (!/^\d{1,10}$/.test(raw)) throw new RegistryHttpError(404, 40403, `Schema ${raw} not found`);
  return Number(raw);
}

/** The Confluent REST API over a RegistryService: routes, content type and error shape, nothing else. */
export function registryApp(service: RegistryService, logger?: Logger): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // Confluent clients send application/vnd.schemaregistry.v1+json, .. +json,
  // application/json, or nothing at all: every body is JSON here.
  app.use(express.json({ type: () => true, limit: '8mb' }));

  app.get('/', (_req, res) => send(res, {}));
  app.get('/schemas/types', (_req, res) => send(res, ['AVRO']));

  app.get('/subjects', (req, res) => send(res, service.subjects(flag(req.query.deleted))));
  app.get('/subjects/:subject/versions', async (req, res) =>
    send(res, await service.versions(req.params.subject, flag(req.query.deleted))),
  );
  app.get('/subjects/:subject/versions/:version', async (req, res) =>
    send(res, await service.version(req.params.subject, req.params.version, flag(req.query.deleted))),
  );
  app.get('/subjects/:subject/versions/:version/schema', async (req, res) => {
    const view = await service.version(req.params.subject, req.params.version, flag(req.query.deleted));
    res.status(200).set('Content-Type', REGISTRY_CONTENT_TYPE).send(view.schema);
  });
  app.post('/subjects/:subject/versions', async (req, res) =>
    send(res, await service.register(req.params.subject, req.body ?? {})),
  );
  app.post('/subjects/:subject', async (req, res) =>
    send(res, await service.lookup(req.params.subject, req.body ?? {}, flag(req.query.deleted))),
  );
  app.delete('/subjects/:subject', async (req, res) =>
    send(res, await service.deleteSubject(req.params.subject, flag(req.query.permanent))),
  );
  app.delete('/subjects/:subject/versions/:version', async (req, res) =>
    send(res, await service.deleteVersion(req.params.subject, req.params.version, flag(req.query.permanent))),
  );

  app.get('/schemas/ids/:id', async (req, res) => send(res, await service.schemaById(schemaId(req.params.id))));
  app.get('/schemas/ids/:id/schema', async (req, res) => {
    const { schema } = await service.schemaById(schemaId(req.params.id));
    res.status(200).set('Content-Type', REGISTRY_CONTENT_TYPE).send(schema);
  });
  app.get('/schemas/ids/:id/versions', async (req, res) =>
    send(res, await service.subjectsOfId(schemaId(req.params.id))),
  );

  app.get('/config', async (_req, res) => send(res, await service.config(undefined, true)));
  app.put('/config', async (req, res) => send(res, await service.setConfig(undefined, req.body)));
  app.get('/config/:subject', async (req, res) =>
    send(res, await service.config(req.params.subject, flag(req.query.defaultToGlobal))),
  );
  app.put('/config/:subject', async (req, res) => send(res, await service.setConfig(req.params.subject, req.body)));
  app.delete('/config/:subject', async (req, res) => send(res, await service.deleteConfig(req.params.subject)));

  const compatibility = async (req: Request, res: Response) => {
    const version = typeof req.params.version === 'string' ? req.params.version : undefined;
    const result = await service.testCompatibility(req.params.subject as string, version, req.body ?? {});
    send(res, flag(req.query.verbose) ? result : { is_compatible: result.is_compatible });
  };
  app.post('/compatibility/subjects/:subject/versions/:version', compatibility);
  app.post('/compatibility/subjects/:subject/versions', compatibility);

  app.use((_req, res) => send(res, { error_code: 404, message: 'HTTP 404 Not Found' }, 404));
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof RegistryHttpError)
      return send(res, { error_code: err.errorCode, message: err.message }, err.status);
    const status = (err as { status?: number; type?: string }).status;
    if (status === 400 || (err as { type?: string }).type === 'entity.parse.failed') {
      return send(res, { error_code: 400, message: `Malformed request body: ${(err as Error).message}` }, 400);
    }
    if (err instanceof ServiceError) return send(res, { error_code: 50002, message: err.message }, 500);
    logger?.error({ err }, 'registry request failed');
    return send(res, { error_code: 50001, message: `Error in the backend data store: ${(err as Error).message}` }, 500);
  });
  return app;
}

export interface RegistryOptions {
  /** TCP port; 0 picks a free one. */
  port: number;
  host?: string;
  /** The compacted topic holding the registry's state. */
  topic?: string;
  logger?: Logger;
}

export interface RunningRegistry {
  url: string;
  port: number;
  topic: string;
  state: RegistryState;
  close(): Promise<void>;
}

/**
 * A log kept in this process only: the registry's in-memory twin, for unit
 * specs and tools that need a real registry API but no Kafka. Records are
 * applied in append order, exactly as the Kafka log would deliver them.
 */
export class MemoryRegistryLog implements RegistryLog {
  constructor(private readonly state: RegistryState) {}
  async append(records: LogRecord[]): Promise<void> {
    for (const r of records) this.state.apply(Buffer.from(r.key), r.value === null ? null : Buffer.from(r.value));
  }
  async syncToEnd(): Promise<void> {}
}

async function listen(app: express.Express, port: number, host: string): Promise<Server> {
  try {
    return await new Promise<Server>((resolve, reject) => {
      const listening = app.listen(port, host, (err?: Error) => (err ? reject(err) : resolve(listening)));
      listening.once('error', reject);
      // Outlive the idle timeout of clients' connection pools, so the server is
      // not the side that closes a pooled socket just as a client reuses it.
      listening.keepAliveTimeout = 65_000;
      listening.headersTimeout = 66_000;
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ServiceError(
      'registry',
      code === 'EADDRINUSE'
        ? `port ${port} is already in use: stop what holds it or choose another with --port / SLUICE_STACK_REGISTRY_PORT`
        : `cannot listen on ${host}:${port}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

function running(
  server: Server,
  host: string,
  topic: string,
  state: RegistryState,
  stop: () => Promise<void>,
): RunningRegistry {
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    port,
    topic,
    state,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await stop();
    },
  };
}

/** A registry over MemoryRegistryLog on a free port: the real API, no Kafka, state gone on close. */
export async function startMemoryRegistry(options: { port?: number; host?: string } = {}): Promise<RunningRegistry> {
  const state = new RegistryState();
  const host = options.host ?? '127.0.0.1';
  const server = await listen(
    registryApp(new RegistryService(state, new MemoryRegistryLog(state))),
    options.port ?? 0,
    host,
  );
  return running(server, host, '(memory)', state, async () => undefined);
}

/**
 * Starts an embedded registry: reads its topic to the end, then listens.
 * Several instances on the same topic serve the same ids.
 */
export async function startRegistry(
  config: Pick<SluiceConfig, 'kafka'>,
  options: RegistryOptions,
): Promise<RunningRegistry> {
  const topic = options.topic ?? DEFAULT_SCHEMAS_TOPIC;
  const state = new RegistryState();
  const log = new SchemaLog(config, topic);
  try {
    await log.start((key, value) => state.apply(key, value));
  } catch (err) {
    await log.stop();
    throw err;
  }
  const host = options.host ?? '127.0.0.1';
  const app = registryApp(new RegistryService(state, log), options.logger);
  let server: Server;
  try {
    server = await listen(app, options.port, host);
  } catch (err) {
    await log.stop();
    throw err;
  }
  return running(server, host, topic, state, () => log.stop());
}
