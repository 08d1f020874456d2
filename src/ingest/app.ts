import { isUtf8 } from 'node:buffer';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { SluiceConfig } from '../config';
import { describeError } from '../errors';
import type { EventProducer, FieldIssue } from '../produce';
import { hashApiKey, isAcceptedKeyHash, presentedKey } from './auth';
import { fingerprint, type HeldClaim, type IdempotencyStore } from './idempotency';
import { openApiDocument } from './openapi';
import type { DuplicateGuard, RateLimiter } from './limits';
import type { StreamRules } from '../produce';

export interface IngestDependencies {
  settings: SluiceConfig['ingest'];
  producer: EventProducer<Record<string, unknown>>;
  /** sha256 hex of every accepted key. */
  apiKeyHashes: ReadonlySet<string>;
  rateLimiter: RateLimiter;
  /** Answers requests that repeat an `Idempotency-Key` with their first answer; without it the header is ignored. */
  idempotency?: IdempotencyStore;
  /** Present only when `ingest.rejectDuplicates` is on. */
  duplicates?: DuplicateGuard;
  /** Resolves when Kafka and Redis answer; rejects with the reason otherwise (logged, never sent to the client). */
  ready(): Promise<void>;
  logger: Logger;
  /** The field that identifies an event (and is its Kafka key). */
  idField: string;
  /** The rules of the streams that read the topic, checked after the schema; absent when no stream reads it. */
  streamRules?: Pick<StreamRules, 'check'>;
  /** Counts the answers of the API for metrics; the status page and metrics themselves are served on the operator address. */
  countRequests?: express.RequestHandler;
}

/** Every error answer has the same shape: a stable code, one line for humans, and details when there are some. */
function fail(
  res: Response,
  status: number,
  error: string,
  message: string,
  extra: Record<string, unknown> = {},
): void {
  res.status(status).json({ error, message, ...extra });
}

/** Body parser errors (from body-parser) carry a `type` and a `status`. */
interface ParserError {
  type?: string;
  status?: number;
}

const MALFORMED_UTF8 = 'entity.malformed.utf8';

/**
 * JSON is UTF-8 (RFC 8259), and the decoder would turn malformed bytes into
 * U+FFFD without a word: an event stored other than as sent, two different
 * ids made one. So a UTF-8 body that is not UTF-8 is refused whole.
 */
function refuseMalformedUtf8(_req: unknown, _res: unknown, body: Buffer, encoding: string): void {
  if (/^utf-?8$/i.test(encoding) && !isUtf8(body))
    throw Object.assign(new Error('request body is not valid UTF-8'), { status: 400, type: MALFORMED_UTF8 });
}

/** What a client is told when not ready; why goes to the log and the operator's status page, not to anyone who asks. */
const NOT_READY = 'not ready to accept events: retry later';

/**
 * The HTTP ingestion API. Checks run cheapest-first, and an event reaches
 * Kafka only when all passed: key (401), content type (415), rate (429, one
 * unit, before the body is read), body size (413), JSON (400), event count
 * (413, also above the key's rate limit, which no retry could pass), rate
 * (429, the rest of the batch), schema and the rules of the
 * streams reading the topic (400), duplicates (409); then 202 once Kafka has
 * acknowledged every event of the request. A request repeating an
 * accepted one's Idempotency-Key gets its first answer, after the key and
 * the rate (one unit).
 */
