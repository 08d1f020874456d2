/**
 * Producer throughput on the local stack: the SDK (gzip and uncompressed)
 * and the HTTP ingestion API (`sluice serve` in its own process, batches of
 * 500, several concurrent clients). Prints one JSON line per measurement.
 *
 *   npm run bench:produce                      # 200k SDK events, 50k HTTP events
 *   SDK_EVENTS=50000 HTTP_EVENTS=20000 npm run bench:produce
 *
 * Every event is acknowledged by Kafka (acks=all) before it counts; the
 * topic's record count is checked against what was sent at the end.
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { sleep } from '../src/clock';
import { loadConfig } from '../src/config';
import { hashApiKey } from '../src/ingest';
import { createKafka, endOffsetSum } from '../src/kafka';
import { deleteSubject } from './lib/cleanup';
import { createEventProducer, type ProducerCompression } from '../src/produce';
import type { AnalyticsEvent } from '../streams/event-counts/event';

const SDK_EVENTS = Number(process.env.SDK_EVENTS ?? 200_000);
const HTTP_EVENTS = Number(process.env.HTTP_EVENTS ?? 50_000);
const HTTP_BATCH = Number(process.env.HTTP_BATCH ?? 500);
const HTTP_CLIENTS = Number(process.env.HTTP_CLIENTS ?? 8);
const PARTITIONS = 6;

const config = loadConfig();
const runId = randomBytes(3).toString('hex');

function events(n: number): AnalyticsEvent[] {
  const types = ['view', 'click', 'purchase'];
  const t0 = Date.now();
  return Array.from({ length: n }, (_, i) => ({
    event_id: randomUUID(),
    event_type: types[i % 3]!,
    user_id: `user-${i % 5000}`,
    campaign_id: `campaign-${i % 50}`,
    ad_id: i % 2 === 0 ? `ad-${i % 400}` : null,
    event_time: t0 + i,
    amount: i % 3 === 2 ? (i % 1000) / 10 : null,
    properties: { page: `/p/${i % 100}`, country: ['de', 'fr', 'us'][i % 3]! },
  }));
}

/** Peak resident memory of this process, sampled while a measurement runs. */
function rssSampler() {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  return () => {
    clearInterval(timer);
    return Math.round(Math.max(peak, process.memoryUsage().rss) / 1024 / 1024);
  };
}

function emit(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ bench: 'produce', ...line })}\n`);
}

async function benchSdk(topic: string, compression: ProducerCompression): Promise<void> {
  const batch = events(SDK_EVENTS);
  const producer = createEventProducer<AnalyticsEvent>({ config, topic, schema: 'analytics_event', compression });
  await producer.connect();
  const peakRss = rssSampler();
  const started = process.hrtime.bigint();
  // Many callers at once, as in a busy service: 1000-event slices sent concurrently, throttled by the in-flight bound.
  const sends: Promise<unknown>[] = [];
  for (let i = 0; i < batch.length; i += 1000) sends.push(producer.sendBatch(batch.slice(i, i + 1000)));
  await Promise.all(sends);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const stats = producer.stats();
  await producer.close();
  emit({
    client: 'sdk',
    compression,
    events: SDK_EVENTS,
    seconds: Number(seconds.toFixed(3)),
    events_per_sec: Math.round(SDK_EVENTS / seconds),
    produce_requests: stats.produceRequests,
    peak_in_flight: stats.peakInFlightEvents,
    peak_rss_mb: peakRss(),
  });
}

async function waitReady(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) return;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  throw new Error(`ingest API at ${url} not ready after ${timeoutMs} ms`);
}

async function benchHttp(topic: string): Promise<void> {
  const key = randomBytes(16).toString('hex');
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const server = spawn(
    process.execPath,
    [join(__dirname, '..', 'bin', 'sluice.js'), 'serve', '--port', String(port), '--topic', topic],
    {
      env: {
        // Measured on this Node.js, not handed over to the project's (bin/node-handover.js).
        SLUICE_NODE: 'system',
        ...process.env,
        SLUICE_INGEST_API_KEYS: hashApiKey(key),
        SLUICE_INGEST_RATE_LIMIT_PER_SECOND: '0',
        SLUICE_INGEST_MAX_EVENTS_PER_REQUEST: String(HTTP_BATCH),
        SLUICE_INGEST_MAX_BODY_BYTES: String(4 * 1024 * 1024),
        SLUICE_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitReady(url, 30_000);
    const bodies: string[] = [];
    const all = events(HTTP_EVENTS);
    for (let i = 0; i < all.length; i += HTTP_BATCH)
      bodies.push(JSON.stringify({ events: all.slice(i, i + HTTP_BATCH) }));
    const latencies: number[] = [];
    let next = 0;
    const started = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: HTTP_CLIENTS }, async () => {
        while (next < bodies.length) {
          const body = bodies[next++]!;
          const t = process.hrtime.bigint();
          const res = await fetch(`${url}/v1/events`, {
            method: 'POST',
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
            body,
          });
          if (res.status !== 202) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
          await res.arrayBuffer();
          latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
        }
      }),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    latencies.sort((a, b) => a - b);
    const pct = (p: number) =>
      Number(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!.toFixed(1));
    emit({
      client: 'http',
      events: HTTP_EVENTS,
      batch: HTTP_BATCH,
      concurrent_clients: HTTP_CLIENTS,
      seconds: Number(seconds.toFixed(3)),
      events_per_sec: Math.round(HTTP_EVENTS / seconds),
      requests_per_sec: Math.round(bodies.length / seconds),
      request_ms_p50: pct(0.5),
      request_ms_p99: pct(0.99),
    });
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
}

async function main(): Promise<void> {
  const admin = createKafka(config).admin();
  await admin.connect();
  const topics = {
    gzip: `bench.produce.${runId}.sdk-gzip`,
    none: `bench.produce.${runId}.sdk-none`,
    http: `bench.produce.${runId}.http`,
  };
  const subjects = Object.values(topics).map((t) => `${t}-value`);
  await admin.createTopics(Object.values(topics).map((topic) => ({ topic, numPartitions: PARTITIONS })));
  try {
    await benchSdk(topics.gzip, 'gzip');
    await benchSdk(topics.none, 'none');
    await benchHttp(topics.http);
    // Every acknowledged event is in its topic, once.
    for (const [topic, expected] of [
      [topics.gzip, SDK_EVENTS],
      [topics.none, SDK_EVENTS],
      [topics.http, HTTP_EVENTS],
    ] as const) {
      const stored = await endOffsetSum(admin, topic);
      if (stored !== expected) throw new Error(`${topic} holds ${stored} records, expected ${expected}`);
    }
  } finally {
    await admin.deleteTopics(Object.values(topics)).catch(() => undefined);
    await admin.disconnect();
    for (const s of subjects) await deleteSubject(config, s);
  }
}

main().catch((err: Error) => {
  process.stderr.write(`bench:produce failed: ${err.message}\n`);
  process.exit(1);
});
