import type { Command } from 'commander';
import { loadConfig } from '../config';
import { ConfigError } from '../errors';
import { createKafka, type ConsumedRecord } from '../kafka';
import {
  classKind,
  DEFAULT_MAX_ATTEMPTS,
  describeDeadLetterClasses,
  dlqTopic,
  findSideRecords,
  formatSideRecord,
  redrive,
  sideRecordJson,
  sideTopicKind,
  summarizeDeadLetters,
  type RedrivePlanRow,
  type RedriveResult,
  type ShownValue,
} from '../dlq';
import { createProgress } from '../replay';
import { DecodeError, SchemaCodec } from '../schema';
import { printLine } from './output';

/** Accepts the source topic (`events`), its dead-letter topic (`events.dlq`) or its late-event topic (`events.late`). */
const resolveSide = (topic: string) => (topic.endsWith('.dlq') || topic.endsWith('.late') ? topic : dlqTopic(topic));
/** Redrive reads dead letters only: `.late` holds valid events, which a redrive would count a second time. */
function resolveDlq(topic: string): string {
  if (topic.endsWith('.late'))
    throw new ConfigError(
      `${topic} holds late events, not dead letters: they cannot be redriven (inspect them with 'sluice dlq show ${topic}')`,
    );
  return dlqTopic(topic);
}

const CLASSES_HELP = `\nDead-letter classes (the sluice.dlq.error.class header; permanent ones are not redriven unless --include-permanent, replay ones never):\n${describeDeadLetterClasses().join('\n')}\n`;

function parseFilter(filter: string | undefined): string | undefined {
  if (filter === undefined) return undefined;
  const match = /^error\.class=(.+)$/.exec(filter);
  if (!match)
    throw new ConfigError(
      `--filter '${filter}' is not supported: use --filter error.class=<CLASS>, a class from 'sluice dlq redrive --help'`,
    );
  return match[1];
}

function positiveInteger(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new ConfigError(`${flag} must be a positive integer, got '${text}'`);
  return n;
}

function nonNegativeInteger(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw new ConfigError(`${flag} must be an integer ≥ 0, got '${text}'`);
  return n;
}

/** Decodes a value as Confluent wire-format Avro; a value that is not (a poison record) says why, a registry outage fails. */
async function shown(codec: SchemaCodec, r: ConsumedRecord): Promise<ShownValue> {
  if (r.value === null) return undefined;
  try {
    const decoded = await codec.decode(r.value);
    return { schemaId: decoded.schemaId, value: decoded.value };
  } catch (err) {
    if (err instanceof DecodeError) return { error: `${err.code}: ${err.message}` };
    throw err;
  }
}

/** What happened to a class's records, in words: the why of each skip. */
function skippedText(row: RedrivePlanRow, maxAttempts: number): string {
  const parts: string[] = [];
  if (row.skippedPermanent) parts.push(`${row.skippedPermanent} permanent (add --include-permanent)`);
  if (row.skippedAtBound) parts.push(`${row.skippedAtBound} at attempt ≥ ${maxAttempts} (--max-attempts)`);
  if (row.alreadyRedriven) parts.push(`${row.alreadyRedriven} already redriven`);
  if (row.notRedrivable)
    parts.push(`${row.notRedrivable} refused rows (never redriven: widen the column, then sluice replay their range)`);
  if (row.foreignSource) parts.push(`${row.foreignSource} name another source topic (never redriven)`);
  return parts.join(', ') || '-';
}

function planTable(result: RedriveResult): string[] {
  const verb = result.dryRun ? 'would redrive' : 'redriven';
  const rows = result.plan.map((row) => [
    row.errorClass,
    classKind(row.errorClass),
    String(row.scanned),
    String(row.redriven),
    skippedText(row, result.maxAttempts),
  ]);
  const head = ['class', 'kind', 'records', verb, 'skipped (why)'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 2 || i === 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)];
}

