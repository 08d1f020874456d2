/**
 * A benchmark of a wrong result is not a result: each job's output is checked
 * against the answer computed from the generator's log alone. Window rows
 * are compared row by row; raw event ids are streamed out of ClickHouse and
 * checked against the expected set (no copy of millions of ids is made).
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { SideTopicCounter } from '../../src/dlq';
import { readWindowRows, type ExpectedAnswer, type ExpectedWindowRow } from '../../src/generator';

export interface Verdict {
  valid: boolean;
  /** What did not match, short (empty when valid). */
  problems: string[];
}

const windowKey = (r: Pick<ExpectedWindowRow, 'window_start' | 'event_type' | 'campaign_id'>) =>
  `${r.window_start}|${r.event_type}|${r.campaign_id}`;

/** `view` has one row per (window, event_type, campaign_id) with events, distinct_users, amount. */
export async function verifyWindows(
  clickhouse: ClickHouseClient,
  view: string,
  expected: ExpectedAnswer,
): Promise<Verdict> {
  const found = new Map<string, ExpectedWindowRow>();
  const problems: string[] = [];
  for (const row of await readWindowRows(clickhouse, view)) {
    if (found.has(windowKey(row))) problems.push(`window row ${windowKey(row)} appears twice`);
    found.set(windowKey(row), row);
  }
  let mismatched = 0;
  for (const e of expected.windows) {
    const f = found.get(windowKey(e));
    found.delete(windowKey(e));
    if (
      !f ||
      f.window_end !== e.window_end ||
      f.events !== e.events ||
      f.distinct_users !== e.distinct_users ||
      f.sum_amount !== e.sum_amount
    ) {
      mismatched += 1;
      if (problems.length < 5)
        problems.push(`window ${windowKey(e)}: expected ${JSON.stringify(e)}, found ${JSON.stringify(f ?? null)}`);
    }
  }
  if (mismatched > 0)
    problems.push(`${mismatched} of ${expected.windows.length} expected window rows missing or different`);
  if (found.size > 0)
    problems.push(`${found.size} unexpected window rows, e.g. ${JSON.stringify([...found.values()][0])}`);
  return { valid: problems.length === 0, problems };
}

/** `table` must hold each expected event id exactly once (after `FINAL` when the engine replaces rows). */
export async function verifyRawEvents(
  clickhouse: ClickHouseClient,
  table: string,
  expected: ExpectedAnswer,
  final: boolean,
): Promise<Verdict> {
  const from = `${table}${final ? ' FINAL' : ''}`;
  const [counts] = await (
    await clickhouse.query({
      query: `SELECT count() AS n, uniqExact(event_id) AS u FROM ${from}`,
      format: 'JSONEachRow',
    })
  ).json<{ n: string; u: string }>();
  const problems: string[] = [];
  const rows = Number(counts!.n);
  const distinct = Number(counts!.u);
  if (rows !== distinct) problems.push(`${rows - distinct} duplicated rows in ${table}`);
  // Every stored id must be expected; with as many distinct ids as expected, the sets are then equal.
  let unexpected = 0;
  const result = await clickhouse.query({ query: `SELECT DISTINCT event_id FROM ${from}`, format: 'TabSeparated' });
  for await (const chunk of result.stream()) {
    for (const row of chunk as { text: string }[]) if (!expected.eventIds.has(row.text)) unexpected += 1;
  }
  if (unexpected > 0) problems.push(`${unexpected} unexpected event ids in ${table}`);
  if (distinct !== expected.eventIds.size)
    problems.push(`${table} holds ${distinct} distinct events, expected ${expected.eventIds.size}`);
  return { valid: problems.length === 0, problems };
}

/** The side topics hold one record per expected dead letter / late event, as a read_committed reader sees them. */
export async function verifySideTopics(
  kafka: Kafka,
  dlq: string,
  late: string,
  expected: ExpectedAnswer,
): Promise<Verdict> {
  // Records, not offsets: a topic written in transactions has commit markers, which take offsets too.
  const count = (topic: string) => new SideTopicCounter(kafka, topic).count();
  const problems: string[] = [];
  const dead = await count(dlq);
  const lateCount = await count(late);
  if (dead !== expected.deadLetters.length)
    problems.push(`${dlq} holds ${dead} records, expected ${expected.deadLetters.length}`);
  if (lateCount !== expected.lateEventIds.size)
    problems.push(`${late} holds ${lateCount} records, expected ${expected.lateEventIds.size}`);
  return { valid: problems.length === 0, problems };
}

export function combine(...verdicts: Verdict[]): Verdict {
  const problems = verdicts.flatMap((v) => v.problems);
  return { valid: problems.length === 0, problems };
}
