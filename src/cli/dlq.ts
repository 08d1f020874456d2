import type { Command } from 'commander';
import { loadConfig } from '../config';
import { ConfigError } from '../errors';
import { createKafka } from '../kafka';
import { dlqTopic, firstDeadLetters, formatDeadLetter, redrive, summarizeDeadLetters } from '../dlq';
import { createProgress } from '../replay';
import { printLine } from './output';

/** Accepts the source topic (`events`) or the dead-letter topic itself (`events.dlq`). */
const resolveDlq = (topic: string) => (topic.endsWith('.dlq') ? topic : dlqTopic(topic));

function parseFilter(filter: string | undefined): string | undefined {
  if (filter === undefined) return undefined;
  const match = /^error\.class=(.+)$/.exec(filter);
  if (!match)
    throw new ConfigError(
      `--filter '${filter}' is not supported: use --filter error.class=<ErrorClass> (see 'sluice dlq list <topic>')`,
    );
  return match[1];
}

export function registerDlqCommands(program: Command): void {
  const dlq = program.command('dlq').description('dead-letter topics: list, inspect and redrive records that failed');
  const kafka = () => createKafka(loadConfig(), { retry: { retries: 2 } });

  dlq
    .command('list <topic>')
    .description('count the dead letters of a topic per error class')
    .addHelpText('after', '\nExamples:\n  sluice dlq list events\n  sluice dlq list events.dlq')
    .action(async (topic: string) => {
      const summary = await summarizeDeadLetters(kafka(), resolveDlq(topic));
      printLine(`${summary.topic}: ${summary.total} record(s)`);
      const width = Math.max(12, ...summary.byClass.map(([c]) => c.length));
      for (const [cls, n] of summary.byClass) printLine(`  ${cls.padEnd(width)} ${n}`);
    });

  dlq
    .command('show <topic>')
    .description('print dead letters: headers, key and value (text or hex)')
    .option('--limit <n>', 'at most this many records', '10')
    .addHelpText('after', '\nExamples:\n  sluice dlq show events --limit 3')
    .action(async (topic: string, opts: { limit: string }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1)
        throw new ConfigError(`--limit must be a positive integer, got '${opts.limit}'`);
      const records = await firstDeadLetters(kafka(), resolveDlq(topic), limit);
      if (records.length === 0) printLine(`${resolveDlq(topic)}: no records`);
      for (const r of records) for (const line of formatDeadLetter(r)) printLine(line);
    });

  dlq
    .command('redrive <topic>')
    .description('re-produce dead letters to their source topic (a dry run unless --yes)')
    .option('--filter <expr>', 'only records matching error.class=<ErrorClass>')
    .option('--yes', 'really redrive (without it: show what would be redriven, change nothing)')
    .option('--dry-run', 'show what would be redriven, change nothing (the default)')
    .option('--json', 'print the result as one JSON line (no progress output)')
    .addHelpText(
      'after',
      '\nEach record goes back with its original key, value and headers plus sluice.redrive.from.* headers;\n' +
        'the redrive group records how far it got, so nothing is redriven twice.\n' +
        '\nExamples:\n  sluice dlq redrive events --filter error.class=DecodeError\n  sluice dlq redrive events --filter error.class=DecodeError --yes\n  sluice dlq redrive events --yes --json\n' +
        '\nExit codes: 0 ok (or dry run shown), 1 failure, 2 usage error.',
    )
    .action(async (topic: string, opts: { filter?: string; yes?: boolean; dryRun?: boolean; json?: boolean }) => {
      const dryRun = !opts.yes || opts.dryRun === true;
      // The same conventions as replay: a bar with rate and ETA on a terminal, periodic lines otherwise, nothing with --json.
      const progress = createProgress(`redrive ${resolveDlq(topic)}`, { json: opts.json });
      const result = await redrive(kafka(), resolveDlq(topic), {
        errorClass: parseFilter(opts.filter),
        dryRun,
        onProgress: (done, total) => progress.update(done, total),
      });
      progress.stop();
      if (opts.json) {
        printLine(JSON.stringify(result));
        return;
      }
      const verb = dryRun ? 'would redrive' : 'redrove';
      printLine(
        `${result.dlqTopic}: scanned ${result.scanned} new record(s); ${verb} ${result.redriven}${result.alreadyRedriven ? `; ${result.alreadyRedriven} already redriven earlier` : ''}`,
      );
      for (const [cls, n] of Object.entries(result.byClass)) printLine(`  class  ${cls}: ${n}`);
      for (const [target, n] of Object.entries(result.byTarget)) printLine(`  to     ${target}: ${n}`);
      printLine(
        dryRun
          ? 'dry run: nothing was produced or committed; add --yes to redrive'
          : `committed redrive offsets for group ${result.group}`,
      );
    });
}
