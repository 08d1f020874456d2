import { StreamTestDriver } from '../../src/process/testing';
import eventCounts from '.';

/**
 * The reference stream on the test driver (no services): every expected row
 * below is worked out by hand from the events piped in.
 */
describe('event-counts (test driver)', () => {
  const T0 = Date.UTC(2026, 0, 1);
  const s = (seconds: number) => T0 + seconds * 1000;
  const event = (
    id: number,
    type: string,
    user: string,
    campaign: string | null,
    seconds: number,
    amount: number | null = null,
  ) => ({
    event_id: `00000000-0000-4000-8000-${String(id).padStart(12, '0')}`,
    event_type: type,
    user_id: user,
    campaign_id: campaign,
    ad_id: null,
    event_time: s(seconds),
    amount,
    properties: {},
    channel: 'web',
  });

  it('dedups, windows by minute per (type, campaign), dead-letters bad records and routes late events', async () => {
    const driver = new StreamTestDriver(eventCounts, { startTimeMs: T0 });
    const e1 = event(1, 'view', 'u1', 'c1', 10);
    // Written at 180 s, after every event in it: record timestamps let the watermark reach 150 s.
    await driver.pipe(
      0,
      [
        e1,
        event(2, 'click', 'u1', 'c1', 20),
        event(3, 'view', 'u2', 'c1', 50),
        e1, // a duplicate: dropped
        event(4, 'purchase', 'u3', null, 65, 12.5),
        Buffer.from('garbage'), // undecodable
        event(7, '', 'u9', 'c1', 70), // invalid event_type
        event(5, 'view', 'u4', 'c1', 180), // watermark 150 s: [0,60) and [60,120) close (end + 30 s lateness <= 150)
        event(6, 'view', 'u5', 'c1', 30), // its window closed: late
      ],
      { timestamp: s(180) },
    );

    const windowRows = () =>
      driver
        .readRows('event_counts_1m_partial')
        .map((r) => [r.window_start, r.event_type, r.campaign_id, r.events, r.users, r.amount, r.final])
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    const sec = (x: number) => Math.floor(s(x) / 1000);
    expect(windowRows()).toEqual(
      [
        [sec(0), 'click', 'c1', 1, ['u1'], 0, 1],
        [sec(0), 'view', 'c1', 2, ['u1', 'u2'], 0, 1],
        [sec(60), 'purchase', '', 1, ['u3'], 12.5, 1],
      ].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    );
    expect(driver.readLate().map((l) => [l.eventTime, l.windowStart, l.windowEnd])).toEqual([[s(30), s(0), s(60)]]);
    expect(
      driver
        .readDeadLetters()
        .map((d) => d.errorClass)
        .sort(),
    ).toEqual(['EVENT_INVALID', 'WIRE_FORMAT_INVALID']);
    expect(driver.readRows('events_raw').map((r) => r.event_id)).toEqual(
      [1, 2, 3, 4, 5, 6].map((i) => event(i, 'x', 'x', null, 0).event_id),
    );
    expect(driver.counters.deduplicated).toBe(1);

    driver.endOfInput(); // bounded run: the open window [180, 240) closes too
    expect(windowRows()).toContainEqual([sec(180), 'view', 'c1', 1, ['u4'], 0, 1]);
  });

  it('closes windows of a partition that went quiet once the others move on and the idle timeout passes', async () => {
    const driver = new StreamTestDriver(eventCounts, { partitions: [0, 1], startTimeMs: T0 });
    await driver.pipe(0, [event(1, 'view', 'u1', 'c1', 10)], { timestamp: s(10) });
    await driver.pipe(1, [event(2, 'view', 'u2', 'c1', 20)], { timestamp: s(20) });
    driver.advanceTime(5_000);
    expect(driver.readRows('event_counts_1m_partial')).toEqual([]);
    await driver.pipe(1, [event(3, 'view', 'u3', 'c1', 200)], { timestamp: s(200) }); // partition 1 moves to 170 s and closes its own [0, 60)
    const partials = () => driver.readRows('event_counts_1m_partial').map((r) => [r.source_partition, r.events]);
    expect(partials()).toEqual([[1, 1]]);
    driver.advanceTime(4_000); // partition 0 quiet for 9 s: still holds its window open
    expect(partials()).toEqual([[1, 1]]);
    driver.advanceTime(1_000); // 10 s: idle, released at the stream watermark (170 s)
    expect(partials()).toEqual([
      [1, 1],
      [0, 1],
    ]);
  });

  it('dead-letters an event stamped far ahead of its record instead of letting it move the watermark', async () => {
    const driver = new StreamTestDriver(eventCounts, { startTimeMs: T0 });
    await driver.pipe(0, [
      event(1, 'view', 'u1', 'c1', 10),
      event(2, 'view', 'u2', 'c1', 2 * 3600), // two hours ahead of its record timestamp (T0)
      event(3, 'view', 'u3', 'c1', 20), // not late: the watermark did not jump
    ]);
    expect(driver.readDeadLetters().map((d) => [d.errorClass, d.source.offset])).toEqual([['EVENT_TIME_AHEAD', '1']]);
    expect(driver.readDeadLetters()[0]!.message).toMatch(/more than 300000 ms ahead of the record timestamp/);
    expect(driver.readLate()).toEqual([]);
    driver.endOfInput();
    expect(driver.readRows('event_counts_1m_partial').map((r) => [r.window_start, r.events])).toEqual([
      [Math.floor(T0 / 1000), 2],
    ]);
  });

  it('windows an event stamped ahead of its record, but lets it move the watermark only to the record time', async () => {
    const driver = new StreamTestDriver(eventCounts, { startTimeMs: T0 });
    await driver.pipe(
      0,
      [
        event(1, 'view', 'u1', 'c1', 10),
        event(2, 'view', 'u2', 'c1', 240), // four minutes ahead of its record (written at 20 s): inside the bound
        event(3, 'view', 'u3', 'c1', 15), // on time for [0, 60): the watermark is 20 - 30 s, not 240 - 30 s
      ],
      { timestamp: s(20) },
    );
    expect(driver.readDeadLetters()).toEqual([]);
    expect(driver.readLate()).toEqual([]);
    expect(driver.readRows('event_counts_1m_partial')).toEqual([]);
    driver.endOfInput();
    const rows = driver
      .readRows('event_counts_1m_partial')
      .map((r) => [(r.window_start as number) - Math.floor(T0 / 1000), r.events]);
    expect(rows.sort()).toEqual([
      [0, 2],
      [240, 1],
    ]);
  });
});
