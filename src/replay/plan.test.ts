import type { KafkaAdmin } from '../kafka';
import type { StreamDefinition } from '../process';
import { count, defineWindows, session, tumbling, ungrouped, type WindowAssigner } from '../window';
import { planReplay } from './plan';

const DAY = 24 * 3600_000;
const D = Date.UTC(2026, 11, 3);

/** A stream counting its events in windows of `assigner`. */
const counting = (assigner: WindowAssigner) =>
  ({
    name: 'plan-test',
    source: { topic: 'events', schema: 'unused' },
    windowed: {
      definition: defineWindows({
        assigner,
        groupBy: ungrouped(),
        aggregate: { events: count() },
        allowedLatenessMs: 0,
      }),
    },
  }) as unknown as StreamDefinition<unknown>;
const definition = counting(tumbling(60_000));

/**
 * One partition as a backfill leaves it: records 0-99 written (LogAppendTime) on day D+3,
 * the backfilled day D among them; the broker answers a timestamp lookup with the first record
 * stamped at or after it. The live group has processed up to `committed`.
 */
function fakeAdmin(committed: number, high = 100, metadata: string | null = null): KafkaAdmin {
  const appendedAt = D + 3 * DAY;
  return {
    fetchTopicOffsets: async () => [{ partition: 0, offset: String(high), low: '0', high: String(high) }],
    fetchOffsets: async () => [
      { topic: 'events', partitions: [{ partition: 0, offset: String(committed), metadata }] },
    ],
    fetchTopicOffsetsByTimestamp: async (_topic: string, ms: number) => [
      { partition: 0, offset: ms <= appendedAt ? '0' : '-1' },
    ],
  } as unknown as KafkaAdmin;
}

const request = { from: { kind: 'time' as const, ms: D }, to: { kind: 'time' as const, ms: D + DAY } };

describe('planReplay of a backfilled day', () => {
  it('reads from the first record written at or after the day (all of a backfill, stamped later) to where the live group got', async () => {
    const plan = await planReplay(fakeAdmin(100), undefined, definition, request);
    expect(plan.partitions).toEqual([{ partition: 0, start: '0', end: '100', records: '100' }]);
    expect(plan.range).toEqual({ from: D, to: D + DAY });
    expect(plan.warnings).toEqual([]);
  });

  it('says so when records were written after the live group stopped: a backfill the live stream has not read', async () => {
    const plan = await planReplay(fakeAdmin(60), undefined, definition, request);
    expect(plan.partitions[0]!.end).toBe('60');
    expect(plan.warnings).toEqual([
      expect.stringMatching(/^40 record\(s\) were written after the live group's position/),
    ]);
    // A shadow replay always trails the running live stream a little: no warning there.
    expect((await planReplay(fakeAdmin(60), undefined, definition, { ...request, shadow: true })).warnings).toEqual([]);
  });

  it('says when the live stream had read up to its committed offset: the snapshot that commit names', async () => {
    const savedAt = D + 3 * DAY + 1234;
    const metadata = `sluice-state:7:100.${savedAt.toString(36)}.abc123:90.${(savedAt - 5000).toString(36)}.def456`;
    const plan = await planReplay(fakeAdmin(100, 100, metadata), undefined, definition, { ...request, shadow: true });
    expect(plan.partitions[0]!.committedAt).toBe(savedAt);
    expect(plan.plannedAt).toBeGreaterThan(savedAt);
    expect(
      (await planReplay(fakeAdmin(100), undefined, definition, request)).partitions[0]!.committedAt,
    ).toBeUndefined();
  });

  it('says which sessions it keeps as the live stream wrote them: those starting within a gap of --from', async () => {
    const plan = await planReplay(fakeAdmin(100), undefined, counting(session(120_000)), request);
    expect(plan.warnings).toEqual([
      expect.stringContaining(
        `only sessions starting at or after ${new Date(D + 120_000).toISOString()} are rewritten; earlier ones are kept as the live stream wrote them`,
      ),
    ]);
  });
});
