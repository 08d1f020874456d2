import type { Command } from 'commander';
import { loadConfig } from '../config';
import { formatMigrationReport } from '../sink/clickhouse';
import { loadStream, migrateStreams } from '../process';
import { printLine } from './output';

export function registerSinkCommands(program: Command): void {
  const sink = program.command('sink').description('the ClickHouse sink: schema and server capabilities');

  sink
    .command('migrate [streams...]')
    .description(
      "create the database, the migration ledger and the named streams' tables (idempotent, one process at a time by a lease in Redis; prints what it did)",
    )
    .option('--database <name>', 'database to migrate (default: clickhouse.database, SLUICE_CLICKHOUSE_DATABASE)')
    .option(
      '--no-lease',
      'migrate without the lease in Redis that keeps processors starting together from migrating at once (only while no processor runs)',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  sluice sink migrate\n  sluice sink migrate event-counts\n  SLUICE_CLICKHOUSE_URL=https://ch.example.com:8443 sluice sink migrate --database analytics',
    )
    .action(async (streams: string[], opts: { database?: string; lease: boolean }) => {
      const config = loadConfig();
      const { features, report } = await migrateStreams(
        config,
        streams.map((name) => loadStream(name)),
        {
          database: opts.database,
          lease: opts.lease,
          onWait: (holder, waitedMs) =>
            printLine(`waiting for ${holder}, which is migrating this database (${Math.round(waitedMs / 1000)} s)`),
        },
      );
      printLine(
        `server ClickHouse ${features.version}: insert_deduplication_token ${features.insertDeduplicationToken ? 'yes' : 'no'}`,
      );
      for (const line of formatMigrationReport(report)) printLine(line);
    });
}
