import type { ClickHouseClient } from '@clickhouse/client';
import { DLQ_HEADERS, readTopic } from '../dlq';
import type { KafkaClient, ConsumedRecord } from '../kafka';
import type { ExpectedAnswer, ExpectedWindowRow } from './expected';
import { readWindowRows } from './results';

/**
 * Checks what a run of the reference stream left behind — raw events and
 * window rows in ClickHouse, dead letters and late events in Kafka — against
 * the answer computed from the generator's log alone. The demo, the specs and
 * the benchmark all judge a run with it, so a difference reads the same
 * wherever it is found.
 */

/** Where a run left its results. */
export interface RunOutputs {
  /** A client of the database the run wrote to. */
  clickhouse: ClickHouseClient;
  kafka: KafkaClient;
  dlqTopic: string;
  lateTopic: string;
  /** Default `events_raw`. */
  rawTable?: string;
  /** Read the raw table with `FINAL` (it replaces rows of the same event); default true. */
  rawFinal?: boolean;
  /** One row per (window, event_type, campaign_id); default `event_counts_1m`. */
  windowView?: string;
  /** When the run shares its tables and topics with other runs: only this part is the run's. */
  scope?: OutputScope;
}

export interface OutputScope {
  /** Raw events with an event time in [from, to), windows overlapping it; must hold the answer's `eventTimeSpan`. */
  eventTime: { from: number; to: number };
  /** Side records at or after these offsets (the topics' end offsets before the run). */
  dlqFrom?: Map<number, bigint>;
  lateFrom?: Map<number, bigint>;
}

/** One figure compared. */
export interface CheckedFigure {
  what: string;
  expected: number;
  found: number;
}

export interface RunCheck {
  /** True when the outputs are exactly the expected answer. */
  valid: boolean;
  /** Every difference, one line each with examples (empty when valid). */
  problems: string[];
  /** The headline figures, expected against found, for printing. */
  figures: CheckedFigure[];
  rawEvents: {
    rows: number;
    distinct: number;
    /** Distinct events per `channel`. */
    byChannel: Record<string, number>;
    lost: number;
    unexpected: number;
    /** A few of the lost and unexpected ids. */
    lostExamples: string[];
    unexpectedExamples: string[];
  };
  windows: {
    found: number;
    /** Rows missing, different or unexpected: each expected row beside what was found for its key. */
    mismatches: { expected?: ExpectedWindowRow; found?: ExpectedWindowRow }[];
  };
  deadLetters: ConsumedRecord[];
  late: ConsumedRecord[];
}

/** How many examples a difference names. */
const EXAMPLES = 5;

