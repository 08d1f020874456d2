/**
 * The latency and soak runs (bench/README.md, steps 5 and 6): Sluice running
 * unbounded on a fresh topic while a generator produces in real time at a
 * steady rate; when each window's rows become visible in ClickHouse, measured
 * from the moment the window had to close, and the processor's RSS over time.
 */
import { createServer, type AddressInfo } from 'node:net';
import { sleep } from '../../src/clock';
import type { SluiceConfig } from '../../src/config';
import { ExpectedAnswerBuilder, type ExpectedAnswer } from '../../src/generator';
import { createKafka } from '../../src/kafka';
import type { ClickHouseClient } from '@clickhouse/client';
import { createClickHouse } from '../../src/sink/clickhouse/client';
import { deleteRedisKeys, deleteSubject } from './cleanup';
import { SLUICE_BIN } from './consume';
import { createBenchTopics, OUT_OF_ORDER_MS, PARTITIONS } from './load';
import { round, rssMb, runMeasured, type ChildResult } from './measure';
import type { BenchOptions } from './options';
import { ROOT } from './report';
import { inKafkaAt, produceSteady } from './steady';

/** When a window's row must be in ClickHouse at the earliest: end + out-of-orderness + allowed lateness. */
const CLOSE_DELAY_MS = 30_000 + 30_000;

/**
 * The window rows whose visibility the poller times: with many campaigns, those of every tenth campaign
 * (its number ends in 7) and of events without one; with few, all. Timing every row read a closing
 * minute's quarter of a million rows about three times over while they were being inserted (a version's
 * rows again at each poll that found more of them): on a machine shared with what is measured, that
 * reading took CPU from the close it timed. Which campaign a row belongs to says nothing of when its
 * partial is emitted or inserted, so the sample's percentiles estimate all rows'. Every row is still
 * checked for its expected count, once, after the run.
 */
function timedRows(campaigns: number): { sql: string; has: (campaignId: string) => boolean } {
  if (campaigns < 1000) return { sql: '1', has: () => true };
  return { sql: `(campaign_id = '' OR endsWith(campaign_id, '7'))`, has: (c) => c === '' || c.endsWith('7') };
}

/**
 * Sluice running unbounded while a generator produces in real time at
 * `rate`; every 100 ms the window rows in ClickHouse are polled. A row's
 * latency = when it first showed its complete, final count minus the wall
 * time at which its window end + out-of-orderness + allowed lateness passed.
 * The processor's RSS is sampled throughout (the soak's flatness figure).
 */
