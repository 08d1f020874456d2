import type { ClickHouseClient } from '@clickhouse/client';
import type { KafkaClient } from '../../src/kafka';
import { checkRun, type ExpectedAnswer, type RunCheck } from '../../src/generator';
import { toReadRecord, type ReadRecord } from './topics';

/** The reference stream's outputs against the generator's answer (src/generator/check.ts), side records with string headers. */
export type ReferenceReport = Omit<RunCheck, 'deadLetters' | 'late'> & {
  deadLetters: ReadRecord[];
  late: ReadRecord[];
};

/** Compares what the reference stream left in ClickHouse, `<topic>.dlq` and `<topic>.late` with the generator's answer. */
export async function compareWithExpected(
  clickhouse: ClickHouseClient,
  kafka: KafkaClient,
  topic: string,
  expected: ExpectedAnswer,
): Promise<ReferenceReport> {
  const check = await checkRun({ clickhouse, kafka, dlqTopic: `${topic}.dlq`, lateTopic: `${topic}.late` }, expected);
  return { ...check, deadLetters: check.deadLetters.map(toReadRecord), late: check.late.map(toReadRecord) };
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
  const raw = report.rawEvents;
  return {
    eventsProduced: expected.records,
    rawRowsExpected: expected.eventIds.size,
    rawRowsFound: raw.distinct,
    windowRowsExpected: expected.windows.length,
    windowRowsFound: report.windows.found,
    lost: raw.lost,
    duplicated: raw.rows - raw.distinct + raw.unexpected,
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
export function expectExactAnswer(report: ReferenceReport): void {
  expect(report.problems).toEqual([]);
}

/** Events sent to .late that the generator did not mark late (a window closed too early). */
export const unexpectedLate = (report: ReferenceReport, expected: ExpectedAnswer): number =>
  new Set(report.late.map((r) => r.key?.toString()).filter((k) => k === undefined || !expected.lateEventIds.has(k)))
    .size;
