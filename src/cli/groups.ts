import type { Command } from 'commander';
import { loadConfig } from '../config';
import { createKafka, groupLag, MEMBERS_UNKNOWN_HINT, type KafkaAdmin } from '../kafka';
import {
  describeGroup,
  type GroupInfo,
  groupTopics,
  listGroups,
  offsetsForTime,
  parseBound,
  partitionOffsets,
  refuseLiveMembers,
} from '../replay';
import { printLine } from './output';
import { usageError } from './replay';

interface GroupWithLag extends GroupInfo {
  lag: { topic: string; lag: number }[];
}

/** The group's lag per topic it committed offsets for; only consumer groups (not e.g. connect) have them. */
async function lagOf(admin: KafkaAdmin, group: GroupInfo): Promise<GroupWithLag['lag']> {
  if (group.protocolType !== 'consumer' && group.protocolType !== '') return [];
  const topics = await groupTopics(admin, group.groupId);
  const lag: GroupWithLag['lag'] = [];
  for (const topic of topics.sort()) {
    // A topic deleted since the group committed has no end offsets: it has no lag to show.
    const n = await groupLag(admin, group.groupId, topic).catch(() => undefined);
    if (n !== undefined) lag.push({ topic, lag: n });
  }
  return lag;
}

interface OffsetsOpts {
  topic?: string;
  set?: boolean;
  toEarliest?: boolean;
  toLatest?: boolean;
  toTime?: string;
  offsets?: string;
  shiftBy?: string;
  yes?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

export function registerGroupsCommands(program: Command): void {
  const kafka = () => createKafka(loadConfig(), { retries: 2 });

  program
    .command('groups')
    .description('list consumer groups with their state, lag and members')
    .option('--prefix <text>', 'only groups whose id starts with this (e.g. sluice.)')
    .option('--state <state>', 'only groups in this state (Stable, Empty, PreparingRebalance, ...; case-insensitive)')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
Lag is the records not yet committed, summed over the topics the group has committed offsets for.
A member's client id names its process (sluice-<stream>@<host>#<pid>); host is the address the broker saw.

Examples:
  sluice groups
  sluice groups --prefix sluice. --state stable
  sluice groups --json

Exit codes: 0 ok, 1 failure, 2 usage error.`,
    )
    .action(async (opts: { json?: boolean; prefix?: string; state?: string }) => {
      const admin = kafka().admin();
      await admin.connect();
      try {
        const wanted = (g: GroupInfo) =>
          (opts.prefix === undefined || g.groupId.startsWith(opts.prefix)) &&
          (opts.state === undefined || g.state.toLowerCase() === opts.state.toLowerCase());
        const groups: GroupWithLag[] = [];
        for (const g of (await listGroups(admin)).filter(wanted)) groups.push({ ...g, lag: await lagOf(admin, g) });
        if (opts.json) return printLine(JSON.stringify(groups));
        if (groups.length === 0) printLine('no consumer groups' + (opts.prefix || opts.state ? ' match' : ''));
        for (const g of groups) {
          const lag = g.lag.map((t) => `${t.topic} lag ${t.lag}`).join(', ') || 'no committed offsets';
          printLine(`${g.groupId}  ${g.state}  ${g.members.length} member(s)  ${lag}`);
          for (const m of g.members) printLine(`  ${m.clientId}  host ${m.host.replace(/^\//, '')}  ${m.memberId}`);
          if (g.membersUnknown) printLine(`  members not visible: ${MEMBERS_UNKNOWN_HINT}`);
        }
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    });

