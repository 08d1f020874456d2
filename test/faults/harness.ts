import type { SluiceConfig } from '../../src/config';
import { DEFAULT_START_TIME, ExpectedAnswerBuilder, produceWorkload, type ExpectedAnswer } from '../../src/generator';
import { createKafka, groupLag, type KafkaAdmin } from '../../src/kafka';
import { createTestContext, type TestContext } from '../helpers/context';
import { spawnSluice, waitFor, type Child } from '../helpers/processes';
import { sleep } from '../../src/clock';
import { compareWithExpected, type ReferenceReport } from '../helpers/reference';

export const PARTITIONS = 6;
const HOUR_MS = 3_600_000;
/** The generator's default: events per second of event time. */
const EVENT_RATE = 100;

/** One scenario on the shared stack: its own topic (with .dlq and .late), group, database and key prefix. */
export interface Scenario {
  ctx: TestContext;
  topic: string;
  /** Environment of a `sluice` child process working for this scenario. */
  env: NodeJS.ProcessEnv;
}

export async function setUpScenario(label: string): Promise<Scenario> {
  const ctx = await createTestContext(label);
  const topic = await ctx.createTopic('events', PARTITIONS);
  await ctx.createTopic('events.dlq', 1);
  await ctx.createTopic('events.late', 1);
  // Info level: assignments and restores, shown only when a scenario fails (and read by ProcessorPool.joined).
  const env = ctx.childEnv(process.env.SLUICE_FAULTS_LOG_LEVEL ?? 'info');
  return { ctx, topic, env };
}

/**
 * `sluice run` arguments of a processor of the scenario: its topic and group,
 * a short session so dead members leave quickly, frequent checkpoints, and a
 * free port for its status server (several run side by side).
 */
export const processorArgs = (s: Scenario, extra: string[] = [], flushIntervalMs = 500) => [
  'run',
  'event-counts',
  '--topic',
  s.topic,
  '--group',
  s.ctx.group,
  '--session-timeout',
  '6000',
  '--flush-interval',
  String(flushIntervalMs),
  '--http-port',
  '0',
  ...extra,
];

/**
 * The reference workload sent in segments, each a workload of its own that
 * starts three hours (of event time) after the previous one ended, so none
 * of its events is late for the windows the earlier ones opened. Their logs
 * are renumbered to follow each other and fed to one expected answer.
 */
export class SegmentedWorkload {
  readonly builder = new ExpectedAnswerBuilder();
  private seqBase = 0;
  private startTime = DEFAULT_START_TIME;
  private segments = 0;

  constructor(
    private readonly config: SluiceConfig,
    private readonly topic: string,
    private readonly seed: number,
  ) {}

  get produced(): number {
    return this.seqBase;
  }

  async produce(count: number): Promise<void> {
    const base = this.seqBase;
    const startTime = this.startTime;
    this.seqBase += count;
    this.startTime += Math.ceil(count / EVENT_RATE) * 1000 + 3 * HOUR_MS;
    const seed = this.seed + this.segments++;
    await produceWorkload({
      config: this.config,
      topic: this.topic,
      count,
      seed,
      startTime,
      onLogEntry: (e) => this.builder.add({ ...e, seq: base + e.seq }),
    });
  }

  /** The answer for everything produced (produce nothing after). */
  expected(): ExpectedAnswer {
    return this.builder.result();
  }
}

/**
 * Produces `events` records as `segments` segments, one after another with
 * `gapMs` between them, so input keeps arriving while the scenario does its damage.
 */
export async function produceSegments(
  workload: SegmentedWorkload,
  options: { events: number; segments: number; gapMs: number },
): Promise<void> {
  const perSegment = Math.ceil(options.events / options.segments);
  for (let i = 0; workload.produced < options.events; i++) {
    if (i > 0) await sleep(options.gapMs);
    await workload.produce(Math.min(perSegment, options.events - workload.produced));
  }
}

/** Records in the topic not yet committed by the group (-1 while Kafka cannot say). */
export async function lagOf(admin: KafkaAdmin, group: string, topic: string): Promise<number> {
  try {
    return await groupLag(admin, group, topic);
  } catch {
    return -1;
  }
}

/**
 * Waits until the group has committed every record; returns how long that
 * took. On timeout the error says where it stuck: committed and end offsets
 * per partition, the group's members and their assignments, and the last
 * output of the `pool`'s processors.
 */
