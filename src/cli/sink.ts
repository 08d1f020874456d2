import type { Command } from 'commander';
import { loadConfig } from '../config';
import { SluiceError } from '../errors';
import { createClickHouse, detectServerFeatures, formatMigrationReport, migrate } from '../sink/clickhouse';
import { classifyClickHouseError } from '../sink/clickhouse/errors';
import { clickHouseSchemaOf, loadStream } from '../process';
import { printLine } from './output';

export function registerSinkCommands(program: Command): void {
  const sink = program.command('sink').description('the ClickHouse sink: schema and server capabilities');

  sink
    .command('migrate [streams...]')
    .description(
      "create the database, the migration ledger and the named streams' tables (idempotent; prints what it did)",
    )
    .option('--database <name>', 'database to migrate (default: clickhouse.database, SLUICE_CLICKHOUSE_DATABASE)')
    .addHelpText(
      'after',
      '\nExamples:\n  sluice sink migrate\n  sluice sink migrate event-counts\n  SLUICE_CLICKHOUSE_URL=https://ch.example.com:8443 sluice sink migrate --database analytics',
    )
    .action(async (streams: string[], opts: { database?: string }) => {
      const config = loadConfig();
      const database = opts.database ?? config.clickhouse.database;
      const client = createClickHouse(config.clickhouse);
      try {
        const explain = (err: unknown): never => {
          throw err instanceof SluiceError ? err : classifyClickHouseError(config.clickhouse, err);
        };
        const features = await detectServerFeatures(client).catch(explain);
        printLine(
          `server ClickHouse ${features.version}: insert_deduplication_token ${features.insertDeduplicationToken ? 'yes' : 'no'}`,
        );
        const schema = clickHouseSchemaOf(streams.map((name) => loadStream(name)));
        const report = await migrate(client, database, { features, ...schema }).catch(explain);
        for (const line of formatMigrationReport(report)) printLine(line);
      } finally {
        await client.close();
      }
    });
}
