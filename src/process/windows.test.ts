import { count, defineWindows, tumbling } from '../window';
import { StreamWindows } from './windows';

interface Click {
  campaign: string;
}

const MINUTE = 60_000;

function clickWindows() {
  return new StreamWindows<Click>(
    {
      definition: defineWindows({
        assigner: tumbling(MINUTE),
        groupBy: { key: (e: Click) => e.campaign, fields: (e: Click) => ({ campaign: e.campaign }) },
        aggregate: { events: count<Click>() },
        allowedLatenessMs: 0,
        earlyEmitIntervalMs: 1000,
      }),
      outOfOrdernessMs: 0,
      idleTimeoutMs: 10_000,
      table: 'clicks',
      toRow: (w, { partition, version, emittedAt }) => ({
        campaign: w.fields.campaign,
        events: w.aggregates.events,
        final: w.final,
        partition,
        version,
        emitted_at: emittedAt,
      }),
    },
    'clicks',
  );
}

describe('StreamWindows versions', () => {
  it('gives each emission with rows a later version than the one before, even within one millisecond', () => {
    const windows = clickWindows();
    const now = 1_000_000;
    windows.assign(0, undefined, now);
    windows.add(0, { campaign: 'a' }, 0, now, 0);
    windows.add(0, { campaign: 'b' }, 0, now, 0);
    const rowsOf = (emitted: ReturnType<typeof windows.close>) => emitted.flatMap((e) => e.rows.map((r) => r.row));
    const early = rowsOf(windows.close(now));
    expect(early).toMatchObject([
      { campaign: 'a', final: false, version: now },
      { campaign: 'b', final: false, version: now },
    ]);
    // Nothing to emit: no version is taken.
    expect(rowsOf(windows.close(now))).toEqual([]);
    // In the same millisecond an event moves the watermark past the minute: the final rows come after the early ones.
    windows.add(0, { campaign: 'a' }, MINUTE, now, MINUTE);
    const closed = rowsOf(windows.close(now)).filter((r) => r.final);
    expect(closed).toMatchObject([
      { campaign: 'a', events: 1, version: now + 1, emitted_at: now },
      { campaign: 'b', events: 1, version: now + 1, emitted_at: now },
    ]);
    // Once the clock is past the last version, versions are the processing time again: the second minute's final
    // row, then the third minute's early one, one emission after the other.
    windows.add(0, { campaign: 'a' }, 2 * MINUTE, now + 5000, 2 * MINUTE);
    expect(rowsOf(windows.close(now + 5000)).map((r) => [r.final, r.version])).toEqual([
      [true, now + 5000],
      [false, now + 5001],
    ]);
  });
});