export async function steadyRun(
  config: SluiceConfig,
  options: BenchOptions,
  runHex: string,
  name: 'latency' | 'soak',
  rate: number,
  seconds: number,
): Promise<Record<string, unknown>> {
  const id = `${runHex}${name === 'soak' ? 's' : 'l'}`;
  const topic = `bench.${id}.events`;
  const db = `bench_${id}_sluice`;
  const admin = createKafka(config).admin();
  await admin.connect();
  const root = createClickHouse(config.clickhouse);
  await root.command({ query: `CREATE DATABASE IF NOT EXISTS ${db}` });
  await createBenchTopics(config, topic);
  const ch = createClickHouse(config.clickhouse, db);
  const builder = new ExpectedAnswerBuilder();
  let pid: number | undefined;
  const rss: { t: number; mb: number }[] = [];
  const seen = new Map<string, Seen[]>();
  let slowestPollMs = 0;
  let pollerRowsRead = 0;
  let polling = true;
  let pollError: Error | undefined;
  let child: Promise<ChildResult> | undefined;
  let exited = false;
  const httpPort = await freePort();
  let openWindowsPeak = 0;
  try {
    child = runMeasured(
      process.execPath,
      [
        options.sluiceHeapFlag,
        SLUICE_BIN,
        'run',
        'event-counts',
        '--topic',
        topic,
        '--group',
        `bench.${id}.sluice`,
        '--json',
        '--http-port',
        String(httpPort),
      ],
      {
        timeoutMs: (seconds + 180) * 1000,
        cwd: ROOT,
        env: {
          ...process.env,
          SLUICE_CLICKHOUSE_DATABASE: db,
          SLUICE_REDIS_KEY_PREFIX: `bench:${id}:`,
          SLUICE_LOG_LEVEL: 'warn',
        },
        onPid: (p) => (pid = p),
      },
    );
    void child.then(() => (exited = true));
    const rssTimer = setInterval(() => {
      const mb = pid ? rssMb(pid) : undefined;
      if (mb !== undefined) rss.push({ t: Date.now(), mb });
      // Open (window, group key, partition) partials, from the processor's own gauge: what its memory holds.
      void fetch(`http://127.0.0.1:${httpPort}/metrics`)
        .then((r) => r.text())
        .then((text) => {
          const open = Number(/^sluice_open_windows\{[^}]*\} (\d+)/m.exec(text)?.[1] ?? 0);
          openWindowsPeak = Math.max(openWindowsPeak, open);
        })
        .catch(() => undefined);
    }, 1000);
    // Let the processor join its group before the clock starts (event time = wall time from here on).
    await sleep(8_000);
    const poller = (async () => {
      // Reading the whole table with FINAL every poll cost ClickHouse and the harness more CPU than the processor
      // had (seconds per poll, late in a run). So a poll reads only the partials emitted lately (version = the
      // processing time of the emission, on this machine's clock), and of those only the emissions (versions)
      // that a cheap count per version says have rows not read yet, and merges them here as FINAL and the
      // analysts' views do: the latest version of each (window, key, partition) partial, summed over
      // partitions. (Reading every recent row whenever any count changed read a closing minute's ~250k rows
      // again at each poll while they were being inserted: the harness then took CPU from what it measured.)
      const partials = new Map<string, Map<number, { events: number; final: number; version: number }>>();
      /** Rows read so far per version (emission), for the versions still within the probe's reach. */
      const readPerVersion = new Map<number, number>();
      let since = 0;
      const timed = timedRows(options.campaigns);
      while (polling) {
        try {
          const asked = Date.now();
          const probe = await (
            await ch.query({
              query: `SELECT version AS v, count() AS n FROM event_counts_1m_partial WHERE version >= ${since} AND ${timed.sql} GROUP BY version`,
              format: 'JSONEachRow',
            })
          ).json<{ n: string; v: string }>();
          const grown = probe
            .filter((p) => Number(p.n) > (readPerVersion.get(Number(p.v)) ?? 0))
            .map((p) => ({ version: Number(p.v), rows: Number(p.n) }));
          // A partial emitted before this poll began but not yet visible to it is read by a later one: 30 s of
          // overlap, more than an emitted row takes to become visible (a row it missed would be reported missing).
          since = asked - 30_000;
          for (const version of readPerVersion.keys()) if (version < since) readPerVersion.delete(version);
          if (grown.length > 0) {
            // Rows are stamped with when this read was sent: everything it returns was visible by then. An
            // emission (version) of which it returns exactly the rows the probe counted was visible when the
            // probe was sent: rows are only added, so those are the rows the probe saw. (Stamping every row
            // with the read's time charged each row with the read's own duration, up to a few hundred ms
            // while a closing minute's rows were being inserted and read.)
            const readAt = Date.now();
            const probed = new Map(grown.map((g) => [g.version, g.rows]));
            const rows = await (
              await ch.query({
                query: `SELECT toUnixTimestamp(window_start) * 1000 AS w, event_type, campaign_id, source_partition AS p,
                               events, final, version
                        FROM event_counts_1m_partial
                        WHERE version IN (${grown.map((g) => g.version).join(', ')}) AND ${timed.sql}`,
                format: 'JSONEachRow',
              })
            ).json<{
              w: string;
              event_type: string;
              campaign_id: string;
              p: number;
              events: string;
              final: number;
              version: string;
            }>();
            slowestPollMs = Math.max(slowestPollMs, Date.now() - asked);
            pollerRowsRead += rows.length;
            // Counted as read only up to what the probe saw: rows inserted between the two queries are read again.
            for (const g of grown) readPerVersion.set(g.version, g.rows);
            const returned = new Map<number, number>();
            for (const r of rows) returned.set(Number(r.version), (returned.get(Number(r.version)) ?? 0) + 1);
            const stampOf = (version: number) => (returned.get(version) === probed.get(version) ? asked : readAt);
            /** Per key changed by this read: when its newest rows were visible at the latest. */
            const changed = new Map<string, number>();
            for (const r of rows) {
              const version = Number(r.version);
              const key = `${Number(r.w)}|${r.event_type}|${r.campaign_id}`;
              const byPartition = partials.get(key) ?? partials.set(key, new Map()).get(key)!;
              const last = byPartition.get(r.p);
              if (last && (last.version > version || (last.version === version && last.final >= r.final))) continue;
              byPartition.set(r.p, { events: Number(r.events), final: Number(r.final), version });
              changed.set(key, Math.max(changed.get(key) ?? 0, stampOf(version)));
            }
            for (const [key, at] of changed) {
              let events = 0;
              let final = 1;
              let emitted = 0;
              for (const partial of partials.get(key)!.values()) {
                events += partial.events;
                final = Math.min(final, partial.final);
                emitted = Math.max(emitted, partial.version);
              }
              const history = seen.get(key) ?? [];
              const last = history.at(-1);
              if (!last || last.events !== events || last.final !== final) {
                // Visible when the read that saw it began (ClickHouse reads the parts present at query start):
                // the query's own duration, seconds on a saturated machine, is not the pipeline's latency.
                history.push({ events, final, at, emitted });
                seen.set(key, history);
              }
            }
          }
        } catch (err) {
          // The tables appear once the processor has migrated; anything else is reported.
          if (!/doesn't exist|UNKNOWN_TABLE/i.test((err as Error).message)) pollError = err as Error;
        }
        await sleep(100);
      }
    })();
    const produced = await produceSteady({
      config,
      topic,
      partitions: PARTITIONS,
      ratePerSecond: rate,
      seconds,
      seed: options.seed + 1,
      outOfOrderMs: OUT_OF_ORDER_MS,
      campaigns: options.campaigns,
      onLogEntry: (e) => builder.add(e),
    });
    const expected = builder.result();
    // Windows that must close before the run ends: their end + close delay is behind the last event's head
    // (every partition's newest event time is within a few ms of the head at these rates; 5 s of margin).
    const closable = expected.windows.filter((w) => w.window_end + CLOSE_DELAY_MS + 5_000 <= produced.lastHead);
    const timed = closable.filter((w) => timedRows(options.campaigns).has(w.campaign_id));
    // A loop, not Math.max(...): a soak's millions of windows are more arguments than a call may take.
    const lastClose = closable.reduce((latest, w) => Math.max(latest, w.window_end + CLOSE_DELAY_MS), Date.now());
    const waitUntil = lastClose + 15_000;
    while (Date.now() < waitUntil) {
      const done = timed.every(
        (w) => visibleAt(seen.get(`${w.window_start}|${w.event_type}|${w.campaign_id}`), w.events) !== undefined,
      );
      if (done) break;
      await sleep(200);
    }
    // Every closable row, timed or not, as the run left it (rows the timed ones did not wait for get until the deadline).
    let wrong = await wrongRows(ch, closable);
    while (wrong > 0 && Date.now() < waitUntil) {
      await sleep(1000);
      wrong = await wrongRows(ch, closable);
    }
    polling = false;
    await poller;
    clearInterval(rssTimer);
    // A processor that died on its own (out of memory, a crash) is the finding: say so with its last words.
    const diedEarly = exited;
    if (pid && !exited) process.kill(pid, 'SIGTERM');
    const result = await child;

    // A window can close only once a record past its close time is in Kafka: when the generator fell behind its
    // schedule (the machine busy), that is later than the close time itself. Reported beside the figures
    // measured from the close time, so what the generator's lag adds is seen, not hidden.
    const dueOf = (w: ExpectedAnswer['windows'][number]) => w.window_end + CLOSE_DELAY_MS;
    const inKafkaOf = (w: ExpectedAnswer['windows'][number]) =>
      Math.max(dueOf(w), inKafkaAt(produced.sends, dueOf(w)) ?? dueOf(w));
    const latencies: number[] = [];
    const fromData: number[] = [];
    let missing = 0;
    for (const w of timed) {
      const at = visibleAt(seen.get(`${w.window_start}|${w.event_type}|${w.campaign_id}`), w.events);
      if (at === undefined) missing += 1;
      else {
        latencies.push(at - dueOf(w));
        fromData.push(at - inKafkaOf(w));
      }
    }
    const percentile = (xs: number[]) => {
      const sorted = [...xs].sort((a, b) => a - b);
      return (p: number) =>
        sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : null;
    };
    const pct = percentile(latencies);
    const pctFromData = percentile(fromData);
    const half = rss.filter((s) => s.t >= rss[0]!.t + (rss.at(-1)!.t - rss[0]!.t) / 2);
    const firstHalf = rss.filter((s) => !half.includes(s));
    const maxOf = (xs: { mb: number }[]) => (xs.length ? Math.max(...xs.map((s) => s.mb)) : null);
    const problems: string[] = [];
    if (diedEarly)
      problems.push(`the processor exited during the run (code ${result.code}): ${result.stderr.slice(-2000)}`);
    if (missing > 0) problems.push(`${missing} of ${timed.length} timed window rows never showed their expected count`);
    if (wrong > 0)
      problems.push(`${wrong} of ${closable.length} closable window rows do not show their expected count`);
    if (pollError) problems.push(`polling ClickHouse failed: ${pollError.message}`);
    if (closable.length === 0) problems.push('no window closed during the run: make it longer (--latency-seconds)');
    return {
      bench: name,
      name,
      rate_per_s: rate,
      seconds,
      events: produced.records,
      producer_max_lag_ms: produced.maxLagMs,
      campaigns: options.campaigns,
      open_windows_peak: openWindowsPeak,
      windows_closed: new Set(closable.map((w) => w.window_start)).size,
      latency_ms_per_window: perWindowLatency(timed, seen, (v, w) => v.at - (w.window_end + CLOSE_DELAY_MS)),
      // The part of it before the rows were handed to the sink: when the processor closed the window.
      closed_after_ms_per_window: perWindowLatency(timed, seen, (v, w) => v.emitted - (w.window_end + CLOSE_DELAY_MS)),
      // The same, measured from when the record that lets the window close was in Kafka (see inKafkaAt).
      closing_record_late_ms_per_window: perWindowLatency(timed, seen, (_, w) => inKafkaOf(w) - dueOf(w)),
      latency_from_kafka_ms_per_window: perWindowLatency(timed, seen, (v, w) => v.at - inKafkaOf(w)),
      p50_from_kafka_ms: pctFromData(0.5),
      p99_from_kafka_ms: pctFromData(0.99),
      slowest_poll_ms: slowestPollMs,
      poller_rows_read: pollerRowsRead,
      window_rows: closable.length,
      timed_rows: timed.length,
      p50_ms: pct(0.5),
      p99_ms: pct(0.99),
      max_ms: pct(1),
      min_ms: pct(0),
      peak_rss_mb: result.peakRssMb,
      cpu_seconds: result.cpuSeconds,
      rss_max_first_half_mb: maxOf(firstHalf),
      rss_max_second_half_mb: maxOf(half),
      rss_growth_pct:
        maxOf(firstHalf) && maxOf(half)
          ? round((100 * (maxOf(half)! - maxOf(firstHalf)!)) / maxOf(firstHalf)!, 1)
          : null,
      rss_samples_mb: name === 'soak' ? rss.filter((_, i) => i % 30 === 0).map((s) => s.mb) : undefined,
      valid: problems.length === 0,
      ...(problems.length ? { problems } : {}),
    };
  } finally {
    polling = false;
    // On failure too: the unbounded processor must not outlive the run.
    if (child && !exited && pid) {
      process.kill(pid, 'SIGTERM');
      await child;
    }
    await ch.close();
    if (!options.keep) {
      await root.command({ query: `DROP DATABASE IF EXISTS ${db}` }).catch(() => undefined);
      await admin.deleteTopics([topic, `${topic}.dlq`, `${topic}.late`]).catch(() => undefined);
      await admin.deleteGroups([`bench.${id}.sluice`]).catch(() => undefined);
      await deleteRedisKeys(config, `bench:${id}:`);
      await deleteSubject(config, `${topic}-value`);
    }
    await root.close();
    await admin.disconnect();
  }
}

