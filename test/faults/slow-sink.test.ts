import { startStream } from '../../src/process';
import { createLogger } from '../../src/telemetry';
import eventCounts from '../../streams/event-counts';
import { MAX_PENDING_ROWS, PENDING_ROWS_BOUND } from '../helpers/outage-run';
import { spawnSluice, waitFor } from '../helpers/processes';
import { sleep } from '../../src/clock';
import { countsOf, expectExactAnswer, unexpectedLate } from '../helpers/reference';
import { startSlowProxy } from '../helpers/slow-proxy';
import { liveHeapMb } from '../helpers/live-heap';
import {
  finishAndCompare,
  lagOf,
  PARTITIONS,
  processorArgs,
  SegmentedWorkload,
  setUpScenario,
  waitForNoLag,
} from './harness';
import { InputFeeder, unreadOf } from '../helpers/input-feeder';
import { recordScenario } from './results';
import { SCALE, sizes } from './scale';

/** Live heap the processor may grow by while the sink is slow: far below what unbounded buffering of the input would take. */
const HEAP_GROWTH_LIMIT_MB = 256;
/** Live heap (after a full collection, which stops the processor for a moment) is sampled this often. */
const LIVE_HEAP_EVERY_MS = 5000;
/** A response delay long enough that no checkpoint completes while members come and go (below the client's 30 s timeout). */
const STALL_MS = 20_000;
/**
 * While the sink is slow, more input is produced whenever less than this waits unread: the rows at which the
 * processor pauses, so each time it reads on it finds more than it may take, however fast it and the sink are.
 */
const BACKLOG_FLOOR = 2 * MAX_PENDING_ROWS;
/** How long past slowForMs the sink stays slow while the processor has not yet been seen paused with input waiting. */
const BACKPRESSURE_LIMIT_MS = 120_000;
const mb = (bytes: number) => Math.round(bytes / 1048576);

/**
 * A slow sink: ClickHouse behind a TCP proxy on loopback that holds every
 * response back for seconds, while input keeps arriving faster than the
 * sink takes it: a large segment at once, then another whenever the unread
 * input runs low, until the sink is fast again. The processor (in this
 * process, so its pending rows and heap can be sampled) must stop reading
 * rather than buffer the input (pending rows and heap stay bounded, lag grows
 * instead), catch up by itself once the proxy stops delaying, and end with
 * exactly the generator's answer. While it is paused, a second member joins
 * and leaves (second test): partitions that move away paused and come back
 * must be read again.
 */
