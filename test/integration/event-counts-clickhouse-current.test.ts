import type { ClickHouseClient } from '@clickhouse/client';
import type { SluiceConfig } from '../../src/config';
import { computeExpected, DEFAULT_START_TIME, produceWorkload, type ExpectedAnswer } from '../../src/generator';
import { createKafka } from '../../src/kafka';
import { startStream } from '../../src/process';
import { executeReplay, planReplay } from '../../src/replay';
import { createClickHouse } from '../../src/sink/clickhouse';
import { createLogger } from '../../src/telemetry';
import eventCounts from '../../streams/event-counts';
import { chdbSettings } from '../helpers/chdb';
import { createTestContext, type TestContext } from '../helpers/context';
import { compareWithExpected, expectExactAnswer } from '../helpers/reference';

/**
 * The reference stream end to end with its results in a current ClickHouse
 * (chdb 26.x, in this process, through `clickhouse.url = chdb:///…`):
 * generator -> the real Kafka -> decode, validate, dedup (the real Redis),
 * windows -> ClickHouse, .dlq, .late, checked row for row against the
 * generator's answer as on 18.16 (event-counts.test.ts). Then the replay
 * planner's queries and a shadow replay of one minute, swapped in while
 * nothing changes, must leave the same exact answer.
 *
 * Not covered here (the 18.16 specs are): the HTTP transport, users and
 * passwords, TLS, a server going away, and writers in other processes.
 */
describe('reference stream event-counts on a current ClickHouse, bounded run', () => {
  let ctx: TestContext;
  let topic: string;
  let expected: ExpectedAnswer;
  let config: SluiceConfig;
  let ch: ClickHouseClient;

  beforeAll(async () => {
    ctx = await createTestContext('evcc');
    // Kafka, Redis and the registry of the stack; ClickHouse is chdb, in a database of this context's name.
    config = { ...ctx.config, clickhouse: { ...ctx.config.clickhouse, ...chdbSettings() } };
    topic = await ctx.createTopic('events', 6);
    await ctx.createTopic('events.dlq', 1);
    await ctx.createTopic('events.late', 1);
    const produced = await produceWorkload({
      config: ctx.config,
      topic,
      count: 20_000,
      seed: 4242,
      duplicateRatio: 0.02,
      outOfOrderMs: 30_000,
      lateRatio: 0.005,
      poisonRatio: 0.001,
      keepLog: true,
    });
    expected = computeExpected(produced.log!);
  });
  afterAll(async () => {
    await ch?.command({ query: `DROP DATABASE IF EXISTS ${ctx.id}` });
    await ch?.close();
    await ctx.cleanup();
  });

  it('writes each distinct event once, the exact window rows, every poison record to .dlq and every late event to .late', async () => {
    const running = await startStream(
      eventCounts,
      config,
      { bounded: true, groupId: ctx.group, topic },
      createLogger('warn'),
    );
    const summary = await running.done;
    expect(summary.recordsIn).toBe(expected.records);

    ch = createClickHouse(config.clickhouse, ctx.id);
    const [{ v }] = (await (
      await ch.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' })
    ).json<{ v: string }>()) as [{ v: string }];
    expect(Number(v.split('.')[0])).toBeGreaterThanOrEqual(24);
    const report = await compareWithExpected(ch, createKafka(ctx.config), topic, expected);
    console.log(
      `ClickHouse ${v}: ${report.rawEvents.distinct} events, ${report.windows.found} window rows, ${report.deadLetters.length} dead letters, ${report.late.length} late`,
    );
    expect(report.rawEvents.distinct).toBe(expected.eventIds.size);
    expectExactAnswer(report);
  }, 300_000);

  it("plans a replay from the tables' own figures, and a shadow replay swapped in changes no result", async () => {
    // The workload's events span its first 200 s of event time (100 a second): replay the second minute.
    const from = DEFAULT_START_TIME + 60_000;
    const to = DEFAULT_START_TIME + 120_000;
    const definition = { ...eventCounts, source: { ...eventCounts.source, topic } } as unknown as Parameters<
      typeof planReplay
    >[2];
    const plan = await planReplay(ctx.admin, ch, definition, {
      from: { kind: 'time', ms: from },
      to: { kind: 'time', ms: to },
      group: ctx.group,
      shadow: true,
    });

    // The planner's figures, against the same counts taken here.
    const count = async (sql: string) =>
      Number((await (await ch.query({ query: sql, format: 'JSONEachRow' })).json<{ n: string }>())[0]!.n);
    const [raw, windows] = [plan.tables.find((t) => t.kind === 'raw')!, plan.tables.find((t) => t.kind === 'windows')!];
    expect(raw).toMatchObject({ table: 'events_raw', partitions: ['202601'] });
    expect(raw.rowsInRange).toBe(
      await count(
        `SELECT count() AS n FROM events_raw FINAL WHERE event_time >= ${from / 1000} AND event_time < ${to / 1000}`,
      ),
    );
    expect(windows).toMatchObject({ table: 'event_counts_1m_partial', partitions: ['20260101'] });
    expect(windows.rowsInRange).toBe(
      await count(
        `SELECT count() AS n FROM event_counts_1m_partial FINAL WHERE window_start >= ${from / 1000} AND window_end <= ${to / 1000}`,
      ),
    );
    expect(raw.rowsInRange).toBeGreaterThan(1000); // about 6000 events a minute

    const result = await executeReplay(config, definition, plan, createLogger('warn'), { holdTimeoutMs: 10_000 });
    expect(result.swaps?.map((s) => [s.table, s.strategy, s.partitions])).toEqual([
      ['events_raw', 'replace-partition', ['202601']],
      ['event_counts_1m_partial', 'replace-partition', ['20260101']],
    ]);
    expect(result.swaps![0]!.rowsRebuilt).toBe(raw.rowsInRange);
    expectExactAnswer(await compareWithExpected(ch, createKafka(ctx.config), topic, expected));
    const left = await (
      await ch.query({
        query: `SELECT name FROM system.tables WHERE database = '${ctx.id}' AND name LIKE '%\\_\\_%'`,
        format: 'JSONEachRow',
      })
    ).json();
    expect(left).toEqual([]);
  }, 300_000);
});