export async function checkRun(outputs: RunOutputs, expected: ExpectedAnswer): Promise<RunCheck> {
  const scope = outputs.scope;
  const span = expected.eventTimeSpan;
  if (scope && span && (span.from < scope.eventTime.from || span.to > scope.eventTime.to)) {
    throw new RangeError(
      `the scope [${scope.eventTime.from}, ${scope.eventTime.to}) leaves out part of the answer's events [${span.from}, ${span.to})`,
    );
  }
  const raw = await checkRawEvents(outputs, expected);
  const windows = await checkWindows(outputs, expected);
  const deadLetters = await readSide(outputs.kafka, outputs.dlqTopic, scope?.dlqFrom);
  const late = await readSide(outputs.kafka, outputs.lateTopic, scope?.lateFrom);

  const rawTable = outputs.rawTable ?? 'events_raw';
  const view = outputs.windowView ?? 'event_counts_1m';
  const sum = (rows: (ExpectedWindowRow | undefined)[]) => rows.reduce((n, r) => n + (r?.events ?? 0), 0);
  const figures: CheckedFigure[] = [
    { what: `distinct events in ${rawTable}`, expected: expected.eventIds.size, found: raw.distinct },
    { what: `window rows in ${view}`, expected: expected.windows.length, found: windows.rows.length },
    { what: 'events counted in windows', expected: sum(expected.windows), found: sum(windows.rows) },
    { what: `records in ${outputs.dlqTopic}`, expected: expected.deadLetters.length, found: deadLetters.length },
    { what: `records in ${outputs.lateTopic}`, expected: expected.lateEventIds.size, found: late.length },
    // Each channel the generator sent or the table holds: an event whose channel was lost reads 'unknown' here.
    ...[...new Set([...Object.keys(expected.eventsByChannel), ...Object.keys(raw.byChannel)])]
      .sort()
      .map((channel) => ({
        what: `events with channel '${channel}' in ${rawTable}`,
        expected: expected.eventsByChannel[channel] ?? 0,
        found: raw.byChannel[channel] ?? 0,
      })),
  ];

  const problems = figures
    .filter((f) => f.expected !== f.found)
    .map((f) => `${f.what}: expected ${f.expected}, found ${f.found}`);
  if (raw.rows !== raw.distinct) problems.push(`${raw.rows - raw.distinct} duplicated rows in ${rawTable}`);
  if (raw.lost > 0)
    problems.push(`${raw.lost} expected events missing from ${rawTable}, e.g. ${raw.lostExamples.join(', ')}`);
  if (raw.unexpected > 0)
    problems.push(`${raw.unexpected} unexpected events in ${rawTable}, e.g. ${raw.unexpectedExamples.join(', ')}`);
  for (const m of windows.mismatches.slice(0, EXAMPLES)) {
    const row = m.expected ?? m.found!;
    problems.push(
      `window ${windowKey(row)}: expected ${JSON.stringify(m.expected ?? null)}, found ${JSON.stringify(m.found ?? null)}`,
    );
  }
  if (windows.mismatches.length > EXAMPLES)
    problems.push(`${windows.mismatches.length} window rows missing, different or unexpected in all`);
  problems.push(...sideProblems(outputs, expected, deadLetters, late));

  return {
    valid: problems.length === 0,
    problems,
    figures,
    rawEvents: raw,
    windows: { found: windows.rows.length, mismatches: windows.mismatches },
    deadLetters,
    late,
  };
}

/**
 * Every expected event id exactly once. Ids are streamed out of ClickHouse
 * and looked up in the expected set, so no copy of millions of ids is made;
 * only when some are missing are they read again to name a few.
 */
async function checkRawEvents(outputs: RunOutputs, expected: ExpectedAnswer): Promise<RunCheck['rawEvents']> {
  const table = `${outputs.rawTable ?? 'events_raw'}${outputs.rawFinal === false ? '' : ' FINAL'}`;
  const range = outputs.scope?.eventTime;
  const where = range ? ` WHERE event_time_ms >= ${range.from} AND event_time_ms < ${range.to}` : '';
  const [counts] = await (
    await outputs.clickhouse.query({
      query: `SELECT count() AS n, uniqExact(event_id) AS u FROM ${table}${where}`,
      format: 'JSONEachRow',
    })
  ).json<{ n: string; u: string }>();
  const channels = await (
    await outputs.clickhouse.query({
      query: `SELECT channel, uniqExact(event_id) AS u FROM ${table}${where} GROUP BY channel`,
      format: 'JSONEachRow',
    })
  ).json<{ channel: string; u: string }>();
  const byChannel = Object.fromEntries(channels.map((c) => [c.channel, Number(c.u)]));
  const ids = () => streamIds(outputs.clickhouse, `SELECT DISTINCT event_id FROM ${table}${where}`);
  let matched = 0;
  let unexpected = 0;
  const unexpectedExamples: string[] = [];
  for await (const id of ids()) {
    if (expected.eventIds.has(id)) matched += 1;
    else if (++unexpected <= EXAMPLES) unexpectedExamples.push(id);
  }
  const lost = expected.eventIds.size - matched;
  const lostExamples: string[] = [];
  if (lost > 0) {
    const found = new Set<string>();
    for await (const id of ids()) found.add(id);
    for (const id of expected.eventIds) {
      if (lostExamples.length >= EXAMPLES) break;
      if (!found.has(id)) lostExamples.push(id);
    }
  }
  return {
    rows: Number(counts!.n),
    distinct: Number(counts!.u),
    byChannel,
    lost,
    unexpected,
    lostExamples,
    unexpectedExamples,
  };
}