export function registerDlqCommands(program: Command): void {
  const dlq = program
    .command('dlq')
    .description('dead-letter and late-event topics: list, inspect, and redrive records that failed');
  const kafka = () => createKafka(loadConfig(), { retries: 2 });

  dlq
    .command('list <topic>')
    .description('count the records of a .dlq topic per error class, or of a .late topic per reason')
    .addHelpText(
      'after',
      `\nExamples:\n  sluice dlq list events\n  sluice dlq list events.dlq\n  sluice dlq list events.late\n${CLASSES_HELP}`,
    )
    .action(async (topic: string) => {
      const side = resolveSide(topic);
      const late = sideTopicKind(side) === 'late';
      const summary = await summarizeDeadLetters(kafka(), side);
      printLine(`${summary.topic}: ${summary.total} record(s)`);
      const width = Math.max(12, ...summary.byClass.map(([c]) => c.length));
      for (const [cls, n] of summary.byClass)
        printLine(`  ${cls.padEnd(width)} ${String(n).padStart(6)}${late ? '' : `  ${classKind(cls)}`}`);
      if (!late) {
        printLine(
          'classes (permanent: the bytes can never be read, not redriven unless --include-permanent; replay: never redriven, replay the range):',
        );
        for (const line of describeDeadLetterClasses()) printLine(line);
      }
    });

  dlq
    .command('show <topic>')
    .description('print dead letters or late events: headers, key, value bytes and the value decoded as Avro')
    .option('--limit <n>', 'at most this many records', '10')
    .option('--class <class>', 'only this error class (.dlq) or reason (.late)')
    .option('--partition <n>', 'only this partition')
    .option('--offset <n>', 'from this offset on (with --partition: in that partition)')
    .option('--json', 'one JSON object per record, shaped like kcat -J -s value=avro')
    .addHelpText(
      'after',
      '\nValues in Confluent wire format are decoded with their writer schema from the registry (SLUICE_REGISTRY_URL);\n' +
        'a value that does not decode is shown as bytes, with the reason.\n' +
        '\nExamples:\n  sluice dlq show events --limit 3\n  sluice dlq show events.late --partition 0 --offset 100 --json\n  sluice dlq show events --class EVENT_INVALID\n',
    )
    .action(
      async (
        topic: string,
        opts: { limit: string; class?: string; partition?: string; offset?: string; json?: boolean },
      ) => {
        const limit = positiveInteger('--limit', opts.limit);
        const partition = opts.partition === undefined ? undefined : nonNegativeInteger('--partition', opts.partition);
        const fromOffset = opts.offset === undefined ? undefined : BigInt(nonNegativeInteger('--offset', opts.offset));
        const config = loadConfig();
        const side = resolveSide(topic);
        const records = await findSideRecords(createKafka(config, { retries: 2 }), side, {
          limit,
          errorClass: opts.class,
          partition,
          fromOffset,
        });
        if (records.length === 0 && !opts.json) printLine(`${side}: no records`);
        const codec = SchemaCodec.fromConfig(config);
        for (const r of records) {
          const value = await shown(codec, r);
          if (opts.json) printLine(sideRecordJson(r, value));
          else for (const line of formatSideRecord(r, value)) printLine(line);
        }
      },
    );

  dlq
    .command('redrive <topic>')
    .description('re-produce dead letters to their source topic (a dry run, printed as a plan, unless --yes)')
    .option('--filter <expr>', 'only records matching error.class=<CLASS>')
    .option('--include-permanent', 'redrive permanent classes too (their bytes fail the same way again)')
    .option(
      '--max-attempts <n>',
      'leave records whose sluice.dlq.attempt is at least n in the DLQ for good: the bound on redrive loops',
      String(DEFAULT_MAX_ATTEMPTS),
    )
    .option('--yes', 'really redrive (without it: show what would be redriven, change nothing)')
    .option('--dry-run', 'show what would be redriven, change nothing (the default)')
    .option('--json', 'print the result as one JSON line (no progress output)')
    .addHelpText(
      'after',
      '\nEach record goes back with its original key, value and headers plus sluice.redrive.* headers;\n' +
        'the redrive group records how far it got, so nothing is redriven twice. A redriven record that fails\n' +
        'again is dead-lettered with its attempt raised by one (sluice.redrive.attempt carries the count).\n' +
        'Records go back to the topic the DLQ belongs to only; one whose sluice.dlq.source.topic names another\n' +
        'topic is counted and never sent. Two redrives of one DLQ, filtered or not, never both commit.\n' +
        'Permanent records a run skipped stay for a later run with --include-permanent; records at the\n' +
        '--max-attempts bound are passed over for good.\n' +
        '\nExamples:\n  sluice dlq redrive events --filter error.class=EVENT_INVALID\n  sluice dlq redrive events --filter error.class=EVENT_INVALID --yes\n  sluice dlq redrive events --yes --json\n' +
        CLASSES_HELP +
        '\nExit codes: 0 ok (or dry run shown), 1 failure, 2 usage error.',
    )
    .action(
      async (
        topic: string,
        opts: {
          filter?: string;
          yes?: boolean;
          dryRun?: boolean;
          json?: boolean;
          includePermanent?: boolean;
          maxAttempts: string;
        },
      ) => {
        const dryRun = !opts.yes || opts.dryRun === true;
        const maxAttempts = positiveInteger('--max-attempts', opts.maxAttempts);
        const dlqName = resolveDlq(topic);
        // A real run shows progress as replay does (a bar on a terminal, periodic lines otherwise, nothing with
        // --json); a dry run only reads, and prints its plan at the end instead.
        const progress = dryRun || opts.json ? undefined : createProgress(`redrive ${dlqName}`, { json: opts.json });
        const result = await redrive(kafka(), dlqName, {
          errorClass: parseFilter(opts.filter),
          dryRun,
          includePermanent: opts.includePermanent,
          maxAttempts,
          onProgress: progress ? (done, total) => progress.update(done, total) : undefined,
        });
        progress?.stop();
        if (opts.json) {
          printLine(JSON.stringify(result));
          return;
        }
        const verb = dryRun ? 'would redrive' : 'redrove';
        printLine(
          `${result.dlqTopic}: scanned ${result.scanned} record(s); ${verb} ${result.redriven}` +
            (dryRun ? ' (plan below; nothing changes without --yes)' : ''),
        );
        if (result.plan.length > 0) for (const line of planTable(result)) printLine(`  ${line}`);
        for (const [target, n] of Object.entries(result.byTarget)) printLine(`  to ${target}: ${n}`);
        printLine(
          dryRun
            ? 'dry run: nothing was produced or committed; add --yes to redrive'
            : result.committedGroups.length > 0
              ? `committed redrive offsets for ${result.committedGroups.join(', ')}`
              : 'nothing committed: every record scanned was left for a later run',
        );
      },
    );
}