describe(`the reference stream with a slow sink (${SCALE} scale)`, () => {
  async function runSlowSink(label: string, handOver: boolean): Promise<void> {
    const { before, during, delayMs, slowForMs } = sizes.slowSink;
    const s = await setUpScenario(label);
    const upstream = new URL(s.ctx.config.clickhouse.url);
    const proxy = await startSlowProxy({ host: upstream.hostname, port: Number(upstream.port) });
    const proxied = new URL(upstream);
    proxied.port = String(proxy.port);
    const config = {
      ...s.ctx.config,
      clickhouse: { ...s.ctx.config.clickhouse, url: proxied.toString().replace(/\/$/, '') },
    };
    const logger = createLogger(process.env.SLUICE_TEST_LOG_LEVEL ?? 'error');
    const started = Date.now();
    const running = await startStream(
      eventCounts,
      config,
      {
        groupId: s.ctx.group,
        topic: s.topic,
        flushIntervalMs: 500,
        maxPendingRows: MAX_PENDING_ROWS,
        sessionTimeoutMs: 10_000,
      },
      logger,
    );
    let stopped = false;
    let feeder: InputFeeder | undefined;
    try {
      const workload = new SegmentedWorkload(s.ctx.config, s.topic, 31);
      await workload.produce(before);
      await waitForNoLag(s, 90_000);
      const memoryBefore = process.memoryUsage();
      const liveHeapMbBefore = liveHeapMb();
      const checkpointsBefore = running.runner.status().checkpoints;

      proxy.setDelay(delayMs);
      const slowFrom = Date.now();
      const unread = () => unreadOf(s.ctx.admin, s.topic, running.runner.status().positions);
      feeder = new InputFeeder((count) => workload.produce(count), {
        first: during,
        next: Math.ceil(during / 4),
        floor: BACKLOG_FLOOR,
        unread,
      });
      let maxPendingRows = 0;
      let heapMax = 0;
      let liveHeapMbMax = liveHeapMbBefore;
      let liveHeapAt = Date.now();
      let rssMax = 0;
      let maxLag = 0;
      let pausedSamples = 0;
      /** Samples in which the processor had paused partitions while input waited for it in Kafka: backpressure. */
      let pausedWithInputWaiting = 0;
      // Slow for slowForMs, and in any case until backpressure was seen and a slow checkpoint completed (or
      // the limit passed: the figures then say so). On a loaded machine one checkpoint of delayed inserts
      // can take longer than slowForMs.
      const waitingForEvidence = () =>
        pausedWithInputWaiting === 0 || running.runner.status().checkpoints === checkpointsBefore;
      while (
        Date.now() - slowFrom < slowForMs ||
        (waitingForEvidence() && Date.now() - slowFrom < slowForMs + BACKPRESSURE_LIMIT_MS)
      ) {
        const status = running.runner.status();
        const memory = process.memoryUsage();
        maxPendingRows = Math.max(maxPendingRows, status.pendingRows);
        heapMax = Math.max(heapMax, memory.heapUsed);
        rssMax = Math.max(rssMax, memory.rss);
        if (Date.now() - liveHeapAt >= LIVE_HEAP_EVERY_MS) {
          liveHeapMbMax = Math.max(liveHeapMbMax, liveHeapMb());
          liveHeapAt = Date.now();
        }
        maxLag = Math.max(maxLag, await lagOf(s.ctx.admin, s.ctx.group, s.topic));
        if (status.paused.length > 0) {
          pausedSamples += 1;
          if ((await unread()) > 0) pausedWithInputWaiting += 1;
        }
        await sleep(500);
      }
      // Input arrived until now, and whatever was read in the last delayMs cannot be committed yet (each
      // checkpoint waits at least one delayed insert before its commit): the recovery has lag to work off.
      const { produced: producedWhileSlow, segments: segmentsWhileSlow } = await feeder.stop();
      const slowMs = Date.now() - slowFrom;
      const checkpointsWhileSlow = running.runner.status().checkpoints - checkpointsBefore;

      let pausedBeforeMove = 0;
      let visitorExit: number | null = 0;
      if (handOver) {
        // The sink stalls (no checkpoint completes for a while), so partitions stay paused for backpressure;
        // a second member joins (and takes some of them), then leaves (and gives them back). Partitions
        // paused before the move must flow again after it.
        proxy.setDelay(STALL_MS);
        await workload.produce(during); // more than one round of fetches holds: the rest waits, paused
        const status = () => running.runner.status();
        await waitFor(
          'most partitions paused by backpressure',
          async () => status().paused.length > PARTITIONS / 2,
          60_000,
        ).catch((err: Error) => {
          throw new Error(`${err.message}; first member: ${JSON.stringify(status())}`, { cause: err });
        });
        pausedBeforeMove = status().paused.length;
        const visitor = spawnSluice(processorArgs(s), s.env);
        await waitFor(
          'the second member taking partitions over',
          async () => status().assigned.length < PARTITIONS,
          60_000,
        );
        visitor.process.kill('SIGTERM');
        visitorExit = await visitor.exited;
        await waitFor(
          'every partition back with the first member',
          async () => status().assigned.length === PARTITIONS,
          60_000,
        );
      }
      const lagWhenFast = await lagOf(s.ctx.admin, s.ctx.group, s.topic);

      proxy.setDelay(0);
      const recoveredAfterMs = await waitForNoLag(s, 120_000).catch((err: Error) => {
        throw new Error(`${err.message}; first member: ${JSON.stringify(running.runner.status())}`, { cause: err });
      });
      stopped = true;
      await running.stop();
      const expected = workload.expected();
      const report = await finishAndCompare(s, expected);
      const figures = {
        delayMs,
        slowForMs,
        slowMs,
        producedWhileSlow,
        segmentsWhileSlow,
        checkpointsWhileSlow,
        ...(handOver
          ? {
              pausedBeforeMove,
              visitorExit: String(visitorExit),
              windowMismatches: report.windows.mismatches.length,
              unexpectedLate: unexpectedLate(report, expected),
            }
          : {}),
        maxPendingRows,
        pendingRowsBound: PENDING_ROWS_BOUND,
        pausedSamples,
        pausedWithInputWaiting,
        maxLag,
        lagWhenFast,
        recoveredAfterMs,
        liveHeapMbBefore,
        liveHeapMbMax,
        // heapUsed as sampled, garbage included: shown, not judged (it follows the collector's timing).
        heapMbBefore: mb(memoryBefore.heapUsed),
        heapMbMax: mb(heapMax),
        rssMbBefore: mb(memoryBefore.rss),
        rssMbMax: mb(rssMax),
        proxiedChunks: proxy.forwardedChunks(),
      };
      recordScenario({
        scenario: `slow sink (${delayMs} ms per response, ${Math.round(slowForMs / 1000)} s)${handOver ? ', partitions handed over while paused' : ''}`,
        ...countsOf(report, expected),
        seconds: (Date.now() - started) / 1000,
        figures,
      });

      // The sink really was the bottleneck: work piled up in Kafka, not in the processor.
      expect(checkpointsWhileSlow).toBeGreaterThan(0);
      expect(visitorExit).toBe(0);
      expect(lagWhenFast).toBeGreaterThan(0);
      expect(pausedSamples).toBeGreaterThan(0);
      expect(pausedWithInputWaiting).toBeGreaterThan(0); // it stopped reading while input waited in Kafka
      expect(maxPendingRows).toBeLessThanOrEqual(PENDING_ROWS_BOUND);
      expect(liveHeapMbMax - liveHeapMbBefore).toBeLessThan(HEAP_GROWTH_LIMIT_MB);
      expectExactAnswer(report);
    } finally {
      await feeder?.stop().catch(() => undefined);
      if (!stopped) await running.stop().catch(() => undefined);
      await proxy.close();
      if (process.env.SLUICE_FAULTS_KEEP !== '1') await s.ctx.cleanup();
      else console.log(`kept database ${s.ctx.id}`);
    }
  }

  it(
    'keeps memory bounded while ClickHouse is slow and recovers the lag once it is fast again',
    () => runSlowSink('f_slow', false),
    sizes.timeoutMs,
  );

  it(
    'reads partitions again that were handed to another member and back while paused by a stalled sink',
    () => runSlowSink('f_slow_move', true),
    sizes.timeoutMs,
  );
});
