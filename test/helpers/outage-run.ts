import {
  DEFAULT_START_TIME,
  computeExpected,
  createEventEncoder,
  produceWorkload,
  type ExpectedAnswer,
  type WorkloadLogEntry,
} from '../../src/generator';
import { partitionForKey } from '../../src/generator/partition';
import { startStream, type RunningStream } from '../../src/process';
import { createLogger } from '../../src/telemetry';
import eventCounts from '../../streams/event-counts';
import { createClickHouse } from '../../src/sink/clickhouse/client';
import { InputFeeder, unreadOf } from './input-feeder';
import { scopeOf, type PrivateService, type PrivateStack } from './private-stack';
import { waitFor } from './processes';
import { sleep } from '../../src/clock';
import { compareWithExpected, expectExactAnswer, type ReferenceReport } from './reference';
import { endOffsetSum } from '../../src/kafka';

const PARTITIONS = 6;
const HOUR_MS = 3_600_000;
/** Records of the first half re-sent after the outage: only dedup marks that survived it can suppress them. */
const RESENDS = 200;
/** The runner's row budget in these tests; with this, the sink checkpoints often and the bound below means something. */
export const MAX_PENDING_ROWS = 5000;
/** After every partition paused, in-flight batches may finish for this long; from then on nothing may be read. */
const SETTLE_MS = 5000;
/**
 * How long past the requested outage the service stays down while the processor has not paused yet.
 * A checkpoint that needs Kafka fails only once its producer has used up its retries (10-20 s after
 * Kafka went): as long as a short outage asked for.
 */
const PAUSE_LIMIT_MS = 60_000;
/**
 * Rows the processor must hold for the next checkpoint when Kafka or Redis is stopped: that checkpoint
 * needs the service (Redis: the sink's write lease and the window state; Kafka: at the workload's 0.6%
 * of dead letters and late events, these rows come with some, which go to Kafka).
 */
const MID_STREAM_ROWS = 2000;

/** What the run measured while the service was down and after it came back. */
export interface OutageFigures {
  service: PrivateService;
  outageMs: number;
  /** From stopping the service until every partition was paused (-1: never, within the outage and its limit). */
  pausedAfterMs: number;
  /** Records in the topic the processor had not read when the service was stopped (Kafka: it was mid-stream). */
  unreadAtStop: number;
  /** Rows the processor held for its next checkpoint when the service was stopped. */
  pendingRowsAtStop: number;
  /** Records produced while the service was down. */
  producedDuringOutage: number;
  /** Records processed while the service was down (the input read before consumption paused). */
  processedDuringOutage: number;
  /** Records processed in the last part of the outage, after the pause had settled: must be 0. */
  processedWhilePaused: number;
  /** Fewest records waiting unread in the last part of the outage, after the pause had settled (-1: Kafka was down). */
  unreadWhilePaused: number;
  /** Workloads produced while ClickHouse was down (the second, and more whenever little waited unread). */
  workloadsDuringOutage: number;
  /** Offsets committed while the service was down: must be 0 for ClickHouse (-1: not measurable, Kafka itself was down). */
  committedDuringOutage: number;
  /** Offsets committed in the last part of the outage, after the pause had settled: must be 0 (-1: Kafka was down). */
  committedWhilePaused: number;
  maxPendingRows: number;
  /** Most assigned partitions the processor held no position for while the service was down: given up, to be restored. */
  restoringPartitionsMax: number;
  rssMbBefore: number;
  rssMbMax: number;
  heapMbBefore: number;
  heapMbMax: number;
  /** From starting the service again until the first checkpoint committed. */
  resumedAfterMs: number;
  /** From starting the service again until every record was processed and committed. */
  caughtUpAfterMs: number;
  /** Events let through without dedup because Redis was down: must be 0 (the default is to pause). */
  dedupFailOpen: number;
}

export interface OutageResult {
  figures: OutageFigures;
  /** The outage asked for (what the figures' outageMs must reach). */
  requestedOutageMs: number;
  expected: ExpectedAnswer;
  report: ReferenceReport;
}

const sum = (values: Iterable<number>) => [...values].reduce((a, b) => a + b, 0);
const mb = (bytes: number) => Math.round(bytes / 1048576);

/** Committed offsets of the group, summed; -1 while they cannot be read (Kafka down). */
async function committedOffsets(stack: PrivateStack, group: string, topic: string): Promise<number> {
  try {
    const [offsets] = await stack.admin.fetchOffsets(group, [topic]);
    return sum(offsets!.partitions.map((p) => Math.max(0, Number(p.offset))));
  } catch {
    return -1;
  }
}

