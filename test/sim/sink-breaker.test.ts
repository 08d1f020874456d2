/**
 * The sink's circuit breaker lets one trial insert through once half-open; the trial must end in a verdict
 * whatever its outcome. A trial the server answered by refusing a row for its data (or a table it does not
 * have) ended with neither success nor failure, so the trial stayed in flight and every later insert was
 * refused with SinkUnavailableError while ClickHouse was up: the stream paused for good. Found by a review.
 */
import { ClickHouseSink } from '../../src/sink/clickhouse/sink';
import { featuresFromVersion } from '../../src/sink/clickhouse/features';
import type { RowRejection } from '../../src/sink/clickhouse/sink';
import { ClickHouseModel } from './models/clickhouse';

const DB = 'breaker';
const COLUMNS = { window_start: 'UInt64', campaign: 'String', events: 'UInt64', version: 'UInt64' };
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('the sink breaker after a trial insert the server answered with a refusal', () => {
  it('rejects the refused row, writes the others, and writes again afterwards', async () => {
    const model = new ClickHouseModel();
    model.createTable(DB, 'clicks', { key: ['window_start', 'campaign'], version: 'version', partition: () => 'all' });
    let down = true;
    model.beforeInsert = async (_table, rows) => {
      await sleep(5);
      if (down) throw Object.assign(new Error('Code: 210. DB::NetException: Connection refused'), { code: '210' });
      if (rows.some((r) => r.campaign === 'bad'))
        throw Object.assign(new Error('Code: 131. DB::Exception: Too large value for FixedString(2)'), { code: '131' });
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
    const row = (campaign: string, windowStart: number) => ({
      window_start: windowStart,
      campaign,
      events: 1,
      version: 1,
    });
    const positions = [{ topic: 'clicks', partition: 0, fromOffset: '0', toOffset: '1' }];
    const refusedStarts = (r: RowRejection[]) => r.map((x) => x.row.window_start);

    await expect(sink.write('clicks', [row('a', 1)], positions)).rejects.toThrow(/Connection refused/);
    expect(sink.breakerState).toBe('open');
    down = false;
    await sleep(40);
    expect(sink.breakerState).toBe('half-open');

    // The trial: the whole block is refused for one row's data, then the bisection finds that row.
    expect(refusedStarts(await sink.write('clicks', [row('a', 2), row('bad', 3)], positions))).toEqual([3]);
    expect(sink.breakerState).toBe('closed');
    expect(refusedStarts(await sink.write('clicks', [row('a', 4)], positions))).toEqual([]);
    expect(model.final(DB, 'clicks').map((r) => r.window_start)).toEqual([2, 4]);
  });
});