  program
    .command('offsets <group>')
    .description("show a group's committed offsets; with --set, change them (a dry run unless --yes)")
    .option('--topic <name>', 'the topic (default: every topic the group committed)')
    .option('--set', 'change the offsets (needs one of --to-earliest, --to-latest, --to-time, --offsets, --shift-by)')
    .option('--to-earliest', 'set to the first retained offset')
    .option('--to-latest', 'set to the end offset (skip everything)')
    .option('--to-time <iso>', 'set to the first record with a Kafka timestamp at or after this time')
    .option('--offsets <list>', 'set to partition:offset,... (unlisted partitions keep theirs)')
    .option('--shift-by <n>', 'move by n records (negative: earlier), after any of the above')
    .option('--yes', 'really change them')
    .option('--dry-run', 'show the change only (the default)')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
Setting offsets refuses while the group has live members (Kafka only accepts it for an empty group).
A stream resumes windows from the snapshot saved at its committed offset; after moving a stream's
offsets there is none, so its windows start empty there: to recompute results use 'sluice replay'.

Examples:
  sluice offsets sluice.event-counts
  sluice offsets sluice.event-counts --set --to-time 2026-01-01T10:00:00Z --topic events
  sluice offsets my-group --set --to-earliest --topic events --yes

Exit codes: 0 ok (or dry run shown), 1 failure or refused, 2 usage error.`,
    )
    .action(async (group: string, opts: OffsetsOpts) => {
      const targets = [opts.toEarliest, opts.toLatest, opts.toTime, opts.offsets].filter((x) => x !== undefined).length;
      if (opts.set && targets === 0 && opts.shiftBy === undefined)
        throw usageError('--set needs --to-earliest, --to-latest, --to-time, --offsets or --shift-by');
      if (targets > 1) throw usageError('give only one of --to-earliest, --to-latest, --to-time, --offsets');
      if (!opts.set && (targets > 0 || opts.shiftBy !== undefined)) throw usageError('add --set to change offsets');
      const shift =
        opts.shiftBy === undefined ? 0n : BigInt(Number.isInteger(Number(opts.shiftBy)) ? opts.shiftBy : NaN);
      const time = opts.toTime === undefined ? undefined : parseBound(opts.toTime, '--to-time');
      if (time && time.kind !== 'time') throw usageError(`--to-time must be an ISO time, got '${opts.toTime}'`);
      const explicit = opts.offsets === undefined ? undefined : parseBound(opts.offsets, '--offsets');
      if (explicit && explicit.kind !== 'offsets')
        throw usageError(`--offsets must be partition:offset,... got '${opts.offsets}'`);

      const admin = kafka().admin();
      await admin.connect();
      try {
        const topics = opts.topic ? [opts.topic] : await groupTopics(admin, group);
        if (topics.length === 0) throw usageError(`group '${group}' has no committed offsets; give --topic`);
        const info = await describeGroup(admin, group);
        const out: {
          topic: string;
          partitions: { partition: number; committed: string | null; end: string; lag: string; next?: string }[];
        }[] = [];
        for (const topic of topics) {
          const current = await partitionOffsets(admin, group, topic);
          const byTime = time?.kind === 'time' ? await offsetsForTime(admin, topic, time.ms) : undefined;
          out.push({
            topic,
            partitions: current.map((p) => {
              const row = {
                partition: p.partition,
                committed: p.committed?.toString() ?? null,
                end: p.high.toString(),
                lag: (p.high - (p.committed ?? p.low)).toString(),
              };
              if (!opts.set) return row;
              let next = p.committed ?? p.low;
              if (opts.toEarliest) next = p.low;
              else if (opts.toLatest) next = p.high;
              else if (byTime) next = byTime.get(p.partition) ?? p.high;
              else if (explicit?.kind === 'offsets' && explicit.offsets.has(p.partition))
                next = explicit.offsets.get(p.partition)!;
              next += shift;
              next = next < p.low ? p.low : next > p.high ? p.high : next;
              return { ...row, next: next.toString() };
            }),
          });
        }
        const apply = opts.set && opts.yes && !opts.dryRun;
        if (apply) {
          await refuseLiveMembers(admin, group);
          for (const t of out)
            await admin.setOffsets(
              group,
              t.topic,
              t.partitions.map((p) => ({ partition: p.partition, offset: p.next! })),
            );
        }
        if (opts.json)
          return printLine(
            JSON.stringify({ group, state: info.state, members: info.members, applied: Boolean(apply), topics: out }),
          );
        printLine(`group ${group}  ${info.state}  ${info.members.length} member(s)`);
        for (const t of out) {
          printLine(`  topic ${t.topic}`);
          for (const p of t.partitions)
            printLine(
              `    partition ${String(p.partition).padStart(3)}  committed ${(p.committed ?? '-').padStart(10)}  end ${p.end.padStart(10)}  lag ${p.lag.padStart(8)}${p.next !== undefined ? `  -> ${p.next}` : ''}`,
            );
        }
        if (opts.set)
          printLine(
            apply
              ? 'offsets set'
              : info.members.length > 0
                ? 'dry run: nothing changed; the group has live members, stop them before --yes'
                : 'dry run: nothing changed; add --yes to set them',
          );
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    });
}