/** Per partition the processor holds, the next offset it reads: how far it got. */
const positions = (running: RunningStream) => sum(Object.values(running.runner.status().positions).map(Number));
/** Records the processor has processed (counted again when processed again): positions vanish with partitions given up. */
const processed = (running: RunningStream) => running.runner.status().counters.recordsIn;

/**
 * Produces `before` records of the reference workload, has an unbounded
 * processor catch up with them, stops `service` while `during` more records
 * (a second workload, plus re-sends of first-half records) arrive, starts it again, lets the
 * processor catch up, stops it (SIGTERM path), and finishes with a bounded
 * run, as after any crash. Returns what it measured and the comparison of
 * ClickHouse, .dlq and .late with the generator's answer.
 *
 * The service stays down for `outageMs`, and in any case until the processor
 * has paused and stayed paused for a while: the pause is what the scenario
 * tests, and how soon the runtime notices an outage is its own business
 * (up to PAUSE_LIMIT_MS more; then the figures say it never paused).
 *
 * Kafka and Redis are stopped once the processor is seen mid-stream (the
 * second workload produced just before, part of it processed, more unread,
 * rows waiting for a checkpoint that needs the service), so a checkpoint
 * fails and the pause holds: a processor idle when Redis goes only finds out
 * batch by batch, pausing and resuming each partition again and again. The
 * re-sends arrive during a Redis outage and after a Kafka one (Kafka cannot
 * take input while it is down). ClickHouse is stopped while the processor is
 * idle, and all the input arrives during the outage (the second workload).
 * While Redis or ClickHouse is down, more arrives whenever little waits
 * unread, so input waits while the processor is paused however fast it read
 * up to the pause; with ClickHouse down, nothing may be committed meanwhile.
 *
 * Each label gets its own database and key prefix, so scenarios can share a stack.
 */