/**
 * How many of the closable window rows ClickHouse does not hold with their expected count, every
 * partial final: read once, after the run, merged as FINAL and the analysts' views do (the latest
 * version of each partition's partial, summed over partitions).
 */
async function wrongRows(ch: ClickHouseClient, closable: ExpectedAnswer['windows']): Promise<number> {
  if (closable.length === 0) return 0;
  const starts = [...new Set(closable.map((w) => w.window_start / 1000))];
  const rows = await (
    await ch.query({
      query: `SELECT toUnixTimestamp(window_start) * 1000 AS w, event_type, campaign_id, source_partition AS p,
                     argMax(events, version) AS events, argMax(final, version) AS final
              FROM event_counts_1m_partial WHERE toUnixTimestamp(window_start) IN (${starts.join(', ')})
              GROUP BY w, event_type, campaign_id, p`,
      format: 'JSONEachRow',
    })
  ).json<{ w: string; event_type: string; campaign_id: string; events: string; final: number }>();
  const merged = new Map<string, { events: number; final: number }>();
  for (const r of rows) {
    const key = `${Number(r.w)}|${r.event_type}|${r.campaign_id}`;
    const m = merged.get(key) ?? { events: 0, final: 1 };
    m.events += Number(r.events);
    m.final = Math.min(m.final, Number(r.final));
    merged.set(key, m);
  }
  return closable.filter((w) => {
    const m = merged.get(`${w.window_start}|${w.event_type}|${w.campaign_id}`);
    return !m || m.events !== w.events || m.final !== 1;
  }).length;
}

