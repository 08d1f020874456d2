import type { ConsumedRecord } from '../kafka';
import type { ExpectedAnswer } from './expected';

/** What the side topics hold in each case; the checker's reading of Kafka is not what is tested here. */
let dlq: ConsumedRecord[] = [];
jest.mock('../dlq', () => ({
  ...jest.requireActual('../dlq'),
  readTopic: async (_kafka: unknown, topic: string, on: (r: ConsumedRecord) => void) => {
    for (const r of topic.endsWith('.dlq') ? dlq : []) on(r);
    return new Map();
  },
}));
import { checkRun } from './check';

/** What events_raw holds per channel in each case. */
let channels: { channel: string; u: string }[] = [];
const channelRows = (query: string) => (query.includes('GROUP BY channel') ? channels : []);

/** A ClickHouse with no rows but the channel counts: the answers below expect none. */
const clickhouse = {
  query: async ({ query }: { query: string }) => ({
    json: async () => (query.includes('count()') ? [{ n: '0', u: '0' }] : channelRows(query)),
    stream: async function* () {},
  }),
} as never;

function deadLetter(offset: number, sourceOffset: number, value: string): ConsumedRecord {
  return {
    topic: 'events.dlq',
    partition: 0,
    offset: String(offset),
    timestamp: '0',
    key: null,
    value: Buffer.from(value, 'base64'),
    headers: {
      'sluice.dlq.source.topic': 'events',
      'sluice.dlq.source.partition': '0',
      'sluice.dlq.source.offset': String(sourceOffset),
    },
  };
}

function answer(values: (string | undefined)[]): ExpectedAnswer {
  return {
    records: values.length,
    byKind: { valid: 0, duplicate: 0, late: 0, poison: values.length } as never,
    eventIds: new Set(),
    eventsByChannel: {},
    onTimeEventIds: new Set(),
    lateEventIds: new Set(),
    suppressedDuplicates: 0,
    windows: [],
    deadLetters: values.map((value, seq) => ({ seq, key: null, reason: undefined, value })),
    eventTimeSpan: null,
  };
}

const A = Buffer.from('poison-A').toString('base64');
const B = Buffer.from('poison-B').toString('base64');
const check = (expected: ExpectedAnswer) =>
  checkRun({ clickhouse, kafka: {} as never, dlqTopic: 'events.dlq', lateTopic: 'events.late' }, expected);

describe('checkRun on dead letters', () => {
  it('passes each poison record dead-lettered once', async () => {
    dlq = [deadLetter(0, 10, A), deadLetter(1, 11, B)];
    expect((await check(answer([A, B]))).valid).toBe(true);
  });

  it('finds one poison record dead-lettered twice and another lost, by value', async () => {
    dlq = [deadLetter(0, 10, A), deadLetter(1, 10, A)];
    expect((await check(answer([A, B]))).valid).toBe(false);
  });

  it('finds a source dead-lettered twice even when the log kept no values to compare', async () => {
    dlq = [deadLetter(0, 10, A), deadLetter(1, 10, A)];
    const result = await check(answer([undefined, undefined]));
    expect(result.valid).toBe(false);
    expect(result.problems.join('\n')).toMatch(/already dead-lettered/);
  });
});

describe('checkRun on channels', () => {
  it("names each channel whose count differs from the generator's", async () => {
    dlq = [];
    // The events went out as web but were read as v1 events: every one of them counts as 'unknown'.
    channels = [{ channel: 'unknown', u: '3' }];
    const result = await check({ ...answer([]), eventsByChannel: { web: 3 } });
    expect(result.valid).toBe(false);
    expect(result.problems).toEqual([
      "events with channel 'unknown' in events_raw: expected 0, found 3",
      "events with channel 'web' in events_raw: expected 3, found 0",
    ]);
    channels = [{ channel: 'web', u: '3' }];
    expect((await check({ ...answer([]), eventsByChannel: { web: 3 } })).problems).toEqual([]);
    channels = [];
  });
});
