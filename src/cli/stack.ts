import type { Command } from 'commander';
import { loadConfig } from '../config';
import { stackDown, stackLogs, stackStatus, stackUp } from '../stack';
import { printLine } from './output';

const SERVICES = 'kafka, redis, clickhouse, registry';

export function registerStackCommands(program: Command): void {
  const stack = program
    .command('stack')
    .description('run the local stack (Kafka, Redis, ClickHouse, schema registry) natively on loopback')
    .addHelpText('after', `\nServices: ${SERVICES}. State, logs and pid files live under SLUICE_STACK_DIR (.sluice).`);

  stack
    .command('up [services...]')
    .description('install what is missing, start each service unless it runs, wait until healthy')
    .addHelpText('after', '\nExamples:\n  sluice stack up\n  sluice stack up kafka')
    .action(async (services: string[]) => {
      const config = loadConfig();
      await stackUp(config, printLine, services);
    });

  stack
    .command('down [services...]')
    .description('stop what `stack up` started (data is kept)')
    .addHelpText('after', '\nExamples:\n  sluice stack down\n  sluice stack down clickhouse')
    .action(async (services: string[]) => {
      await stackDown(loadConfig(), printLine, services);
    });

  stack
    .command('status [services...]')
    .description('whether each service runs and answers; exit 1 if any does not')
    .option('--json', 'one JSON object per service')
    .action(async (services: string[], opts: { json?: boolean }) => {
      const statuses = await stackStatus(loadConfig(), services);
      for (const s of statuses) {
        printLine(
          opts.json
            ? JSON.stringify(s)
            : `${s.name.padEnd(11)} ${s.healthy ? 'up  ' : 'DOWN'} ports ${s.ports.join(',')}  ${s.detail}`,
        );
      }
      if (statuses.some((s) => !s.healthy)) process.exitCode = 1;
    });

  stack
    .command('logs [services...]')
    .description("print the end of each service's log")
    .option('-n, --lines <n>', 'lines per service', '40')
    .action((services: string[], opts: { lines: string }) => {
      for (const { name, file, text } of stackLogs(loadConfig(), Number(opts.lines), services)) {
        printLine(`==> ${name} (${file}) <==\n${text}`);
      }
    });
}