export function createIngestApp(deps: IngestDependencies): express.Express {
  const { settings, producer, logger, idField } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  if (deps.countRequests) app.use(deps.countRequests);

  const openApi = openApiDocument(settings);
  app.get('/openapi.json', (_req, res) => {
    res.json(openApi);
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'alive' });
  });

  // Logged when it changes, not at every probe of a load balancer.
  let notReadyBecause: string | undefined;
  app.get('/readyz', async (_req, res) => {
    try {
      await deps.ready();
      if (notReadyBecause !== undefined) logger.info('ready again');
      notReadyBecause = undefined;
      res.json({ status: 'ready' });
    } catch (err) {
      const reason = describeError(err);
      if (reason !== notReadyBecause) logger.warn({ err: reason }, 'not ready');
      notReadyBecause = reason;
      fail(res, 503, 'not_ready', NOT_READY);
    }
  });

  const redisDown = (res: Response, err: unknown) => {
    logger.error({ err: (err as Error).message }, 'Redis unavailable');
    res.set('Retry-After', '1');
    fail(res, 503, 'redis_unavailable', 'rate limiting needs Redis, which is unavailable: retry');
  };

  const authenticate = (req: Request, res: Response, next: NextFunction) => {
    const key = presentedKey(req.headers);
    if (!key) {
      res.set('WWW-Authenticate', 'Bearer');
      return fail(res, 401, 'unauthorized', 'missing API key: send Authorization: Bearer <key> or X-API-Key: <key>');
    }
    const hash = hashApiKey(key);
    if (!isAcceptedKeyHash(deps.apiKeyHashes, hash)) {
      res.set('WWW-Authenticate', 'Bearer error="invalid_token"');
      return fail(res, 401, 'unauthorized', 'API key not recognised');
    }
    // Rate limits and logs name the client by a prefix of the hash, never by the key.
    res.locals.client = hash.slice(0, 16);
    next();
  };

  const requireJson = (req: Request, res: Response, next: NextFunction) => {
    if (!req.is('application/json')) {
      return fail(
        res,
        415,
        'unsupported_media_type',
        `expected Content-Type: application/json, got ${req.headers['content-type'] ?? 'none'}`,
      );
    }
    next();
  };

  /**
   * Takes `events` from the key's budget; false when the request was answered (429, or 503 without Redis).
   * Every metered answer carries the key's budget in the IETF draft's RateLimit-* headers, so a client can pace
   * itself before it is refused.
   */
  const meter = async (res: Response, events: number): Promise<boolean> => {
    let rate;
    try {
      rate = await deps.rateLimiter.take(res.locals.client as string, events);
    } catch (err) {
      redisDown(res, err);
      return false;
    }
    if (rate.remaining !== undefined) {
      res.set('RateLimit-Limit', String(deps.rateLimiter.limit));
      res.set('RateLimit-Remaining', String(rate.remaining));
      res.set('RateLimit-Reset', String(Math.ceil(rate.retryAfterMs / 1000)));
    }
    if (rate.allowed) return true;
    res.set('Retry-After', String(Math.ceil(rate.retryAfterMs / 1000)));
    fail(
      res,
      429,
      'rate_limited',
      `more than ${settings.rateLimitPerSecond} events per second for this API key (ingest.rateLimitPerSecond): retry after the Retry-After seconds`,
    );
    return false;
  };

  /**
   * One unit of the budget before the body is read: a key over its limit
   * costs no reading or parsing, and each parse costs the key at least one
   * unit (kept even if the rest of its batch is then refused). The rest of
   * a batch is taken once the events are counted.
   */
  const meterRequest = async (_req: Request, res: Response, next: NextFunction) => {
    if (await meter(res, 1)) next();
  };

  /**
   * A request with an Idempotency-Key: a repeat of an accepted one gets the
   * first answer (header `Idempotent-Replayed: true`) and produces nothing
   * again. Only a 202 is kept: a refused or failed request gives its key up,
   * so the client can fix and retry under the same key. Undefined when the
   * request was answered here.
   */
  const idempotent = async (req: Request, res: Response, store: IdempotencyStore): Promise<HeldClaim | undefined> => {
    const key = req.get('Idempotency-Key')!;
    if (!/^[\x21-\x7e]{1,255}$/.test(key)) {
      fail(res, 400, 'invalid_idempotency_key', 'Idempotency-Key must be 1-255 printable ASCII characters');
      return undefined;
    }
    const client = res.locals.client as string;
    const print = fingerprint(req.body);
    let claim;
    try {
      claim = await store.begin(client, key);
    } catch (err) {
      redisDown(res, err);
      return undefined;
    }
    if (claim.state === 'pending') {
      res.set('Retry-After', '1');
      fail(
        res,
        409,
        'idempotency_key_in_use',
        'a request with this Idempotency-Key is being answered right now: retry',
      );
      return undefined;
    }
    if (claim.state === 'done') {
      if (claim.answer.fingerprint !== print) {
        fail(
          res,
          422,
          'idempotency_key_reused',
          'this Idempotency-Key was used for a different request body: use a new key for a new request',
        );
        return undefined;
      }
      res.set('Idempotent-Replayed', 'true');
      res.status(claim.answer.status).json(claim.answer.body);
      return undefined;
    }
    // The 202 stores its answer before it is sent (so a retry can never find the key still pending after it);
    // anything else gives the key up once the handler has finished (see the route).
    res.locals.idempotent = async (answer: unknown) =>
      claim
        .complete({ status: 202, body: answer, fingerprint: print })
        .catch((err: Error) => logger.warn({ err: err.message }, 'storing the idempotent answer failed'));
    return claim;
  };

  app.post(
    '/v1/events',
    authenticate,
    requireJson,
    meterRequest,
    express.json({ limit: settings.maxBodyBytes, strict: false, type: () => true, verify: refuseMalformedUtf8 }),
    async (req: Request, res: Response) => {
      if (!deps.idempotency || req.get('Idempotency-Key') === undefined) return accept(req, res);
      const claim = await idempotent(req, res, deps.idempotency);
      if (!claim) return;
      try {
        await accept(req, res);
      } finally {
        // Only after the handler is done, whatever the client's socket did meanwhile: a key given up while a
        // send may still land would let a retry produce the events twice. A key that stored its 202 stays.
        await claim
          .release()
          .catch((err: Error) => logger.warn({ err: err.message }, 'releasing an idempotency key failed'));
      }
    },
  );

  /** Validates, meters and produces one request's events, and answers it. */
  async function accept(req: Request, res: Response): Promise<void> {
    const body: unknown = req.body;
    const batch =
      Array.isArray(body) ||
      (typeof body === 'object' &&
        body !== null &&
        'events' in body &&
        Array.isArray((body as { events: unknown }).events));
    const events: unknown[] = Array.isArray(body) ? body : batch ? (body as { events: unknown[] }).events : [body];
    const at = (i: number) => (Array.isArray(body) ? `[${i}]` : batch ? `events[${i}]` : '');

    if (events.length === 0) return fail(res, 400, 'invalid_events', 'no events in the request');
    if (events.length > settings.maxEventsPerRequest) {
      return fail(
        res,
        413,
        'too_many_events',
        `${events.length} events in one request; at most ${settings.maxEventsPerRequest} (ingest.maxEventsPerRequest): split the batch`,
      );
    }

    // More events than the key may send in a window would be refused with 429 at every retry: say so once, for good.
    const limit = deps.rateLimiter.limit;
    if (limit > 0 && events.length > limit) {
      return fail(
        res,
        413,
        'batch_exceeds_rate_limit',
        `${events.length} events in one request; this API key may send at most ${limit} per ${deps.rateLimiter.windowMs / 1000} s (ingest.rateLimitPerSecond): split the batch`,
        { limit },
      );
    }
    if (events.length > 1 && !(await meter(res, events.length - 1))) return;

    // The schema first; an event that fits it is then checked against the rules of the streams reading the topic,
    // whose reasons name their field but belong to the event as a whole.
    const issues: FieldIssue[] = events.flatMap((event, i) => {
      const schemaIssues = producer.validate(event).map((issue) => ({
        path: issue.path === '(event)' ? at(i) || '(event)' : [at(i), issue.path].filter(Boolean).join('.'),
        reason: issue.reason,
      }));
      if (schemaIssues.length > 0 || !deps.streamRules) return schemaIssues;
      return deps.streamRules
        .check(event as Record<string, unknown>)
        .map((reason) => ({ path: at(i) || '(event)', reason }));
    });
    if (issues.length > 0) {
      return fail(
        res,
        400,
        'invalid_events',
        `${issues.length} problem(s) with the events (their schema, or the rules of the stream that reads them); nothing was accepted`,
        {
          issues,
        },
      );
    }

    const valid = events as Record<string, unknown>[];
    const ids = valid.map((e) => String(e[idField]));
    if (deps.duplicates) {
      const seen = new Set<string>();
      const repeated = ids.filter((id) => seen.has(id) || !seen.add(id));
      if (repeated.length > 0) {
        return fail(
          res,
          409,
          'duplicate_events',
          'the same event id appears more than once in the request; nothing was accepted',
          { event_ids: [...new Set(repeated)] },
        );
      }
      let claim;
      try {
        claim = await deps.duplicates.claim(ids);
      } catch (err) {
        return redisDown(res, err);
      }
      if (claim.duplicates.length > 0) {
        return fail(
          res,
          409,
          'duplicate_events',
          `${claim.duplicates.length} event(s) were already accepted; nothing was accepted from this request`,
          {
            event_ids: claim.duplicates,
          },
        );
      }
      if (!claim.claimed) {
        res.set('Retry-After', '1');
        return fail(
          res,
          503,
          'in_progress',
          'another request with these event ids is being accepted right now: retry',
          { event_ids: claim.inProgress },
        );
      }
    }

    let sent;
    try {
      sent = await producer.sendBatch(valid);
    } catch (err) {
      if (deps.duplicates) await deps.duplicates.release(ids).catch(() => undefined);
      logger.error({ err: (err as Error).message, events: valid.length }, 'producing accepted events failed');
      res.set('Retry-After', '1');
      return fail(
        res,
        503,
        'kafka_unavailable',
        'the events could not be written to Kafka: retry (the API is idempotent per event id downstream)',
      );
    }
    // The events are in Kafka: a failure to mark them only weakens duplicate rejection, it loses nothing.
    if (deps.duplicates)
      await deps.duplicates
        .confirm(ids)
        .catch((err: Error) => logger.warn({ err: err.message }, 'marking accepted event ids failed'));
    // Where each event went, in request order: a client can trace one to its record.
    const answer = {
      accepted: ids.length,
      event_ids: ids,
      records: sent.map((r, i) => ({ event_id: ids[i], partition: r.partition, offset: r.offset })),
    };
    // A failure to store it only means a repeat is treated as new (and dedup by event id absorbs it).
    const keep = res.locals.idempotent as ((answer: unknown) => Promise<void>) | undefined;
    if (keep) await keep(answer);
    res.status(202).json(answer);
  }

  app.use((_req: Request, res: Response) =>
    fail(res, 404, 'not_found', 'no such endpoint: POST /v1/events, GET /healthz, GET /readyz, GET /openapi.json'),
  );

  // Errors from the body parser (413, malformed JSON) and anything unexpected.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const parser = err as ParserError;
    if (parser.type === 'entity.too.large') {
      return fail(
        res,
        413,
        'body_too_large',
        `request body larger than ${settings.maxBodyBytes} bytes (ingest.maxBodyBytes): split the batch`,
      );
    }
    if (parser.type === 'entity.parse.failed')
      return fail(res, 400, 'malformed_json', 'the request body is not valid JSON');
    if (parser.type === MALFORMED_UTF8)
      return fail(res, 400, 'malformed_utf8', 'the request body is not valid UTF-8: send JSON encoded as UTF-8');
    // zlib's own errors (Z_DATA_ERROR, Z_BUF_ERROR...) name no header: say which one was wrong.
    if (/^Z_/.test(String((err as { code?: unknown }).code))) {
      return fail(
        res,
        400,
        'malformed_encoding',
        `the request body is not valid ${String(req.headers['content-encoding'])} data (Content-Encoding)`,
      );
    }
    if (parser.type === 'encoding.unsupported' || parser.type === 'charset.unsupported') {
      return fail(res, 415, 'unsupported_media_type', 'unsupported content encoding or charset');
    }
    if (typeof parser.status === 'number' && parser.status >= 400 && parser.status < 500) {
      return fail(res, parser.status, 'bad_request', (err as Error).message);
    }
    logger.error({ err: (err as Error).message }, 'ingest request failed');
    return fail(res, 500, 'internal', 'internal error; see the server log');
  });

  return app;
}
