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

/** A ClickHouse with no rows: the answers below expect none. */
const clickhouse = {
  query: async ({ query }: { query: string }) => ({
    json: async () => (query.includes('count()') ? [{ n: '0', u: '0' }] : []),
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
