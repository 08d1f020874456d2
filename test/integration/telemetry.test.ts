import { computeExpected, produceWorkload, type ExpectedAnswer } from '../../src/generator';
import { createKafka } from '../../src/kafka';
import { createTestContext, type TestContext } from '../helpers/context';
import { streamCounters, type RunnerStatus } from '../../src/process';
import { createServer, type Server } from 'node:http';
import { DEFAULT_HTTP_PORT, StreamMonitor } from '../../src/process/monitor';
import { spawnSluice, waitFor, type Child } from '../helpers/processes';
import { sleep } from '../../src/clock';
import { metricValue, observabilityUrl } from '../helpers/telemetry';
import { readTopic } from '../helpers/topics';

/**
 * A live processor's /metrics against what the stream really wrote: ClickHouse
 * rows, the records in `.dlq` and `.late`, and the generator's own answer.
 */
describe('processor metrics and health', () => {
  let ctx: TestContext;
  let topic: string;
  let expected: ExpectedAnswer;
  let child: Child | undefined;

  beforeAll(async () => {
    ctx = await createTestContext('telemetry');
    topic = await ctx.createTopic('events', 3);
    await ctx.createTopic('events.dlq', 1);
    await ctx.createTopic('events.late', 1);
    const produced = await produceWorkload({
      config: ctx.config,
      topic,
      count: 6000,
      seed: 11,
      duplicateRatio: 0.03,
      lateRatio: 0.01,
      poisonRatio: 0.01,
      keepLog: true,
    });
    expected = computeExpected(produced.log!);
  }, 40_000);

  afterAll(async () => {
    if (child && child.process.exitCode === null) {
      child.process.kill('SIGKILL');
      await child.exited;
    }
    await ctx.cleanup();
  });

  it('serves counts equal to ClickHouse, .dlq and .late, per-partition lag, and health', async () => {
    const env = ctx.childEnv('info');
    child = spawnSluice(
      ['run', 'event-counts', '--topic', topic, '--group', ctx.group, '--flush-interval', '300', '--http-port', '0'],
      env,
    );
    const url = await observabilityUrl(child);

    expect((await fetch(`${url}/healthz`)).status).toBe(200);

    // Everything read and committed: no lag on any partition, nothing waiting for the sink.
    let text = '';
    await waitFor(
      'the processor to catch up and commit',
      async () => {
        await fetch(`${url}/status.json?fresh=1`);
        text = await (await fetch(`${url}/metrics`)).text();
        try {
          return (
            metricValue(text, 'sluice_records_in_total', { stream: 'event-counts' }) === expected.records &&
            metricValue(text, 'sluice_consumer_lag', { topic }) === 0 &&
            metricValue(text, 'sluice_pending_rows') === 0 &&
            metricValue(text, 'sluice_checkpoint_age_seconds') < 5
          );
        } catch {
          return false;
        }
      },
      45_000,
    );
    // The last checkpoint (sink, .dlq, .late, offsets) committed: the group's offsets reached the end.
    await waitFor('the group to commit every offset', async () => {
      const [committed] = await ctx.admin.fetchOffsets(ctx.group, [topic]);
      return committed!.partitions.reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0) === expected.records;
    });
    await fetch(`${url}/status.json?fresh=1`); // end offsets of .dlq/.late are polled, not read at scrape time
    text = await (await fetch(`${url}/metrics`)).text();

    const kafka = createKafka(ctx.config);
    const [dlq, late] = await Promise.all([readTopic(kafka, `${topic}.dlq`), readTopic(kafka, `${topic}.late`)]);
    const rawRows = Number(
      (
        (await (
          await ctx.clickhouse.query({ query: 'SELECT count() AS n FROM events_raw FINAL', format: 'JSONEachRow' })
        ).json()) as { n: string }[]
      )[0]!.n,
    );

    // Per partition: positions equal the end offsets, three partitions labelled.
    for (const p of [0, 1, 2]) {
      const labels = { topic, partition: String(p) };
      expect(metricValue(text, 'sluice_consumer_position', labels)).toBe(
        metricValue(text, 'sluice_consumer_end_offset', labels),
      );
    }
    expect(metricValue(text, 'sluice_consumer_end_offset', { topic })).toBe(expected.records);
    expect(metricValue(text, 'sluice_partitions_assigned')).toBe(3);

    // Counts against what the stream really wrote, and the generator's answer.
    expect(metricValue(text, 'sluice_records_dead_lettered_total')).toBe(dlq.length);
    expect(dlq.length).toBe(expected.deadLetters.length);
    expect(metricValue(text, 'sluice_records_late_total')).toBe(late.length);
    expect(metricValue(text, 'sluice_records_deduplicated_total')).toBe(expected.suppressedDuplicates);
    expect(metricValue(text, 'sluice_rows_raw_total')).toBe(rawRows);
    expect(rawRows).toBe(expected.eventIds.size);
    expect(metricValue(text, 'sluice_sink_rows_written_total')).toBe(
      metricValue(text, 'sluice_rows_raw_total') + metricValue(text, 'sluice_rows_window_total'),
    );
    expect(metricValue(text, 'sluice_side_topic_records', { topic: `${topic}.dlq` })).toBe(dlq.length);
    expect(metricValue(text, 'sluice_sink_circuit_state', { state: 'closed' })).toBe(1);
    expect(metricValue(text, 'sluice_sink_insert_duration_seconds_count', { table: 'events_raw' })).toBeGreaterThan(0);
    expect(metricValue(text, 'sluice_sink_batch_rows_sum', { table: 'events_raw' })).toBe(rawRows);
    expect(metricValue(text, 'sluice_watermark_seconds')).toBeGreaterThan(0);
    expect(metricValue(text, 'sluice_dependency_up', { dependency: 'clickhouse' })).toBe(1);

    const ready = await fetch(`${url}/readyz`);
    const body = (await ready.json()) as { status: string; checks: { name: string; ok: boolean }[] };
    expect(ready.status).toBe(200);
    expect(body.checks.map((c) => c.name)).toEqual(['partitions', 'kafka', 'redis', 'clickhouse', 'progress']);

    const status = (await (await fetch(`${url}/status.json`)).json()) as {
      partitions: unknown[];
      counters: { recordsIn: number };
      sideTopics: Record<string, number>;
    };
    expect(status.partitions).toHaveLength(3);
    expect(status.counters.recordsIn).toBe(expected.records);
    expect(status.sideTopics[`${topic}.late`]).toBe(late.length);

    child.process.kill('SIGTERM');
    expect(await child.exited).toBe(0);
  }, 55_000);
});

