import { startStream } from '../../src/process';
import { createLogger } from '../../src/telemetry';
import eventCounts from '../../streams/event-counts';
import { MAX_PENDING_ROWS, PENDING_ROWS_BOUND } from '../helpers/outage-run';
import { sleep } from '../helpers/processes';
import { countsOf, expectExactAnswer } from '../helpers/reference';
import { startSlowProxy } from '../helpers/slow-proxy';
import { finishAndCompare, lagOf, SegmentedWorkload, setUpScenario, waitForNoLag } from './harness';
import { recordScenario } from './results';
import { SCALE, sizes } from './scale';

/** Heap the processor may grow by while the sink is slow: far below what unbounded buffering of the input would take. */
const HEAP_GROWTH_LIMIT_MB = 256;
const mb = (bytes: number) => Math.round(bytes / 1048576);

/**
 * A slow sink: ClickHouse behind a TCP proxy on loopback that holds every
 * response back for seconds, while input keeps arriving faster than the
 * sink takes it. The processor (in this process, so its pending rows and heap
 * can be sampled) must stop reading rather than buffer the input (pending rows
 * and heap stay bounded, lag grows instead), catch up by itself once the
 * proxy stops delaying, and end with exactly the generator's answer.
 */
describe(`the reference stream with a slow sink (${SCALE} scale)`, () => {
  it('keeps memory bounded while ClickHouse is slow and recovers the lag once it is fast again', async () => {
    const { before, during, delayMs, slowForMs } = sizes.slowSink;
    const s = await setUpScenario('f_slow');
    const upstream = new URL(s.ctx.config.clickhouse.url);
    const proxy = await startSlowProxy({ host: upstream.hostname, port: Number(upstream.port) });
    const proxied = new URL(upstream);
    proxied.port = String(proxy.port);
    const config = { ...s.ctx.config, clickhouse: { ...s.ctx.config.clickhouse, url: proxied.toString().replace(/\/$/, '') } };
    const logger = createLogger(process.env.SLUICE_TEST_LOG_LEVEL ?? 'error');
    const started = Date.now();
    const running = await startStream(eventCounts, config, { groupId: s.ctx.group, topic: s.topic, flushIntervalMs: 500, maxPendingRows: MAX_PENDING_ROWS, sessionTimeoutMs: 10_000 }, logger);
    let stopped = false;
    try {
      const workload = new SegmentedWorkload(s.ctx.config, s.topic, 31);
      await workload.produce(before);
      await waitForNoLag(s, 90_000);
      const memoryBefore = process.memoryUsage();
      const checkpointsBefore = running.runner.status().checkpoints;

      proxy.setDelay(delayMs);
      const slowFrom = Date.now();
      const production = workload.produce(during);
      production.catch(() => undefined); // awaited below
      let maxPendingRows = 0;
      let heapMax = 0;
      let rssMax = 0;
      let maxLag = 0;
      let pausedSamples = 0;
      while (Date.now() - slowFrom < slowForMs) {
        const status = running.runner.status();
        const memory = process.memoryUsage();
        maxPendingRows = Math.max(maxPendingRows, status.pendingRows);
        heapMax = Math.max(heapMax, memory.heapUsed);
        rssMax = Math.max(rssMax, memory.rss);
        maxLag = Math.max(maxLag, await lagOf(s.ctx.admin, s.ctx.group, s.topic));
        if (status.paused.length > 0) pausedSamples += 1;
        await sleep(500);
      }
      await production;
      const lagWhenFast = await lagOf(s.ctx.admin, s.ctx.group, s.topic);
      const checkpointsWhileSlow = running.runner.status().checkpoints - checkpointsBefore;

      proxy.setDelay(0);
      const recoveredAfterMs = await waitForNoLag(s, sizes.timeoutMs / 2);
      stopped = true;
      await running.stop();
      const expected = workload.expected();
      const report = await finishAndCompare(s, expected);
      const figures = {
        delayMs,
        slowForMs,
        checkpointsWhileSlow,
        maxPendingRows,
        pendingRowsBound: PENDING_ROWS_BOUND,
        pausedSamples,
        maxLag,
        lagWhenFast,
        recoveredAfterMs,
        heapMbBefore: mb(memoryBefore.heapUsed),
        heapMbMax: mb(heapMax),
        rssMbBefore: mb(memoryBefore.rss),
        rssMbMax: mb(rssMax),
        proxiedChunks: proxy.forwardedChunks(),
      };
      recordScenario({ scenario: `slow sink (${delayMs} ms per response, ${Math.round(slowForMs / 1000)} s)`, ...countsOf(report, expected), seconds: (Date.now() - started) / 1000, figures });

      // The sink really was the bottleneck: work piled up in Kafka, not in the processor.
      expect(checkpointsWhileSlow).toBeGreaterThan(0);
      expect(lagWhenFast).toBeGreaterThan(0);
      expect(pausedSamples).toBeGreaterThan(0);
      expect(maxPendingRows).toBeLessThanOrEqual(PENDING_ROWS_BOUND);
      expect(figures.heapMbMax - figures.heapMbBefore).toBeLessThan(HEAP_GROWTH_LIMIT_MB);
      expectExactAnswer(report, expected);
    } finally {
      if (!stopped) await running.stop().catch(() => undefined);
      await proxy.close();
      await s.ctx.cleanup();
    }
  }, sizes.timeoutMs);
});
