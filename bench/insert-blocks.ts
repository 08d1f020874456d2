/**
 * How long the local ClickHouse takes a minute's closing window partials in
 * 50,000-row inserts, one at a time (as `ClickHouseSink.write` sends them)
 * against two or three in flight: the measurement behind not inserting a
 * write's blocks concurrently (bench/README.md).
 *
 *   npx tsx bench/insert-blocks.ts [rows=250000] [rounds=2]
 *
 * The rows are the reference stream's partials (`event_counts_1m_partial`,
 * 24,000 campaigns, one or two users each), checked and encoded as the sink
 * does (`rowProblems`, Decimal encoding), then sent as JSONEachRow into a
 * scratch database that is dropped afterwards. Modes alternate round by
 * round. Reports the wall time, this process's CPU (checks, encoding, the
 * client's JSON) and the ClickHouse server's CPU (from /proc, so the server
 * must run on this machine). Not a test: timed numbers live here. Prints one
 * JSON line per measurement.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { loadConfig } from '../src/config';
import { createClickHouse, fetchColumns, rowProblems } from '../src/sink/clickhouse';
import { encodeRows } from '../src/sink/clickhouse/rows';
import { EVENT_COUNTS_PARTIAL } from '../streams/event-counts/tables';

const DATABASE = 'bench_insert_blocks';
const TABLE = EVENT_COUNTS_PARTIAL.name;
const BLOCK_ROWS = 50_000;
const EVENT_TYPES = ['view', 'click', 'purchase', 'signup', 'share'];

/** The local ClickHouse server's pid, or undefined when it is not a process of this machine. */
function serverPid(): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (command.includes('clickhouse') && command.includes('server')) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/** User + system CPU of a process in ms (clock ticks of 10 ms). */
function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function partials(count: number): Record<string, unknown>[] {
  const start = Math.floor(Date.now() / 60_000) * 60;
  const now = Date.now();
  return Array.from({ length: count }, (_, i) => ({
    window_start: start,
    window_end: start + 60,
    event_type: EVENT_TYPES[i % EVENT_TYPES.length],
    campaign_id: `campaign-${i % 24_000}`,
    source_partition: i % 6,
    events: 1 + (i % 3),
    amount: i % 5 === 2 ? 12.34 * (i % 3) : 0,
    users: [`user-${i}`, `user-${i + 1}`].slice(0, 1 + (i % 2)),
    final: 1,
    version: now,
    emitted_at: Math.floor(now / 1000),
  }));
}

async function main(): Promise<void> {
  const rows = Number(process.argv[2] ?? 250_000);
  const rounds = Number(process.argv[3] ?? 2);
  const config = loadConfig();
  const admin = createClickHouse(config.clickhouse);
  const pid = serverPid();
  try {
    await admin.command({ query: `CREATE DATABASE IF NOT EXISTS ${DATABASE}` });
    for (let round = 0; round < rounds; round++) {
      for (const inFlight of [1, 2, 3]) {
        await admin.command({ query: `DROP TABLE IF EXISTS ${DATABASE}.${TABLE}` });
        for (const statement of EVENT_COUNTS_PARTIAL.create)
          await admin.command({ query: statement.replaceAll('{db}', DATABASE) });
        const columns = await fetchColumns(admin, DATABASE, TABLE);
        const batch = partials(rows);
        const server = cpuMs(pid);
        const cpu = process.cpuUsage();
        const started = performance.now();
        const refused = batch.filter((row) => rowProblems(columns, row).length > 0).length;
        const encoded = encodeRows(columns, batch);
        const blocks: Record<string, unknown>[][] = [];
        for (let i = 0; i < encoded.length; i += BLOCK_ROWS) blocks.push(encoded.slice(i, i + BLOCK_ROWS));
        let next = 0;
        const lane = async () => {
          while (next < blocks.length)
            await admin.insert({ table: `${DATABASE}.${TABLE}`, values: blocks[next++]!, format: 'JSONEachRow' });
        };
        await Promise.all(Array.from({ length: inFlight }, lane));
        const wallMs = performance.now() - started;
        const used = process.cpuUsage(cpu);
        if (refused > 0) throw new Error(`${refused} rows refused`);
        console.log(
          JSON.stringify({
            bench: 'insert.blocks',
            round,
            rows,
            blockRows: BLOCK_ROWS,
            inFlight,
            wallMs: Math.round(wallMs),
            clientCpuMs: Math.round((used.user + used.system) / 1000),
            serverCpuMs: cpuMs(pid) - server,
          }),
        );
      }
    }
  } finally {
    await admin.command({ query: `DROP DATABASE IF EXISTS ${DATABASE}` }).catch(() => undefined);
    await admin.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
