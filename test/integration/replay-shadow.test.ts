import { produceWorkload, DEFAULT_START_TIME, type ExpectedAnswer, type WorkloadLogEntry } from '../../src/generator';
import { describeGroup } from '../../src/replay';
import type { TestContext } from '../helpers/context';
import { spawnSluice, waitFor, type Child } from '../helpers/processes';
import { sleep } from '../../src/clock';
import { buggyFirstPass, expectedWindowsIn, referenceRows, replayArgs, trueAmounts } from '../helpers/replay';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/**
 * `sluice replay --shadow` on the real stack, with the live stream running
 * and new events arriving throughout. A buggy stream (doubled amounts)
 * processed the first 20k events; the fixed stream then runs live, while
 * batches of new events (an hour later in event time, same ClickHouse
 * partitions of events_raw) keep coming. The shadow replay of a range must
 * leave: inside it, the generator's answer; outside it, the buggy rows as
 * they were; every new event in ClickHouse (none lost to the swap); and a
 * reader polling the range during the replay must only ever see all-buggy or
 * all-correct windows, never a mix.
 */
describe('sluice replay --shadow, beside a running live stream', () => {
  let ctx: TestContext;
  let topic: string;
  let expected: ExpectedAnswer;
  let log: WorkloadLogEntry[];
  let env: NodeJS.ProcessEnv;
  const from = DEFAULT_START_TIME + 10 * MINUTE;
  const to = DEFAULT_START_TIME + 21 * MINUTE;
  const { rows, partials, raw, windowsIn } = referenceRows(() => ctx.clickhouse);

  beforeAll(async () => {
    ({ ctx, topic, log, expected, env } = await buggyFirstPass('shadow', 21));
  }, 120_000);
  afterAll(async () => ctx.cleanup());

  it('rebuilds the range while the live stream runs and swaps it in atomically, losing no live row', async () => {
    const [windowsBefore, rawBefore] = [await partials(), await raw()];
    const outsideWindows = (all: Record<string, unknown>[]) =>
      all.filter((r) => !(Number(r.ws) >= from && Number(r.we) <= to));
    const buggy = await windowsIn(from, to);
    const correct = expectedWindowsIn(expected, from, to);
    expect(buggy.map((w) => w.events)).toEqual(correct.map((w) => w.events));
    expect(buggy).not.toEqual(correct); // the bug is visible: the test can fail

    const live: Child = spawnSluice(
      [
        'run',
        'event-counts',
        '--topic',
        topic,
        '--group',
        ctx.group,
        '--flush-interval',
        '300',
        '--session-timeout',
        '10000',
      ],
      env,
    );
    const liveLogs: WorkloadLogEntry[] = [];
    let arriving = true;
    let observations = 0;
    let mixed = 0;
    let replay: Child | undefined;
    try {
      await waitFor(
        'the live member to join',
        async () => (await describeGroup(ctx.admin, ctx.group)).members.length > 0,
        30_000,
      );

      // New events keep arriving, an hour later in event time: the same month partition of events_raw as the range.
      const producer = (async () => {
        for (let i = 0; arriving && i < 200; i++) {
          const send = () =>
            produceWorkload({
              config: ctx.config,
              topic,
              count: 300,
              seed: 1000 + i,
              ratePerSecond: 10,
              startTime: DEFAULT_START_TIME + HOUR + i * 30_000,
              keepLog: true,
              duplicateRatio: 0,
              lateRatio: 0,
              poisonRatio: 0,
            });
          // A batch whose request was lost (a registry socket closed under load) is sent again whole: the same seed
          // gives the same events, and the stream's dedup absorbs what the first attempt got through.
          const batch = await send().catch(() => send());
          liveLogs.push(...batch.log!);
          await sleep(300);
        }
      })();
      // A reader polls the range: every answer must be all-buggy or all-correct.
      const reader = (async () => {
        while (arriving) {
          // A poll the client lost (a keep-alive socket the server closed, on a loaded machine) is no observation.
          const seen = await windowsIn(from, to).then(JSON.stringify, () => undefined);
          if (seen === undefined) continue;
          observations += 1;
          if (seen !== JSON.stringify(buggy) && seen !== JSON.stringify(correct)) mixed += 1;
          await sleep(20);
        }
      })();

      await sleep(2000); // the live stream is inserting when the replay starts
      replay = spawnSluice(replayArgs(topic, ctx.group, from, to, '--shadow', '--yes', '--json'), env);
      const code = await replay.exited;
      if (code !== 0) throw new Error(`replay exited ${code}: ${replay.output.join('')}`);
      await sleep(1500); // the reader sees the settled state a few more times
      arriving = false;
      await Promise.all([producer, reader]);

      const { plan, result } = JSON.parse(replay.output.join('').trim().split('\n').pop()!) as {
        plan: { mode: string; replayGroup: string };
        result: {
          swaps: { table: string; strategy: string; partitions: string[] }[];
          heldMs: number;
          recordsIn: number;
        };
      };
      console.log(
        JSON.stringify({
          observations,
          mixed,
          heldMs: result.heldMs,
          swaps: result.swaps,
          liveEventsSent: liveLogs.length,
        }),
      );
      expect(plan.mode).toBe('shadow');
      expect(result.swaps.map((s) => s.strategy).sort()).toEqual(['replace-partition', 'replace-partition']);
      expect(observations).toBeGreaterThan(10);
      expect(mixed).toBe(0);

      // Inside the range: the generator's answer, and every raw event with its true amount.
      expect(await windowsIn(from, to)).toEqual(correct);
      const truth = trueAmounts(log);
      const inside = (await raw()).filter((r) => Number(r.event_time_ms) >= from && Number(r.event_time_ms) < to);
      expect(inside.length).toBe(
        [...expected.eventIds].filter(
          (id) =>
            log.find((e) => e.eventId === id)!.event!.event_time >= from &&
            log.find((e) => e.eventId === id)!.event!.event_time < to,
        ).length,
      );
      for (const r of inside) expect(r.amount === null ? null : Number(r.amount)).toBe(truth.get(String(r.event_id)));

      // Outside the range, the first pass's rows are as they were, except its last windows: the bounded first pass
      // closed them at its end without committing them closed, so the live stream closes them again when its
      // watermark passes them (with its own, fixed, mapping).
      const firstPass = (all: Record<string, unknown>[]) =>
        all.filter(
          (r) =>
            Number(r.event_time_ms) < DEFAULT_START_TIME + HOUR &&
            !(Number(r.event_time_ms) >= from && Number(r.event_time_ms) < to),
        );
      const lastWindowEnd = Math.max(...windowsBefore.map((r) => Number(r.we)));
      const closedByWatermark = (all: Record<string, unknown>[]) =>
        outsideWindows(all).filter((r) => Number(r.we) <= lastWindowEnd - 5 * MINUTE);
      expect(closedByWatermark((await partials()).filter((r) => Number(r.ws) < DEFAULT_START_TIME + HOUR))).toEqual(
        closedByWatermark(windowsBefore),
      );
      expect(firstPass(await raw())).toEqual(firstPass(rawBefore));

      // Every event that arrived during the replay reaches ClickHouse: the swap lost none of the live stream's rows.
      const liveIds = new Set(trueAmounts(liveLogs).keys()); // each batch is its own workload: no duplicates, late or poison records
      await waitFor(
        'the live stream to write every new event',
        async () => {
          const [row] = await rows<{ n: string }>(
            `SELECT count() AS n FROM events_raw FINAL WHERE event_time_ms >= ${DEFAULT_START_TIME + HOUR}`,
          );
          return Number(row!.n) >= liveIds.size;
        },
        60_000,
      );
      const liveRows = await rows<{ event_id: string }>(
        `SELECT event_id FROM events_raw FINAL WHERE event_time_ms >= ${DEFAULT_START_TIME + HOUR}`,
      );
      expect(new Set(liveRows.map((r) => r.event_id))).toEqual(liveIds);

      // The replay cleaned up after itself: no shadow tables, no replay group.
      const leftovers = await rows<{ name: string }>(
        `SELECT name FROM system.tables WHERE database = '${ctx.id}' AND name LIKE '%\\\\_\\\\_%'`,
      );
      expect(leftovers).toEqual([]);
      expect((await ctx.admin.listGroups()).map((g) => g.groupId)).not.toContain(plan.replayGroup);
    } finally {
      arriving = false;
      replay?.process.kill('SIGKILL');
      live.process.kill('SIGTERM');
      await live.exited;
    }
  }, 240_000);
});
