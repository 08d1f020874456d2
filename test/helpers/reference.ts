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