/**
 * Readiness decided by the monitor against a real topic, with a runner whose
 * state the test sets: no partitions, then consuming, then paused while
 * records keep arriving (stuck), then resumed.
 */
describe('readiness', () => {
  let ctx: TestContext;

  beforeAll(async () => {
    ctx = await createTestContext('readiness');
  });
  afterAll(async () => ctx.cleanup());

  it('is not ready without partitions, nor while paused partitions fall further behind for longer than the threshold', async () => {
    const topic = await ctx.createTopic('events', 2);
    const status: RunnerStatus = {
      group: ctx.group,
      topic,
      assigned: [],
      paused: [],
      positions: {},
      checkpointPending: false,
      lastCheckpointAt: Date.now(),
      checkpoints: 0,
      counters: streamCounters(),
      watermark: null,
      openWindows: 0,
      pendingRows: 0,
      stopping: false,
    };
    const monitor = new StreamMonitor({ name: 'readiness-test', status: () => status }, ctx.config, {
      pollMs: 60_000,
      stuckAfterMs: 300,
    });
    const producer = createKafka(ctx.config).producer();
    await producer.connect();
    const produce = (n: number) =>
      producer.send({
        topic,
        messages: Array.from({ length: n }, (_, i) => ({ partition: i % 2, value: Buffer.from(`r${i}`) })),
      });
    try {
      await monitor.refresh();
      expect(monitor.readiness().checks.find((c) => c.name === 'partitions')).toMatchObject({
        ok: false,
        detail: 'no partitions assigned',
      });
      expect(monitor.ready).toBe(false);

      status.assigned = [0, 1];
      status.positions = { 0: '0', 1: '0' };
      await monitor.refresh();
      expect(monitor.readiness()).toMatchObject({ ready: true });

      // Paused, lag not growing: still ready however long it lasts.
      status.paused = [0, 1];
      await monitor.refresh();
      await sleep(400);
      await monitor.refresh();
      expect(monitor.ready).toBe(true);

      // Paused past the threshold while records arrive: stuck.
      await produce(10);
      await monitor.refresh();
      const progress = monitor.readiness().checks.find((c) => c.name === 'progress')!;
      expect(progress.ok).toBe(false);
      expect(progress.detail).toMatch(/paused for \d+ s while the lag grew from 0 to 10/);
      expect(monitor.ready).toBe(false);
      expect(monitor.report().totalLag).toBe(10);

      // Resumed and caught up: ready again.
      status.paused = [];
      status.positions = { 0: '5', 1: '5' };
      await monitor.refresh();
      expect(monitor.ready).toBe(true);
      expect(monitor.report().partitions.map((p) => p.lag)).toEqual([0, 0]);
    } finally {
      await producer.disconnect();
      await monitor.close();
    }
  }, 30_000);
});

/** Several processors on one machine: the default port is taken, so the next one serves on a free port instead of failing. */
describe('default metrics port in use', () => {
  let ctx: TestContext;
  let blocker: Server | undefined;

  beforeAll(async () => {
    ctx = await createTestContext('port');
    // Taken by us, or already by another processor on this machine: either way it is in use.
    blocker = await new Promise<Server | undefined>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(undefined));
      server.listen(DEFAULT_HTTP_PORT, '127.0.0.1', () => resolve(server));
    });
  });
  afterAll(async () => {
    await new Promise((resolve) => (blocker ? blocker.close(resolve) : resolve(undefined)));
    await ctx.cleanup();
  });

  it('falls back to a free port and says so', async () => {
    const topic = await ctx.createTopic('events', 1);
    await ctx.createTopic('events.dlq', 1);
    await ctx.createTopic('events.late', 1);
    const env = ctx.childEnv('info');
    const child = spawnSluice(['run', 'event-counts', '--topic', topic, '--group', ctx.group], env);
    try {
      const url = await observabilityUrl(child);
      expect(url).not.toContain(`:${DEFAULT_HTTP_PORT}`);
      expect(child.output.join('')).toContain('default metrics port in use; serving on a free port instead');
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
    } finally {
      child.process.kill('SIGTERM');
      expect(await child.exited).toBe(0);
    }
  }, 40_000);
});
