import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config';
import type { KafkaProducer } from '../../src/kafka';
import { nodeRunsPlatformatic } from '../../src/kafka/client';
import { startStream, type RunningStream } from '../../src/process';
import { createLogger } from '../../src/telemetry';
import eventCounts, { type AnalyticsEvent } from '../../streams/event-counts';
import { createTestContext, type TestContext } from '../helpers/context';
import { waitFor } from '../helpers/processes';
import { referenceSource } from '../helpers/topics';

/** The client under test, as the configuration chooses it (SLUICE_KAFKA_CLIENT). */
const client = loadConfig().kafka.client ?? 'kafkajs';
const loads = client !== 'platformatic' || nodeRunsPlatformatic();
if (!loads) console.warn(`retention spec skipped: kafka.client=${client} needs Node.js 22.22 or later`);

const BASE = Date.UTC(2026, 0, 1, 10, 0, 0);

/**
 * docs/design.md §3.3: records Kafka deleted (retention, DeleteRecords) past a group's committed
 * offset before the group read them. The stream warns once naming the deleted offsets, moves over
 * them, and reads every partition to its end; the others, and the records after the gap, are
 * processed exactly once. Before, the runner sought back into the deleted range for ever (both
 * clients), and with platformatic the out-of-range partition also held back the healthy one.
 */
(loads ? describe : describe.skip)(`records deleted before the group read them (${client})`, () => {
  let ctx: TestContext;
  let topic: string;
  let producer: KafkaProducer;
  let encode: (event: AnalyticsEvent) => Buffer;
  let running: RunningStream | undefined;
  const lines: string[] = [];
  const logger = () =>
    createLogger(
      'info',
      {},
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(...chunk.toString().split('\n').filter(Boolean));
          done();
        },
      }),
    );

  beforeAll(async () => {
    ctx = await createTestContext('retention');
    ({ topic, encode, producer } = await referenceSource(ctx, 2));
  });
  afterAll(async () => {
    await running?.stop().catch(() => undefined);
    await producer.disconnect();
    await ctx.cleanup();
  });

  /** `n` events on `partition` (all on time, ids unique): offset → event id. */
  async function send(partition: number, n: number, from: number): Promise<Map<string, string>> {
    const events = Array.from({ length: n }, (_, i): AnalyticsEvent => {
      return {
        event_id: randomUUID(),
        event_type: 'click',
        user_id: `u${partition}`,
        campaign_id: 'camp-1',
        ad_id: null,
        event_time: BASE + (from + i) * 100,
        amount: null,
        properties: {},
      };
    });
    const written = await producer.send({
      topic,
      messages: events.map((e) => ({ key: e.event_id, value: encode(e), partition })),
    });
    return new Map(written.map((w, i) => [w.offset, events[i]!.event_id]));
  }

  async function committedAtEnds(groupId: string): Promise<boolean> {
    const [committed] = await ctx.admin.fetchOffsets(groupId, [topic]);
    const ends = await ctx.admin.fetchTopicOffsets(topic);
    return ends.every((e) => committed?.partitions.find((p) => p.partition === e.partition)?.offset === e.high);
  }

  it('warns naming the deleted offsets and reads every partition to its end, the rest exactly once', async () => {
    const groupId = `${ctx.group}.retention`;
    const ids = new Map<number, Map<string, string>>();
    for (const p of [0, 1]) ids.set(p, await send(p, 50, 0));
    running = await startStream(eventCounts, ctx.config, { groupId, topic, flushIntervalMs: 300 }, logger());
    await waitFor('the first run committed everything', () => committedAtEnds(groupId), 60_000);
    await running.stop();
    running = undefined;

    for (const p of [0, 1]) for (const [o, id] of await send(p, 50, 50)) ids.get(p)!.set(o, id);
    // Partition 0 is committed at 50: Kafka deletes 50..69 before the group reads them.
    await ctx.admin.deleteRecords(topic, [{ partition: 0, offset: '70' }]);
    const ends = new Map((await ctx.admin.fetchTopicOffsets(topic)).map((e) => [e.partition, e]));
    expect(ends.get(0)).toMatchObject({ low: '70', high: '100' });

    lines.length = 0;
    running = await startStream(eventCounts, ctx.config, { groupId, topic, flushIntervalMs: 300 }, logger());
    const stream = running;
    await waitFor(
      'every partition processed to its end and committed',
      async () =>
        stream.runner.status().positions[0] === '100' &&
        stream.runner.status().positions[1] === '100' &&
        (await committedAtEnds(groupId)),
      60_000,
    );
    await running.stop();
    running = undefined;

    // The records that still exist, and those the first run read before the deletion, each once.
    const expected = [...ids]
      .flatMap(([p, byOffset]) => [...byOffset].filter(([o]) => p !== 0 || Number(o) < 50 || Number(o) >= 70))
      .map(([, id]) => id)
      .sort();
    const rows = (await (
      await ctx.clickhouse.query({
        query: `SELECT event_id, count() AS n FROM events_raw FINAL GROUP BY event_id ORDER BY event_id`,
        format: 'JSONEachRow',
      })
    ).json()) as { event_id: string; n: string }[];
    expect(rows.map((r) => r.event_id)).toEqual(expected);
    expect(rows.filter((r) => Number(r.n) !== 1)).toEqual([]);

    const warnings = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.deleted);
    if (client === 'platformatic')
      expect(warnings.map((w) => [w.partition, w.deleted])).toEqual([[0, { from: '50', to: '70' }]]);
    // kafkajs, finding its first fetch out of range, commits its own reset ('-2', earliest) to the group
    // before the runner reads the committed offset: the runner then starts at the log start with no
    // committed position to name the gap from (and without the state the overwritten metadata named).
    else expect(warnings.map((w) => w.partition)).toEqual(warnings.length === 0 ? [] : [0]);
    expect(lines.filter((l) => l.includes('seeking back')).length).toBeLessThan(5);
  }, 180_000);
});