export async function waitForNoLag(s: Scenario, timeoutMs: number, pool?: ProcessorPool): Promise<number> {
  const from = Date.now();
  try {
    await waitFor(
      'the group to commit every record',
      async () => (await lagOf(s.ctx.admin, s.ctx.group, s.topic)) === 0,
      timeoutMs,
    );
  } catch (err) {
    const ends = await s.ctx.admin.fetchTopicOffsets(s.topic).catch(() => []);
    const [committed] = await s.ctx.admin.fetchOffsets(s.ctx.group, [s.topic]).catch(() => []);
    const group = (await s.ctx.admin.describeGroups([s.ctx.group]).catch(() => undefined))?.[0];
    const members = group?.members.map((m) => `${m.clientHost}/${m.memberId.slice(-8)}`);
    const outputs = (pool?.members ?? []).map(
      (c, i) => `--- member ${i} (pid ${c.process.pid}):\n${c.output.join('').slice(-3000)}`,
    );
    throw new Error(
      `${(err as Error).message}: ends ${JSON.stringify(ends.map((e) => [e.partition, e.high]))}, committed ${JSON.stringify(committed?.partitions.map((p) => [p.partition, p.offset]))}, ` +
        `group ${group?.state} members ${JSON.stringify(members)}\n${outputs.join('\n')}`,
      { cause: err },
    );
  }
  return Date.now() - from;
}

/** The members of a scenario's group as child processes, started, killed and stopped by the scenario. */
export class ProcessorPool {
  readonly members: Child[] = [];
  /** Exit codes of members stopped with SIGTERM (each must be 0: flushed, committed, left). */
  private readonly leaving: Promise<number | null>[] = [];
  started = 0;

  constructor(
    private readonly args: string[],
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  spawn(): Child {
    const child = spawnSluice(this.args, this.env);
    this.members.push(child);
    this.started += 1;
    return child;
  }

  private take(index: number): Child {
    const [child] = this.members.splice(index, 1);
    if (!child) throw new Error(`no member ${index} (of ${this.members.length})`);
    return child;
  }

  /** SIGKILL: no flush, no commit, no leaving the group. */
  async kill(index: number): Promise<void> {
    const child = this.take(index);
    child.process.kill('SIGKILL');
    await child.exited;
  }

  /**
   * Whether the member has joined the group (it logs its assignment at info level, the scenarios' default):
   * before that it may not even handle signals yet, and a SIGTERM kills it like SIGKILL.
   */
  static joined(child: Child): boolean {
    return child.output.join('').includes('"msg":"partitions assigned"');
  }

  /** Indexes of the members that have joined the group, once at least one has (waits up to `timeoutMs`). */
  async joinedMembers(timeoutMs = 60_000): Promise<number[]> {
    const joined = () => this.members.map((c, i) => (ProcessorPool.joined(c) ? i : -1)).filter((i) => i >= 0);
    await waitFor('a member that has joined the group', async () => joined().length > 0, timeoutMs);
    return joined();
  }

  /** SIGTERM without waiting for the exit (awaited by `stopAll`). */
  terminate(index: number): void {
    const child = this.take(index);
    child.process.kill('SIGTERM');
    this.leaving.push(
      child.exited.then((code) => {
        if (code !== 0) console.error(`a leaving processor exited ${code}:\n${child.output.join('')}`);
        return code;
      }),
    );
  }

  /** Stops every member with SIGTERM; returns the exit codes of all members ever stopped that way. */
  async stopAll(): Promise<(number | null)[]> {
    while (this.members.length > 0) this.terminate(0);
    return Promise.all(this.leaving);
  }

  /** After a failure: nothing may outlive the test. */
  killAll(): void {
    for (const child of this.members.splice(0)) child.process.kill('SIGKILL');
  }
}

/**
 * Finishes the topic with a bounded run in the scenario's group (as after any
 * crash) and compares ClickHouse, .dlq and .late with the generator's answer.
 */
export async function finishAndCompare(s: Scenario, expected: ExpectedAnswer): Promise<ReferenceReport> {
  const bounded = spawnSluice(processorArgs(s, ['--bounded', '--json']), s.env);
  const code = await bounded.exited;
  if (code !== 0) throw new Error(`bounded run exited ${code}:\n${bounded.output.join('')}`);
  return compareWithExpected(s.ctx.clickhouse, createKafka(s.ctx.config), s.topic, expected);
}
