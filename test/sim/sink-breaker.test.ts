/**
 * The sink's circuit breaker lets one trial insert through once half-open, and the trial must end in a
 * verdict that says what it learnt of the server (both found by reviews):
 * - a trial the server answered by refusing a row for its data (or a table it does not have) ended with
 *   neither success nor failure, so it stayed in flight and every later insert was refused with
 *   SinkUnavailableError while ClickHouse was up: the stream paused for good;
 * - a trial that failed because ClickHouse still did not answer, in words the classification did not know
 *   (ETIMEDOUT, EAI_AGAIN, ENETUNREACH, EPIPE), was taken for a refusal: it closed the breaker and failed the
 *   write for good, so the runtime stopped the stream during what was an outage;
 * - and the other way round, a refusal the server answered with a code, quoting a refused value or a name
 *   that reads like a network error ('ETIMEDOUT', 'timeout'), was taken for an outage: the block was retried
 *   for good instead of split, and the stream stalled on one row.
 */
import { ClickHouseSink } from '../../src/sink/clickhouse/sink';
import { featuresFromVersion } from '../../src/sink/clickhouse/features';
import type { RowRejection } from '../../src/sink/clickhouse/sink';
import { ClickHouseModel } from './models/clickhouse';

const DB = 'breaker';
const COLUMNS = { window_start: 'UInt64', campaign: 'String', events: 'UInt64', version: 'UInt64' };
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const positions = [{ topic: 'clicks', partition: 0, fromOffset: '0', toOffset: '1' }];
const row = (windowStart: number, campaign = 'a') => ({ window_start: windowStart, campaign, events: 1, version: 1 });
const refused = () => Object.assign(new Error('Code: 210. DB::NetException: Connection refused'), { code: '210' });

/** A sink over a model whose inserts fail with `failure()` while it returns an error; its breaker opens at once. */
function sinkOver(failure: (rows: Record<string, unknown>[]) => Error | undefined) {
  const model = new ClickHouseModel();
  model.createTable(DB, 'clicks', { key: ['window_start', 'campaign'], version: 'version', partition: () => 'all' });
  model.beforeInsert = async (_table, rows) => {
    await sleep(2);
    const error = failure(rows);
    if (error) throw error;
  };
  const sink = new ClickHouseSink({
    settings: { url: 'http://clickhouse.sim', username: 'sim', password: '', database: DB } as never,
    database: DB,
    client: model.asClient(),
    features: featuresFromVersion('18.16.1'),
    columns: { clicks: COLUMNS },
    retry: { retries: 0 },
    breaker: { failureThreshold: 1, resetTimeoutMs: 20 },
  });
  return { model, sink };
}

describe('the sink breaker after a trial insert the server answered with a refusal', () => {
  it('rejects the refused row, writes the others, and writes again afterwards', async () => {
    let down = true;
    const { model, sink } = sinkOver((rows) => {
      if (down) return refused();
      if (rows.some((r) => r.campaign === 'bad'))
        return Object.assign(new Error('Code: 131. DB::Exception: Too large value for FixedString(2)'), {
          code: '131',
        });
      return undefined;
    });
    const refusedStarts = (r: RowRejection[]) => r.map((x) => x.row.window_start);

    await expect(sink.write('clicks', [row(1)], positions)).rejects.toThrow(/Connection refused/);
    expect(sink.breakerState).toBe('open');
    down = false;
    await sleep(40);
    expect(sink.breakerState).toBe('half-open');

    // The trial: the whole block is refused for one row's data, then the bisection finds that row.
    expect(refusedStarts(await sink.write('clicks', [row(2), row(3, 'bad')], positions))).toEqual([3]);
    expect(sink.breakerState).toBe('closed');
    expect(refusedStarts(await sink.write('clicks', [row(4)], positions))).toEqual([]);
    expect(model.final(DB, 'clicks').map((r) => r.window_start)).toEqual([2, 4]);
  });
});

// Node's messages for a host that does not answer (connect timeout), a DNS server that cannot resolve the
// host right now (a container restarting), a network down, and a connection closed under a write.
const unreachable = [
  Object.assign(new Error('connect ETIMEDOUT 10.0.0.7:8123'), { code: 'ETIMEDOUT' }),
  Object.assign(new Error('getaddrinfo EAI_AGAIN clickhouse'), { code: 'EAI_AGAIN' }),
  Object.assign(new Error('connect ENETUNREACH 10.0.0.7:8123'), { code: 'ENETUNREACH' }),
  Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }),
];

describe.each(unreachable.map((e) => [e.message, e] as const))('a half-open trial cut by "%s"', (_name, outage) => {
  it('is a failure: the breaker opens again and the write fails retriably', async () => {
    let failure: Error = refused();
    const { sink } = sinkOver(() => failure);
    await expect(sink.write('clicks', [row(1)], positions)).rejects.toThrow(/Connection refused/);
    expect(sink.breakerState).toBe('open');
    failure = outage; // still down, now failing another way
    await sleep(40);
    expect(sink.breakerState).toBe('half-open');
    const err = await sink.write('clicks', [row(2)], positions).then(
      () => undefined,
      (e: unknown) => e as { retriable?: boolean },
    );
    expect({ retriable: err?.retriable, breaker: sink.breakerState }).toEqual({ retriable: true, breaker: 'open' });
  });
});

describe('a server refusal that quotes a transport word', () => {
  it.each(['ETIMEDOUT', 'EPIPE', 'timeout'])('refuses the row with value %s and writes the others', async (word) => {
    const { model, sink } = sinkOver((rows) =>
      rows.some((r) => r.campaign === word)
        ? Object.assign(
            new Error(
              `Code: 6. DB::Exception: Cannot parse string '${word}' as UInt64: syntax error at begin of string.`,
            ),
            { code: '6' },
          )
        : undefined,
    );
    const refusals = await sink.write('clicks', [row(1), row(2, word)], positions);
    expect(refusals.map((r) => r.row.window_start)).toEqual([2]);
    expect(model.final(DB, 'clicks').map((r) => r.window_start)).toEqual([1]);
    expect(sink.breakerState).toBe('closed');
  });
});
