import type { Command } from 'commander';
import { loadConfig } from '../config';
import { CommanderError } from 'commander';
import { createKafka } from '../kafka';
import { loadStream } from '../process';
import {
  createProgress,
  executeReplay,
  formatPlan,
  parseBound,
  planReplay,
  refuseLiveMembers,
  replaySummaryLines,
} from '../replay';
import { createClickHouse } from '../sink/clickhouse';
import { createLogger } from '../telemetry';
import { printError, printLine } from './output';

/** A usage mistake: said in one line, exit code 2 (main maps CommanderError to its code). */
export function usageError(message: string): CommanderError {
  printError(message);
  return new CommanderError(2, 'sluice.usage', message);
}

interface ReplayOpts {
  from?: string;
  to?: string;
  toEarliest?: boolean;
  shiftBy?: string;
  group?: string;
  topic?: string;
  clockSkew: string;
  yes?: boolean;
  dryRun?: boolean;
  json?: boolean;
  shadow?: boolean;
  holdTimeout: string;
}

export function registerReplayCommand(program: Command): void {
  program
    .command('replay <stream>')
    .description("recompute a stream's results for a range and replace them in ClickHouse (a dry run unless --yes)")
    .option('--from <bound>', 'start: ISO time (event time), partition:offset,... or earliest')
    .option('--to <bound>', 'end: ISO time (event time) or partition:offset,... (default: where the live group got to)')
    .option('--to-earliest', 'start at the earliest retained record (same as --from earliest)')
    .option('--shift-by <n>', 'move every start offset by n records (negative: earlier)')
    .option('--group <id>', 'the live consumer group (default sluice.<stream>)')
    .option('--topic <name>', "read this topic instead of the stream's own")
    .option('--clock-skew <ms>', 'how far before its event time a Kafka record timestamp may be', '300000')
    .option(
      '--shadow',
      'rebuild into shadow tables while the live stream runs, then swap the changed partitions in atomically',
    )
    .option('--hold-timeout <ms>', 'shadow: longest wait for running live inserts to finish before the swap', '30000')
    .option('--yes', 'really replay (without it: print the plan, change nothing)')
    .option('--dry-run', 'print the plan, change nothing (the default)')
    .option('--json', 'print the plan and the result as JSON')
    .addHelpText(
      'after',
      `
The range is widened to whole windows; only raw rows with an event time in it and window rows
entirely inside it are rewritten (ReplacingMergeTree replaces them by identity); nothing else changes.
The replay runs under its own group (<group>.replay) and its own dedup/state epoch, up to the live
group's committed offsets; it refuses while the live group has members (stop the stream first).
Only events whose event time is in the range are replayed: the others are read and skipped (they move
no watermark), so a day of old events produced among current ones (a backfill) gets its windows.
The summary reports the window rows written and the range's late events, and warns above 1% late.

With --shadow the live stream keeps running: the replay (group <group>.shadow) writes into
<table>__rebuild_* tables, then holds the live stream's inserts for the moment of the swap
(they wait, as during a ClickHouse outage) and swaps each changed ClickHouse partition in with
REPLACE PARTITION (a range over several partitions: the whole table, by EXCHANGE TABLES or
RENAME). Live rows the replay did not recompute are kept; readers never see a half-swapped partition.

Examples:
  sluice replay event-counts --from 2026-01-01T10:00:00Z --to 2026-01-01T11:00:00Z
  sluice replay event-counts --from 2026-01-01T10:00:00Z --to 2026-01-01T11:00:00Z --yes
  sluice replay event-counts --to-earliest --yes --json
  sluice replay event-counts --from 2026-01-01T10:00:00Z --to 2026-01-01T11:00:00Z --shadow --yes

Exit codes: 0 ok (or dry run shown), 1 failure or refused, 2 usage error.`,
    )
    .action(async (name: string, opts: ReplayOpts) => {
      if (!opts.from && !opts.toEarliest)
        throw usageError('give --from <time|offsets|earliest> or --to-earliest (see sluice replay --help)');
      const from = opts.toEarliest ? parseBound('earliest', '--to-earliest') : parseBound(opts.from!, '--from');
      const to = opts.to === undefined ? undefined : parseBound(opts.to, '--to');
      if (to?.kind === 'earliest') throw usageError('--to cannot be earliest');
      const shiftBy = opts.shiftBy === undefined ? undefined : Number(opts.shiftBy);
      if (shiftBy !== undefined && !Number.isInteger(shiftBy))
        throw usageError(`--shift-by must be a whole number, got '${opts.shiftBy}'`);
      const clockSkewMs = Number(opts.clockSkew);
      if (!Number.isInteger(clockSkewMs) || clockSkewMs < 0)
        throw usageError(`--clock-skew must be milliseconds >= 0, got '${opts.clockSkew}'`);
      const holdTimeoutMs = Number(opts.holdTimeout);
      if (!Number.isInteger(holdTimeoutMs) || holdTimeoutMs < 100)
        throw usageError(`--hold-timeout must be milliseconds >= 100, got '${opts.holdTimeout}'`);

      const config = loadConfig();
      const definition = loadStream(name);
      const admin = createKafka(config, { retries: 2 }).admin();
      const clickhouse = createClickHouse(config.clickhouse, config.clickhouse.database);
      await admin.connect();
      let plan;
      try {
        plan = await planReplay(admin, clickhouse, definition, {
          from,
          to,
          shiftBy,
          group: opts.group,
          topic: opts.topic,
          clockSkewMs,
          shadow: opts.shadow,
        });
        if (opts.yes && !opts.dryRun && !opts.shadow) await refuseLiveMembers(admin, plan.liveGroup);
      } finally {
        await admin.disconnect().catch(() => undefined);
        await clickhouse.close().catch(() => undefined);
      }
      const dryRun = !opts.yes || opts.dryRun === true;
      if (dryRun) {
        if (opts.json) printLine(JSON.stringify({ dryRun: true, plan }));
        else {
          for (const line of formatPlan(plan)) printLine(line);
          printLine('dry run: nothing was changed; add --yes to replay');
        }
        return;
      }
      if (!opts.json) for (const line of formatPlan(plan)) printLine(line);
      const progress = createProgress(`replay ${plan.stream}`, { json: opts.json });
      const result = await executeReplay(config, definition, plan, createLogger(config.log.level), {
        holdTimeoutMs,
        onProgress: (p) => progress.update(p.done, p.total),
      });
      progress.stop();
      if (opts.json) printLine(JSON.stringify({ dryRun: false, plan, result }));
      else {
        const rows =
          Object.entries(result.rowsWritten)
            .map(([t, n]) => `${t}=${n}`)
            .join(' ') || 'none';
        printLine(
          `replayed ${result.recordsIn} records in ${result.seconds.toFixed(1)} s; rows rewritten: ${rows}; rows outside the range skipped: ${result.rowsSkipped}`,
        );
        for (const line of replaySummaryLines(definition.windowed?.table, result)) printLine(line);
        for (const s of result.swaps ?? []) {
          printLine(
            `  ${s.table}: ${s.strategy} ${s.partitions.join(', ')} (${s.rowsRebuilt} rebuilt row(s), ${s.rowsKept} live row(s) kept) in ${s.ms} ms` +
              (s.liveNewer > 0
                ? `; ${s.liveNewer} of them newer than the replay, kept as the live stream wrote them after the plan (replay again once it has passed them to rewrite those too)`
                : ''),
          );
        }
        if (result.heldMs !== undefined) printLine(`  live inserts were held for ${result.heldMs} ms`);
      }
    });
}