export async function runOutage(
  stack: PrivateStack,
  service: PrivateService,
  options: { label: string; before: number; during: number; outageMs: number },
): Promise<OutageResult> {
  const { config } = await scopeOf(stack, options.label);
  const topic = `${options.label}.events`;
  const group = `${options.label}.group`;
  await stack.createTopic(topic, PARTITIONS);
  await stack.createTopic(`${topic}.dlq`);
  await stack.createTopic(`${topic}.late`);

  const first = await produceWorkload({ config, topic, count: options.before, seed: 7, keepLog: true });
  const log: WorkloadLogEntry[] = [...first.log!];

  const logger = createLogger(process.env.SLUICE_TEST_LOG_LEVEL ?? 'error');
  const start = () =>
    startStream(
      eventCounts,
      config,
      { groupId: group, topic, flushIntervalMs: 500, maxPendingRows: MAX_PENDING_ROWS, sessionTimeoutMs: 10_000 },
      logger,
    );
  let running = await start();
  let stopped = false;
  let feeder: InputFeeder | undefined;
  try {
    const firstEnd = await endOffsetSum(stack.admin, topic);
    await waitFor(
      'the first half processed and committed',
      async () => (await committedOffsets(stack, group, topic)) === firstEnd,
      90_000,
    );

    let committedBefore = await committedOffsets(stack, group, topic);
    const memoryBefore = process.memoryUsage();

    // The input keeps arriving while the service is down: a second workload hours later, then re-sends
    // of first-half records (read only after the service is back, if the pause works).
    let seq = options.before;
    let workloads = 1;
    // Each workload starts 3 hours of event time after the one before, so none of its events is late for their windows.
    const produceWorkloadAfter = async (count: number) => {
      const next = await produceWorkload({
        config,
        topic,
        count,
        seed: 7 + workloads,
        startTime: DEFAULT_START_TIME + 3 * HOUR_MS * workloads++,
        keepLog: true,
      });
      for (const e of next.log!) log.push({ ...e, seq: seq++ });
    };
    const produceSecond = () => produceWorkloadAfter(options.during);
    const produceResends = async () => {
      const encode = createEventEncoder(first.schemaId);
      const resends = first.log!.filter((e) => e.kind === 'valid').slice(0, RESENDS);
      const producer = stack.kafka.producer({ idempotent: true });
      await producer.connect();
      await producer.send({
        topic,
        messages: resends.map((e) => ({
          key: e.key,
          value: encode(e.event!),
          partition: partitionForKey(Buffer.from(e.key!), PARTITIONS),
        })),
      });
      await producer.disconnect();
      for (const e of resends)
        log.push({ seq: seq++, kind: 'duplicate', key: e.key, eventId: e.eventId, event: e.event, duplicateOf: e.seq });
    };
    const kafkaDown = service === 'kafka';
    const midStream = service !== 'clickhouse';
    let end = firstEnd;
    if (midStream) {
      // The service goes while the processor is busy: it is stopped (as an operator restarts it) while the
      // second workload arrives, and the service is stopped once a quarter of that workload was processed,
      // more is unread, and rows wait for the next checkpoint.
      await running.stop();
      await produceSecond();
      running = await start();
      const target = firstEnd + Math.floor(options.during / 4);
      end = await endOffsetSum(stack.admin, topic);
      // Polled here rather than with waitFor: nothing may run between the last look and the stop.
      const deadline = Date.now() + 90_000;
      for (;;) {
        committedBefore = await committedOffsets(stack, group, topic); // read first: the stop follows the check at once
        if (
          positions(running) >= target &&
          positions(running) < end &&
          running.runner.status().pendingRows >= MID_STREAM_ROWS
        )
          break;
        if (Date.now() > deadline) {
          throw new Error(
            `the processor was never seen mid-stream (a quarter of the second workload processed, more unread, ${MID_STREAM_ROWS} rows waiting): end offset ${end}; runner status: ${JSON.stringify(running.runner.status())}`,
          );
        }
        await sleep(100);
      }
    }
    // Synchronous from the last look (above) to the stop signal (sent as stack.stop begins).
    const processedBefore = processed(running);
    const unreadAtStop = end - positions(running);
    const pendingRowsAtStop = running.runner.status().pendingRows;
    const stoppedAt = Date.now();
    await stack.stop(service);
    const unread = () => unreadOf(stack.admin, topic, running.runner.status().positions);
    // Input that outlasts what the processor may take in before it pauses, however fast it is: with Redis
    // down, a fast processor can work off all that waited in the moment before the service is gone.
    if (!kafkaDown)
      feeder = new InputFeeder((count) => produceWorkloadAfter(count), {
        first: midStream ? Math.ceil(options.during / 4) : options.during,
        next: Math.ceil(options.during / 4),
        floor: 2 * MAX_PENDING_ROWS,
        unread,
      });

    // While it is down: sample how far consumption got, what was committed and how much is held in memory,
    // for the outage asked for and until every partition has been paused for SETTLE_MS and two samples more.
    let pausedAt: number | undefined;
    let maxPendingRows = 0;
    let restoringPartitionsMax = 0;
    let rssMax = 0;
    let heapMax = 0;
    let committedMax = committedBefore;
    const settled: number[] = [];
    const committedSettled: number[] = [];
    const unreadSettled: number[] = [];
    const pausedLongEnough = () => pausedAt !== undefined && Date.now() - pausedAt >= SETTLE_MS + 1000;
    while (
      Date.now() - stoppedAt < options.outageMs ||
      (!pausedLongEnough() && Date.now() - stoppedAt < options.outageMs + PAUSE_LIMIT_MS)
    ) {
      const status = running.runner.status();
      const memory = process.memoryUsage();
      maxPendingRows = Math.max(maxPendingRows, status.pendingRows);
      restoringPartitionsMax = Math.max(
        restoringPartitionsMax,
        status.assigned.filter((p) => status.positions[p] === undefined).length,
      );
      rssMax = Math.max(rssMax, memory.rss);
      heapMax = Math.max(heapMax, memory.heapUsed);
      const committed = kafkaDown ? -1 : await committedOffsets(stack, group, topic);
      committedMax = Math.max(committedMax, committed);
      if (pausedAt === undefined && status.assigned.length > 0 && status.paused.length === status.assigned.length)
        pausedAt = Date.now();
      if (pausedAt !== undefined && Date.now() - pausedAt > SETTLE_MS) {
        settled.push(processed(running));
        committedSettled.push(committed);
        if (!kafkaDown) unreadSettled.push(await unread());
      }
      await sleep(500);
    }
    // Still down: the feeder's last records and the re-sends (Kafka is up) arrive before the service returns.
    const fed = await feeder?.stop();
    if (!kafkaDown) await produceResends();
    const endDuringOutage = kafkaDown ? undefined : await endOffsetSum(stack.admin, topic);
    const outageMs = Date.now() - stoppedAt;
    const processedAtRestart = processed(running);

    const restartedAt = Date.now();
    const checkpointsBefore = running.runner.status().checkpoints;
    await stack.start(service);
    await waitFor(
      'a checkpoint after the service returned',
      async () => running.runner.status().checkpoints > checkpointsBefore,
      60_000,
    ).catch((err: Error) => {
      throw new Error(
        `${err.message}; runner status: ${JSON.stringify(running.runner.status())}; sink: ${JSON.stringify(running.sinkStats())}`,
      );
    });
    const resumedAfterMs = Date.now() - restartedAt;
    if (kafkaDown) await produceResends();
    const finalEnd = await endOffsetSum(stack.admin, topic);
    await waitFor(
      'every record processed and committed',
      async () => (await committedOffsets(stack, group, topic)) === finalEnd,
      90_000,
    );
    const caughtUpAfterMs = Date.now() - restartedAt;

    const dedupFailOpen = running.runner.status().counters.dedupFailOpen;
    stopped = true;
    await running.stop();
    const bounded = await startStream(eventCounts, config, { bounded: true, groupId: group, topic }, logger);
    await bounded.done;

    const expected = computeExpected(log);
    const clickhouse = createClickHouse(config.clickhouse, config.clickhouse.database);
    const report = await compareWithExpected(clickhouse, stack.kafka, topic, expected);
    await clickhouse.close();
    return {
      expected,
      report,
      requestedOutageMs: options.outageMs,
      figures: {
        service,
        outageMs,
        pausedAfterMs: pausedAt === undefined ? -1 : pausedAt - stoppedAt,
        unreadAtStop,
        pendingRowsAtStop,
        producedDuringOutage: (endDuringOutage ?? finalEnd) - firstEnd,
        processedDuringOutage: processedAtRestart - processedBefore,
        processedWhilePaused: settled.length > 0 ? settled[settled.length - 1]! - settled[0]! : -1,
        unreadWhilePaused: unreadSettled.length > 0 ? Math.min(...unreadSettled) : -1,
        workloadsDuringOutage: fed?.segments ?? 0,
        committedDuringOutage: kafkaDown ? -1 : committedMax - committedBefore,
        committedWhilePaused:
          kafkaDown || committedSettled.length === 0 ? -1 : Math.max(...committedSettled) - committedSettled[0]!,
        maxPendingRows,
        restoringPartitionsMax,
        rssMbBefore: mb(memoryBefore.rss),
        rssMbMax: mb(rssMax),
        heapMbBefore: mb(memoryBefore.heapUsed),
        heapMbMax: mb(heapMax),
        resumedAfterMs,
        caughtUpAfterMs,
        dedupFailOpen,
      },
    };
  } finally {
    await feeder?.stop().catch(() => undefined);
    if (!stopped) await running.stop().catch(() => undefined);
  }
}