async function* streamIds(clickhouse: ClickHouseClient, query: string): AsyncGenerator<string> {
  const result = await clickhouse.query({ query, format: 'TabSeparated' });
  for await (const chunk of result.stream()) for (const row of chunk as { text: string }[]) yield row.text;
}

const windowKey = (r: Pick<ExpectedWindowRow, 'window_start' | 'event_type' | 'campaign_id'>) =>
  `${r.window_start}|${r.event_type}|${r.campaign_id}`;

/** Window rows compared row by row on every column. */
async function checkWindows(
  outputs: RunOutputs,
  expected: ExpectedAnswer,
): Promise<{ rows: ExpectedWindowRow[]; mismatches: RunCheck['windows']['mismatches'] }> {
  const rows = await readWindowRows(outputs.clickhouse, outputs.windowView, outputs.scope?.eventTime);
  const found = new Map<string, ExpectedWindowRow>();
  const mismatches: RunCheck['windows']['mismatches'] = [];
  for (const row of rows) {
    // Two rows for one key: the second cannot be matched, so it is reported as unexpected.
    if (found.has(windowKey(row))) mismatches.push({ found: row });
    else found.set(windowKey(row), row);
  }
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
      mismatches.push({ expected: e, found: f });
    }
  }
  for (const f of found.values()) mismatches.push({ found: f });
  return { rows, mismatches };
}

/** Records, not offsets: a side topic written in transactions holds commit markers, which take offsets too. */
async function readSide(
  kafka: KafkaClient,
  topic: string,
  from: Map<number, bigint> | undefined,
): Promise<ConsumedRecord[]> {
  const records: ConsumedRecord[] = [];
  await readTopic(kafka, topic, (r) => records.push(r), { from, timeoutMs: 60_000 });
  return records;
}

/** Dead letters are the generator's poison records, byte for byte; late records carry the late events' ids as keys. */
function sideProblems(
  outputs: RunOutputs,
  expected: ExpectedAnswer,
  deadLetters: ConsumedRecord[],
  late: ConsumedRecord[],
): string[] {
  const problems: string[] = [];
  // Each source record is dead-lettered once: a second dead letter naming the same source is a duplicate,
  // whether or not the values below can be compared.
  const sources = new Set<string>();
  const repeated = deadLetters.filter((r) => {
    const source = [DLQ_HEADERS.sourceTopic, DLQ_HEADERS.sourcePartition, DLQ_HEADERS.sourceOffset]
      .map((h) => r.headers[h]?.toString() ?? '')
      .join('/');
    const seen = sources.has(source);
    sources.add(source);
    return seen;
  });
  if (repeated.length > 0)
    problems.push(
      `${repeated.length} records in ${outputs.dlqTopic} dead-letter a source record already dead-lettered, e.g. offsets ${repeated
        .slice(0, EXAMPLES)
        .map((r) => `${r.partition}/${r.offset}`)
        .join(', ')}`,
    );
  // Values are known when the log kept them (a log read back from a file may not).
  if (expected.deadLetters.every((d) => d.value !== undefined)) {
    const wanted = new Map<string, number>();
    for (const d of expected.deadLetters) wanted.set(d.value!, (wanted.get(d.value!) ?? 0) + 1);
    const strangers = deadLetters.filter((r) => {
      const value = r.value?.toString('base64') ?? '';
      const left = wanted.get(value) ?? 0;
      if (left > 0) wanted.set(value, left - 1);
      return left === 0;
    });
    if (strangers.length > 0) {
      problems.push(
        `${strangers.length} records in ${outputs.dlqTopic} are not the generator's poison records, e.g. offsets ${strangers
          .slice(0, EXAMPLES)
          .map((r) => `${r.partition}/${r.offset}`)
          .join(', ')}`,
      );
    }
  }
  const keys = new Set<string>();
  const strangers: string[] = [];
  for (const r of late) {
    const key = r.key?.toString() ?? '';
    if (keys.has(key) || !expected.lateEventIds.has(key)) strangers.push(key);
    keys.add(key);
  }
  if (strangers.length > 0)
    problems.push(
      `${strangers.length} records in ${outputs.lateTopic} are not (or repeat) the generator's late events, e.g. ${strangers.slice(0, EXAMPLES).join(', ')}`,
    );
  return problems;
}
