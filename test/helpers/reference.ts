import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { readWindowRows, type ExpectedAnswer, type ExpectedWindowRow } from '../../src/generator';
import { readTopic, type ReadRecord } from './topics';

export interface ReferenceReport {
  expectedEvents: number;
  foundEvents: number;
  lostEvents: string[];
  unexpectedEvents: string[];
  /** events_raw rows beyond one per event id (must be 0 after FINAL). */
  duplicatedRows: number;
  windowRowsExpected: number;
  windowRowsFound: number;
  windowMismatches: { expected?: ExpectedWindowRow; found?: ExpectedWindowRow }[];
  deadLetters: ReadRecord[];
  late: ReadRecord[];
}

const windowKey = (r: ExpectedWindowRow) => `${r.window_start}|${r.event_type}|${r.campaign_id}`;

/**
 * Compares what the reference stream left in ClickHouse, `<topic>.dlq` and
 * `<topic>.late` with the answer computed from the generator's log alone.
 */
export async function compareWithExpected(
  clickhouse: ClickHouseClient,
  kafka: Kafka,
  topic: string,
  expected: ExpectedAnswer,
): Promise<ReferenceReport> {
  const ids = await (await clickhouse.query({ query: 'SELECT event_id FROM events_raw FINAL', format: 'JSONEachRow' })).json<{ event_id: string }>();
  const [counts] = await (
    await clickhouse.query({ query: 'SELECT count() AS n, uniqExact(event_id) AS u FROM events_raw FINAL', format: 'JSONEachRow' })
  ).json<{ n: string; u: string }>();
  const found = new Set(ids.map((r) => r.event_id));
  const actual = await readWindowRows(clickhouse);
  const byKey = new Map(actual.map((r) => [windowKey(r), r]));
  const mismatches: ReferenceReport['windowMismatches'] = [];
  for (const e of expected.windows) {
    const f = byKey.get(windowKey(e));
    byKey.delete(windowKey(e));
    if (!f || JSON.stringify(f) !== JSON.stringify({ ...e })) mismatches.push({ expected: e, found: f });
  }
  for (const f of byKey.values()) mismatches.push({ found: f });

  return {
    expectedEvents: expected.eventIds.size,
    foundEvents: found.size,
    lostEvents: [...expected.eventIds].filter((id) => !found.has(id)),
    unexpectedEvents: [...found].filter((id) => !expected.eventIds.has(id)),
    duplicatedRows: Number(counts!.n) - Number(counts!.u),
    windowRowsExpected: expected.windows.length,
    windowRowsFound: actual.length,
    windowMismatches: mismatches,
    deadLetters: await readTopic(kafka, `${topic}.dlq`),
    late: await readTopic(kafka, `${topic}.late`),
  };
}

/** The figures every fault scenario reports, one table row each. */
export interface ScenarioCounts {
  /** Records sent to the topic (valid, duplicate, late and poison). */
  eventsProduced: number;
  /** events_raw: distinct events expected and found. */
  rawRowsExpected: number;
  rawRowsFound: number;
  /** event_counts_1m rows expected and found. */
  windowRowsExpected: number;
  windowRowsFound: number;
  lost: number;
  /** events_raw rows beyond one per id, plus events found that the generator never sent. */
  duplicated: number;
  deadLettered: number;
  deadLetteredExpected: number;
  late: number;
  lateExpected: number;
}

export function countsOf(report: ReferenceReport, expected: ExpectedAnswer): ScenarioCounts {
  return {
    eventsProduced: expected.records,
    rawRowsExpected: report.expectedEvents,
    rawRowsFound: report.foundEvents,
    windowRowsExpected: report.windowRowsExpected,
    windowRowsFound: report.windowRowsFound,
    lost: report.lostEvents.length,
    duplicated: report.duplicatedRows + report.unexpectedEvents.length,
    deadLettered: report.deadLetters.length,
    deadLetteredExpected: expected.deadLetters.length,
    late: report.late.length,
    lateExpected: expected.lateEventIds.size,
  };
}

/**
 * ClickHouse, `.dlq` and `.late` hold exactly the generator's answer: side
 * records are written in the same transaction as the offsets they cover, so
 * a read_committed reader sees each once, whatever crashed meanwhile.
 */
export function expectExactAnswer(report: ReferenceReport, expected: ExpectedAnswer): void {
  expect(report.lostEvents).toEqual([]);
  expect(report.unexpectedEvents).toEqual([]);
  expect(report.duplicatedRows).toBe(0);
  expect(report.windowRowsFound).toBe(report.windowRowsExpected);
  expect(report.windowMismatches).toEqual([]);
  expect(new Set(report.deadLetters.map((r) => r.value?.toString('base64')))).toEqual(new Set(expected.deadLetters.map((d) => d.value)));
  expect(report.deadLetters).toHaveLength(expected.deadLetters.length);
  expect(new Set(report.late.map((r) => r.key?.toString()))).toEqual(expected.lateEventIds);
  expect(report.late).toHaveLength(expected.lateEventIds.size);
}

/** Events sent to .late that the generator did not mark late (a window closed too early). */
export const unexpectedLate = (report: ReferenceReport, expected: ExpectedAnswer): number =>
  new Set(report.late.map((r) => r.key?.toString()).filter((k) => k === undefined || !expected.lateEventIds.has(k))).size;