/** Rows the runner may hold while paused: twice its budget, plus one fetch per partition that was already in flight. */
export const PENDING_ROWS_BOUND = 2 * MAX_PENDING_ROWS + 6 * 2 * 5000;

/**
 * What every outage must show: every partition paused, nothing read once
 * paused, bounded memory, no unchecked events, resumed by itself, and
 * afterwards exactly the generator's answer. With Kafka or Redis down: it
 * went while the processor was mid-stream; with Redis down nothing committed
 * once paused, with ClickHouse down (processor idle when it went) nothing
 * committed at all.
 */
export function expectOutageHandled({ figures, report, requestedOutageMs }: OutageResult): void {
  console.log(JSON.stringify(figures));
  expect(figures.outageMs).toBeGreaterThanOrEqual(requestedOutageMs);
  expect(figures.pausedAfterMs).toBeGreaterThanOrEqual(0); // every partition was paused
  // Consumption stopped before the input ran out, and nothing more was read once it had paused.
  expect(figures.processedDuringOutage).toBeLessThan(figures.producedDuringOutage);
  expect(figures.processedWhilePaused).toBe(0);
  if (figures.service !== 'clickhouse') {
    expect(figures.unreadAtStop).toBeGreaterThan(0); // the processor was mid-stream when the service went
    expect(figures.pendingRowsAtStop).toBeGreaterThanOrEqual(MID_STREAM_ROWS);
  }
  if (figures.service !== 'kafka') expect(figures.unreadWhilePaused).toBeGreaterThan(0); // input waited while it was paused
  if (figures.service === 'redis') expect(figures.committedWhilePaused).toBe(0);
  if (figures.service === 'clickhouse') expect(figures.committedDuringOutage).toBe(0);
  expect(figures.maxPendingRows).toBeLessThanOrEqual(PENDING_ROWS_BOUND);
  expect(figures.dedupFailOpen).toBe(0);
  expectExactAnswer(report);
}