/** One change of a window row seen by the poller: its merged count, whether every partial is final, when. */
interface Seen {
  events: number;
  final: number;
  /** Wall time the poll that saw it was sent (it was not visible to the poll before, at most ~100 ms plus that poll's duration earlier). */
  at: number;
  /** The newest partial's version: the processing time its partition emitted it. */
  emitted: number;
}

/** Per window (the worst of its rows): `measure` of the moment its rows were first complete and final. */
function perWindowLatency(
  closable: ExpectedAnswer['windows'],
  seen: Map<string, Seen[]>,
  measure: (visible: Seen, w: ExpectedAnswer['windows'][number]) => number,
): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const w of closable) {
    const key = new Date(w.window_start).toISOString().slice(11, 16);
    const visible = visibleEntry(seen.get(`${w.window_start}|${w.event_type}|${w.campaign_id}`), w.events);
    const latency = visible === undefined ? null : measure(visible, w);
    out[key] = out[key] === null || latency === null ? null : Math.max(out[key] ?? -Infinity, latency);
  }
  return out;
}

/** The first entry of a row's history that shows `events` with final = 1. */
function visibleEntry(history: Seen[] | undefined, events: number): Seen | undefined {
  return history?.find((h) => h.events === events && h.final === 1);
}

/** When a row's history first shows `events` with final = 1. */
function visibleAt(history: Seen[] | undefined, events: number): number | undefined {
  return visibleEntry(history, events)?.at;
}

/** A TCP port free on loopback right now (the processor serves its metrics there). */
function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolvePort(port));
    });
  });
}
