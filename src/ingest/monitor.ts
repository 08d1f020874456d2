import type { NextFunction, Request, Response, Router } from 'express';
import type { KafkaAdmin } from '../kafka';
import { Counter, Histogram } from 'prom-client';
import { dlqTopic } from '../dlq';
import { describeError } from '../errors';
import {
  labelProcessMetrics,
  observabilityRouter,
  recentProblems,
  registeredMetric,
  type Check,
  type RecentProblem,
} from '../telemetry';
import { cachedFor } from './cached';

/** What `/status.json` serves for the ingest API. */
export interface IngestStatusReport {
  kind: 'ingest';
  topic: string;
  time: string;
  uptimeSeconds: number;
  ready: boolean;
  checks: Check[];
  requests: number;
  requestsRejected: number;
  eventsAccepted: number;
  eventsPerSecond: number;
  byStatus: Record<string, number>;
  partitions: { partition: number; endOffset: string }[];
  sideTopics: Record<string, number | null>;
  recentErrors: RecentProblem[];
}

export interface IngestObservability {
  /** Mounted first on the public app: counts every `POST /v1/events` answer. */
  middleware(req: Request, res: Response, next: NextFunction): void;
  /** `/`, `/status.json`, `/metrics`, for the operator address (the public app keeps its own /healthz and /readyz). */
  router: Router;
}

export interface IngestObservabilityOptions {
  topic: string;
  admin: KafkaAdmin;
  /** Records in the topic's dead-letter topic (as a read_committed reader sees them); rejects when it does not exist. */
  deadLetters(): Promise<number>;
  ready(): Promise<void>;
  /** How long one look at Kafka and Redis serves every status request (default 2 s). */
  statusTtlMs?: number;
}

/** The status page polls every second; its Kafka and Redis figures may be this old. */
const STATUS_TTL_MS = 2000;

/**
 * Metrics and the status page of the ingest API: requests by status code,
 * events accepted (what Kafka acknowledged), request latency, and the
 * topic's end offsets, so an operator sees events arrive.
 */
export function ingestObservability(options: IngestObservabilityOptions): IngestObservability {
  labelProcessMetrics({ service: 'ingest', topic: options.topic });
  const requests = registeredMetric(
    'sluice_ingest_requests_total',
    () =>
      new Counter({
        name: 'sluice_ingest_requests_total',
        help: 'POST /v1/events requests by HTTP status code',
        labelNames: ['code'],
      }),
  );
  const accepted = registeredMetric(
    'sluice_ingest_events_accepted_total',
    () => new Counter({ name: 'sluice_ingest_events_accepted_total', help: 'Events Kafka acknowledged (202 answers)' }),
  );
  const latency = registeredMetric(
    'sluice_ingest_request_duration_seconds',
    () =>
      new Histogram({
        name: 'sluice_ingest_request_duration_seconds',
        help: 'Time to answer POST /v1/events',
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      }),
  );
  const started = Date.now();
  const totals = { requests: 0, rejected: 0, accepted: 0, byStatus: {} as Record<string, number> };
  const samples: { at: number; accepted: number }[] = [];

  const middleware = (req: Request, res: Response, next: NextFunction) => {
    if (req.method !== 'POST' || req.path !== '/v1/events') return next();
    const end = latency.startTimer();
    const json = res.json.bind(res);
    // The handler answers 202 with { accepted: n }: the count Kafka acknowledged.
    res.json = (body: unknown) => {
      if (
        res.statusCode === 202 &&
        body &&
        typeof body === 'object' &&
        typeof (body as { accepted?: unknown }).accepted === 'number'
      ) {
        const n = (body as { accepted: number }).accepted;
        accepted.inc(n);
        totals.accepted += n;
      }
      return json(body);
    };
    res.on('finish', () => {
      end();
      const code = String(res.statusCode);
      requests.inc({ code });
      totals.requests += 1;
      if (res.statusCode >= 400) totals.rejected += 1;
      totals.byStatus[code] = (totals.byStatus[code] ?? 0) + 1;
    });
    next();
  };

  /** What costs a Redis ping and Kafka admin calls: looked up at most once per TTL, whatever the request rate. */
  const probe = cachedFor(options.statusTtlMs ?? STATUS_TTL_MS, async () => {
    const checks: Check[] = [];
    let ready = true;
    try {
      await options.ready();
      checks.push({ name: 'dependencies', ok: true, detail: 'Kafka and Redis answer' });
    } catch (err) {
      ready = false;
      checks.push({ name: 'dependencies', ok: false, detail: describeError(err) });
    }
    let partitions: IngestStatusReport['partitions'] = [];
    const sideTopics: Record<string, number | null> = {};
    try {
      partitions = (await options.admin.fetchTopicOffsets(options.topic))
        .map((o) => ({ partition: o.partition, endOffset: o.high }))
        .sort((a, b) => a.partition - b.partition);
      sideTopics[dlqTopic(options.topic)] = await options.deadLetters().catch(() => null);
    } catch (err) {
      checks.push({ name: 'topic', ok: false, detail: describeError(err) });
    }
    return { ready, checks, partitions, sideTopics };
  });

  const status = async (): Promise<IngestStatusReport> => {
    const { ready, checks, partitions, sideTopics } = await probe();
    const now = Date.now();
    // One sample a second at most, so the rate's memory does not grow with the request rate.
    if (samples.length === 0 || now - samples[samples.length - 1]!.at >= 1000)
      samples.push({ at: now, accepted: totals.accepted });
    while (samples.length > 2 && now - samples[0]!.at > 10_000) samples.shift();
    const oldest = samples[0]!;
    const seconds = (now - oldest.at) / 1000;
    return {
      kind: 'ingest',
      topic: options.topic,
      time: new Date(now).toISOString(),
      uptimeSeconds: Math.round((now - started) / 1000),
      ready,
      checks,
      requests: totals.requests,
      requestsRejected: totals.rejected,
      eventsAccepted: totals.accepted,
      eventsPerSecond: seconds > 0 ? Math.round(((totals.accepted - oldest.accepted) / seconds) * 10) / 10 : 0,
      byStatus: { ...totals.byStatus },
      partitions,
      sideTopics,
      recentErrors: recentProblems(),
    };
  };

  return { middleware, router: observabilityRouter({ status }) };
}
