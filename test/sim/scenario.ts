import { DLQ_HEADERS, headerString, LATE_HEADERS } from '../../src/dlq';
import { redrivenMessage } from '../../src/dlq/redrive';
import { EVENT_COUNTS_PARTIAL } from '../../streams/event-counts/tables';
import { intoShadows, rangeFilter, versionedAsOfPlan } from '../../src/replay/execute';
import { stateSavedAt } from '../../src/state';
import { createShadows, dropShadows, shadowTag, swapShadows } from '../../src/replay/swap';
import { SeededRandom } from '../../src/generator';
import { DATABASE, stream, TOPIC, World } from './world';
import {
  addToWindow,
  expectedOf,
  generate,
  LATE_SCHEMA_ID,
  quietSpell,
  readerSchema,
  REFUSED_TYPE,
  SCHEMA_ID,
  V1_SCHEMA_ID,
  v1Schema,
  windowKey,
  type Kind,
  type Produced,
  type SimEvent,
} from './workload';

/**
 * One seeded run: the reference stream's workload produced over simulated
 * time, processors started, killed, fenced and restarted, Redis crashed with
 * its last second lost, ClickHouse down, slow or refusing rows, Kafka
 * transactions failing (some after they applied), dead letters redriven in
 * several copies, shadow replays, a partition gone quiet past the idle
 * timeout and the stragglers after it; then a
 * bounded run to the end, and every output checked against the workload's
 * own answer.
 */

export interface ScenarioResult {
  seed: number;
  failures: string[];
  /** What happened, for the report. */
  events: string[];
  stats: { records: number; timerSteps: number; simulatedMs: number };
}

export interface ScenarioOptions {
  records?: number;
  /** Turn a kind of fault off (to show which one a failure needs). */
  without?: Set<FaultKind>;
}

export type FaultKind =
  | 'kill'
  | 'redis-crash'
  | 'sink-down'
  | 'fence'
  | 'rebalance'
  | 'txn-failure'
  | 'redrive'
  | 'hostile'
  | 'replay'
  | 'quiet'
  | 'registry-down';

export const FAULT_KINDS: FaultKind[] = [
  'kill',
  'redis-crash',
  'sink-down',
  'fence',
  'rebalance',
  'txn-failure',
  'redrive',
  'hostile',
  'replay',
  'quiet',
  'registry-down',
];

const START = Date.UTC(2026, 0, 1, 12, 0, 0);
const SESSION_TIMEOUT_MS = 10_000;

export async function runScenario(seed: number, options: ScenarioOptions = {}): Promise<ScenarioResult> {
  const partitions = 3;
  const world = new World(seed, START, partitions);
  const r = world.random;
  const enabled = (k: FaultKind) => !options.without?.has(k);
  const events: string[] = [];
  const note = (what: string) => events.push(`t+${((world.scheduler.now() - START) / 1000).toFixed(1)}s ${what}`);
  const durationMs = 4 * 60_000;
  const lateSchemaAt = START + 60_000 + r.int(90_000);
  const hostile = enabled('hostile');
  // A replay recomputes its range from the log as it is at replay time: a late-registered schema makes that
  // differ from what the live stream saw (rightly), so the two are not mixed in one seed.
  const replaying = enabled('replay') && r.chance(0.4);
  // Late-schema events and stragglers are judged by timing: a replay may rightly judge them otherwise.
  if (replaying) options = { ...options, without: new Set([...(options.without ?? []), 'redrive', 'quiet']) };
  const mix: Partial<Record<Kind, number>> = {
    duplicate: 0.08,
    late: 0.03,
    poison: 0.02,
    ...(hostile ? { ahead: 0.02, 'far-ahead': 0.01, refused: 0.02 } : {}),
    ...(enabled('redrive') ? { 'late-schema': 0.03 } : {}),
  };
  const produced = generate(r, {
    partitions,
    startMs: START,
    records: options.records ?? 300,
    durationMs,
    lateSchemaAt,
    mix,
  });
  // A partition quiet past the idle timeout, then stragglers: drawn from a random of their own, so that the
  // rest of a seed's run stays what it was without them.
  const quietRandom = new SeededRandom(seed + 0x5e1d);
  const quiet =
    enabled('quiet') && quietRandom.chance(0.6)
      ? quietSpell(quietRandom, { partitions, startMs: START, durationMs }, produced.length)
      : undefined;
  const quietNow = (p: Produced) =>
    quiet !== undefined && p.partition === quiet.partition && p.at >= quiet.from && p.at < quiet.to;
  if (quiet) {
    const silenced = produced.filter(quietNow);
    // A copy written after the spell of an event silenced in it may be that event's first record, stamped up to
    // a minute back: a straggler too (if an earlier copy was written, it is the duplicate it was).
    const silencedIds = new Set(silenced.map((p) => p.event?.event_id));
    for (const p of produced)
      if (p.kind === 'duplicate' && p.at >= quiet.to && silencedIds.has(p.event?.event_id)) p.kind = 'straggler';
    note(
      `partition ${quiet.partition} quiet for ${((quiet.to - quiet.from) / 1000).toFixed(1)} s from t+${((quiet.from - START) / 1000).toFixed(1)}s (${silenced.length} records not written), then ${quiet.stragglers.length} straggler(s)`,
    );
  }
  world.registry.register(SCHEMA_ID, readerSchema);
  world.registry.register(LATE_SCHEMA_ID, readerSchema, lateSchemaAt);
  world.registry.register(V1_SCHEMA_ID, v1Schema);
  if (hostile) world.faults.refusedEventTypes.add(REFUSED_TYPE);

  // Producers that write in transactions (the ingest API does) leave a commit marker after their records.
  const transactional = r.chance(0.5);
  for (const p of produced) {
    world.scheduler.at(world.root, p.at - START, () => {
      const marker = transactional && r.chance(0.3); // drawn for every record, written or not
      if (quietNow(p)) return; // never written: no offset, so not expected anywhere
      p.offset = world.kafka.produce(TOPIC, p.partition, { timestamp: p.at, key: p.key, value: p.value, headers: {} });
      if (marker) world.kafka.produceMarker(TOPIC, p.partition);
    });
  }
  for (const p of quiet?.stragglers ?? []) {
    produced.push(p);
    world.scheduler.at(world.root, p.at - START, () => {
      p.offset = world.kafka.produce(TOPIC, p.partition, { timestamp: p.at, key: p.key, value: p.value, headers: {} });
    });
  }

  // In some seeds rows pile up past a tiny limit all the time: reading pauses and resumes for backpressure,
  // a checkpoint that finishes with rows waiting starts the next at once, and, when saving window state
  // takes a while, rows are written beside the commit saving it. A random of its own, as above.
  const pileUpRandom = new SeededRandom(seed + 0x9e11);
  const processing = pileUpRandom.chance(0.3) ? { maxPendingRows: 1 + pileUpRandom.int(20) } : undefined;
  if (processing) {
    world.faults.stateSaveMs = pileUpRandom.chance(0.5) ? pileUpRandom.int(2000) : 0;
    note(
      `checkpoint as soon as ${processing.maxPendingRows} row(s) wait, pause reading at twice that; saving state takes ${world.faults.stateSaveMs} ms more`,
    );
  }
  const start = async () => {
    const proc = await world.start({ sessionTimeoutMs: SESSION_TIMEOUT_MS, processing });
    note(`start ${proc.name}`);
    return proc;
  };
  const alive = () => world.processes.filter((p) => p.owner.alive);
  const at = (ms: number, fn: () => void | Promise<void>) => world.scheduler.at(world.root, ms, () => void fn());

  const initial = 1 + r.int(3);
  for (let i = 0; i < initial; i++) await world.drive(start());

  // Faults, at seeded times during production.
  const when = () => 5_000 + r.int(durationMs - 10_000);
  if (enabled('kill')) {
    for (let i = r.int(4); i > 0; i--) {
      at(when(), async () => {
        const victims = alive();
        if (victims.length === 0) return;
        const victim = r.pick(victims);
        world.kill(victim);
        note(`SIGKILL ${victim.name}`);
        await world.scheduler.sleep(world.root, r.int(8000));
        await start();
      });
    }
  }
  let redisLost = false;
  if (enabled('redis-crash') && r.chance(0.6)) {
    at(when(), async () => {
      const lost = world.redis.crash(1000);
      redisLost = true;
      note(`Redis crashed, ${lost} writes of its last second lost`);
      await world.scheduler.sleep(world.root, 200 + r.int(5000));
      world.redis.restart();
      note('Redis restarted');
    });
  }
  // Redis losing its last second right after the stragglers were committed (their late events with them): a
  // re-read from an older snapshot must judge them as the live stream did (see IdleRelease).
  if (quiet && enabled('redis-crash') && quietRandom.chance(0.5)) {
    const lastAt = Math.max(...quiet.stragglers.map((p) => p.at));
    world.whenFirst(
      lastAt - START,
      30_000,
      () => {
        const committed = Number(world.kafka.committed(`sluice.${stream.name}`).get(quiet.partition)?.offset ?? 0);
        return world.redis.up && quiet.stragglers.every((p) => p.offset !== undefined && committed > p.offset);
      },
      () => {
        const lost = world.redis.crash(1000);
        redisLost = true;
        note(`Redis crashed right after the stragglers' commit, ${lost} writes of its last second lost`);
        at(200 + quietRandom.int(2000), () => {
          if (!world.redis.up) world.redis.restart();
          note('Redis restarted');
        });
      },
    );
  }
  if (enabled('sink-down') && r.chance(0.5)) {
    at(when(), () => {
      world.faults.sinkDownUntil = world.scheduler.now() + 1000 + r.int(15_000);
      note(`ClickHouse down until t+${((world.faults.sinkDownUntil - START) / 1000).toFixed(1)}s`);
    });
  }
  // The schema registry unreachable for a while: at any time, or around the late schema's registration (where
  // members' verdicts on its records turn). Drawn from a random of its own, so that the rest of a seed's run
  // stays what it was without it.
  const registryRandom = new SeededRandom(seed + 0x7e61);
  if (enabled('registry-down') && registryRandom.chance(0.4)) {
    const from = registryRandom.chance(0.5)
      ? Math.max(0, lateSchemaAt - START - 10_000 + registryRandom.int(20_000))
      : 5_000 + registryRandom.int(durationMs - 10_000);
    at(from, () => {
      world.registry.downUntil = world.scheduler.now() + 500 + registryRandom.int(20_000);
      note(`schema registry down until t+${((world.registry.downUntil - START) / 1000).toFixed(1)}s`);
    });
  }
  if (enabled('sink-down') && r.chance(0.3)) {
    at(when(), () => {
      world.faults.sinkLatencyMs = 500 + r.int(3000);
      note(`ClickHouse slow: ${world.faults.sinkLatencyMs} ms per insert`);
    });
  }
  if (enabled('fence') && r.chance(0.5)) {
    at(when(), () => {
      const victims = alive();
      if (victims.length === 0) return;
      const victim = r.pick(victims);
      const until = world.scheduler.now() + SESSION_TIMEOUT_MS + 1000 + r.int(5000);
      if (r.chance(0.5)) {
        victim.owner.frozenUntil = until;
        note(`${victim.name} frozen past its session timeout (a long GC pause)`);
        return;
      }
      const consumer = world.kafka.consumers.get(victim.owner);
      if (!consumer) return;
      consumer.silentUntil = until;
      note(`${victim.name} unheard by the coordinator past its session timeout, still processing`);
    });
  }
  if (enabled('rebalance') && r.chance(0.5)) {
    at(when(), async () => {
      const extra = await start();
      await world.scheduler.sleep(world.root, 3000 + r.int(20_000));
      if (!extra.owner.alive) return;
      note(`SIGTERM ${extra.name}`);
      await world.stop(extra);
    });
  }
  if (enabled('txn-failure') && r.chance(0.3)) {
    world.kafka.transactionFailure = 0.1;
    note('10% of Kafka transactions fail, half of them after they applied');
  }
  const redriven = new Set<string>();
  const redrive = () => {
    const copies = redriveSchemaUnknown(world, redriven, r.int(3) + 1);
    if (copies > 0) note(`redrove ${copies} dead-letter copies`);
  };
  if (enabled('redrive')) at(lateSchemaAt - START + 5000 + r.int(60_000), redrive);

  if (replaying) {
    at(2 * 60_000 + r.int(durationMs - 2 * 60_000), async () => {
      const outcome = await shadowReplay(world, START + (1 + r.int(3)) * MINUTE, 1 + r.int(2));
      note(outcome);
    });
  }

  // Production, then a quiet tail for the last checkpoints.
  const end = START + durationMs + 30_000;
  await world.scheduler.runUntil(end);
  world.faults.sinkDownUntil = 0;
  world.faults.sinkLatencyMs = 5;
  world.kafka.transactionFailure = 0;
  if (!world.redis.up) world.redis.restart();
  // The operator redrives once the stream has committed everything: dead letters are visible from their commit on.
  const caughtUp = () =>
    world.kafka
      .partitions(TOPIC)
      .every((log, p) => world.kafka.committed(`sluice.${stream.name}`).get(p)?.offset === String(log.length));
  const catchUp = async () => {
    for (let waited = 0; waited < 5 * 60_000 && alive().length > 0 && !caughtUp(); waited += 5000)
      await world.scheduler.runUntil(world.scheduler.now() + 5000);
  };
  // Every fault is over: members still alive commit everything, or they have stalled (paused for good,
  // say) where a stop and the bounded run below would hide it.
  await catchUp();
  const stalled = alive().length > 0 && !caughtUp();
  if (enabled('redrive')) {
    redrive();
    await world.scheduler.runUntil(world.scheduler.now() + 30_000);
    await catchUp();
  }

  // Every live member stops (SIGTERM); a bounded run processes what is left and closes every window.
  for (const p of alive()) await world.drive(world.stop(p));
  const failures: string[] = [];
  if (stalled) failures.push('live members did not commit every record within 5 min of the last fault (a stall)');
  for (const p of [...world.processes]) {
    const outcome = await Promise.race([p.done, Promise.resolve('running')]);
    if (outcome instanceof Error) failures.push(`${p.name} failed: ${outcome.message}`);
  }
  const bounded = await world.drive(world.start({ bounded: true, sessionTimeoutMs: SESSION_TIMEOUT_MS, processing }));
  note(`bounded run ${bounded.name}`);
  const finished = await world.drive(bounded.done).catch((err: Error) => new Error(`${err.message} (a stall)`));
  if (finished instanceof Error) failures.push(`the bounded run failed: ${finished.message}`);

  failures.push(...check(world, produced, redriven, redisLost));
  const exp = expectedOf(produced.filter((p) => p.offset !== undefined));
  note(
    `outputs: events_raw ${world.clickhouse.final(DATABASE, 'events_raw').length} (expected ${exp.raw.size}+${exp.flexible.size} flexible), ` +
      `windows ${exp.windows.size}, .late ${world.kafka.topics.get(`${TOPIC}.late`)?.[0]?.length ?? 0} (expected ${exp.late.size}), ` +
      `.dlq ${world.kafka.topics.get(`${TOPIC}.dlq`)?.[0]?.length ?? 0} (expected ${exp.deadLetters.size} + refused partials)`,
  );
  if (quiet) {
    const lateAt = new Set(
      (world.kafka.topics.get(`${TOPIC}.late`)?.[0] ?? []).map(
        (rec) =>
          `${headerString(rec.headers, LATE_HEADERS.sourcePartition)}/${headerString(rec.headers, LATE_HEADERS.sourceOffset)}`,
      ),
    );
    const late = quiet.stragglers.filter((p) => lateAt.has(`${p.partition}/${p.offset}`)).length;
    note(`stragglers: ${late} late, ${quiet.stragglers.length - late} counted in their window`);
  }
  return {
    seed,
    failures,
    events,
    stats: { records: produced.length, timerSteps: world.scheduler.steps, simulatedMs: world.scheduler.now() - START },
  };
}

const MINUTE = 60_000;

/**
 * `sluice replay --shadow` of `minutes` whole minutes from `fromMs` (rounded down to a minute), beside the
 * live members: a bounded run under its own group and epoch from the range's start (less the stream's
 * bound on events ahead of their record) to the live group's position, writing the range's rows into
 * rebuild tables, then the swap under the hold.
 */
export async function shadowReplay(world: World, fromMs: number, minutes: number): Promise<string> {
  const from = Math.floor(fromMs / MINUTE) * MINUTE;
  const range = { from, to: from + minutes * MINUTE };
  const margin = stream.windowed?.maxEventTimeAheadMs ?? 0;
  // As planReplay and versionedAsOfPlan do: the window rows carry no newer version than the snapshot the
  // live group's commit names where the replay ends at it (else the plan's time, read before the position),
  // so a window the live stream wrote since (its last records not committed yet) keeps its row in the swap.
  const plannedAt = world.scheduler.now();
  const committed = world.kafka.committed(`sluice.${stream.name}`);
  const ends = new Map([...committed].map(([p, c]) => [p, BigInt(c.offset)]));
  const starts = new Map(
    world.kafka
      .partitions(TOPIC)
      .map((log, p) => [p, BigInt(log.find((rec) => rec.timestamp >= from - margin)?.offset ?? log.length)]),
  );
  for (const [p, start] of starts) if (start > (ends.get(p) ?? 0n)) ends.set(p, start);
  const plan = {
    plannedAt,
    partitions: [...ends].map(([partition, end]) => {
      const c = committed.get(partition);
      const committedAt = c && BigInt(c.offset) === end ? stateSavedAt(c.metadata) : undefined;
      return { partition, committedAt };
    }),
  };
  const epoch = 1 + world.random.int(1_000_000);
  const tag = shadowTag(epoch);
  const group = `sluice.${stream.name}.shadow`;
  // Copies take simulated time, up to minutes on a large partition: longer than the hold's TTL, so the hold must be renewed.
  const model = world.clickhouse.shadowTables(DATABASE);
  const slow = world.random.chance(0.5);
  const tables: typeof model = {
    ...model,
    stageMerged: async (...args) => {
      await world.scheduler.sleep(world.root, slow ? 30_000 + world.random.int(90_000) : world.random.int(2000));
      return model.stageMerged(...args);
    },
  };
  const shadows = await createShadows(tables, ['events_raw', EVENT_COUNTS_PARTIAL.name], tag);
  try {
    world.kafka.setOffsets(group, TOPIC, starts);
    // Only rows inside the range reach the rebuild tables.
    const filter = rangeFilter(versionedAsOfPlan(intoShadows(stream, shadows), plan), range);
    const proc = await world.start({
      bounded: true,
      groupId: group,
      epoch,
      endOffsets: ends,
      // As src/replay/execute.ts runs a range with an end: its events only, its windows closed at the end.
      eventTimeRange: range,
      closeWindowsAtEnd: true,
      sideOutputs: false,
      sinkHold: false,
      definition: filter.definition,
      rowFilter: filter.keep,
    });
    const summary = await proc.done;
    if (summary instanceof Error) return `shadow replay of ${minutes} min failed: ${summary.message}`;
    const hold = world.hold(world.root);
    const result = await swapShadows(tables, hold, shadows, tag, {
      holdTimeoutMs: 30_000,
      clock: world.scheduler.clockFor(world.root),
    });
    return `shadow replay of [${new Date(range.from).toISOString().slice(11, 16)}, +${minutes} min): ${result.swaps.map((s) => `${s.table} ${s.strategy} ${s.rowsRebuilt} rows`).join(', ')}`;
  } catch (err) {
    return `shadow replay stopped: ${(err as Error).message}`;
  } finally {
    await dropShadows(tables, shadows, tag);
    world.kafka.deleteGroup(group);
  }
}

/** Produces every SCHEMA_UNKNOWN dead letter not redriven yet back to its source partition, `copies` times, with the headers `sluice dlq redrive` writes. */
function redriveSchemaUnknown(world: World, done: Set<string>, copies: number): number {
  const dlq = world.kafka.topics.get(`${TOPIC}.dlq`)?.[0] ?? [];
  let n = 0;
  for (const d of dlq) {
    if (done.has(String(d.offset)) || headerString(d.headers, DLQ_HEADERS.errorClass) !== 'SCHEMA_UNKNOWN') continue;
    done.add(String(d.offset));
    const partition = Number(headerString(d.headers, DLQ_HEADERS.sourcePartition));
    const [, message] = redrivenMessage(
      {
        topic: `${TOPIC}.dlq`,
        partition: 0,
        offset: String(d.offset),
        timestamp: String(d.timestamp),
        key: d.key,
        value: d.value,
        headers: d.headers,
      },
      `${TOPIC}.dlq`,
      new Date(world.scheduler.now()),
    );
    for (let c = 0; c < copies; c++) {
      world.kafka.produce(TOPIC, partition, {
        timestamp: world.scheduler.now(),
        key: d.key,
        value: d.value,
        headers: message.headers ?? {},
      });
      n += 1;
    }
  }
  return n;
}

/** Every output against the workload's answer. */
function check(world: World, produced: Produced[], _redriven: Set<string>, redisLost: boolean): string[] {
  const failures: string[] = [];
  const fail = (what: string) => failures.push(what);
  const exp = expectedOf(produced.filter((p) => p.offset !== undefined));
  const eventById = new Map(produced.filter((p) => p.event).map((p) => [p.event!.event_id, p.event!]));

  // .late: event ids, each exactly once (a read_committed reader's view: the model keeps committed transactions only)
  const lateIds = new Set<string>();
  for (const rec of world.kafka.topics.get(`${TOPIC}.late`)?.[0] ?? []) {
    const offset = Number(headerString(rec.headers, LATE_HEADERS.sourceOffset));
    const partition = Number(headerString(rec.headers, LATE_HEADERS.sourcePartition));
    const id = world.kafka.partitions(TOPIC)[partition]?.[offset]?.key?.toString() ?? '?';
    if (lateIds.has(id)) fail(`.late holds event ${id} twice`);
    lateIds.add(id);
  }
  const rawRows = world.clickhouse.final(DATABASE, 'events_raw');
  const rawIds = new Set(rawRows.map((row) => String(row.event_id)));

  // Late-schema events: counted once, in a window or in .late; which one is decided by timing.
  const windows = new Map(exp.windows);
  const expectedLate = new Set(exp.late);
  for (const [id, e] of exp.flexible) {
    if (!rawIds.has(id)) {
      fail(`${kindOf(produced, id)} event ${id} never reached events_raw`);
      continue;
    }
    exp.raw.add(id);
    if (lateIds.has(id)) expectedLate.add(id);
    else addToWindow(windows, e);
  }

  for (const id of exp.raw) if (!rawIds.has(id)) fail(`events_raw misses event ${id} (${kindOf(produced, id)})`);
  for (const id of rawIds)
    if (!exp.raw.has(id)) fail(`events_raw has unexpected event ${id} (${kindOf(produced, id)})`);
  for (const row of rawRows) {
    const e = eventById.get(String(row.event_id));
    if (
      e &&
      (row.event_type !== e.event_type || Number(row.event_time_ms) !== e.event_time || row.channel !== e.channel)
    )
      fail(`events_raw row of ${e.event_id} does not match its event`);
  }

  for (const id of expectedLate) if (!lateIds.has(id)) fail(`.late misses event ${id}`);
  for (const id of lateIds)
    if (!expectedLate.has(id)) fail(`.late has event ${id}, which was not late (${kindOf(produced, id)})`);

  // Windows: partials merged across source partitions.
  const got = new Map<string, { events: number; users: Set<string>; cents: number }>();
  for (const row of world.clickhouse.final(DATABASE, EVENT_COUNTS_PARTIAL.name)) {
    const key = windowKey(Number(row.window_start) * 1000, String(row.event_type), String(row.campaign_id));
    const w = got.get(key) ?? { events: 0, users: new Set<string>(), cents: 0 };
    w.events += Number(row.events);
    for (const u of row.users as string[]) w.users.add(u);
    w.cents += Math.round(Number(row.amount) * 100);
    got.set(key, w);
    if (Number(row.final) !== 1)
      fail(`window ${key} partial of partition ${String(row.source_partition)} is not final`);
  }
  for (const [key, w] of windows) {
    const g = got.get(key);
    if (!g) fail(`window ${key} missing (expected ${w.events} events)`);
    else if (g.events !== w.events || g.users.size !== w.users.size || g.cents !== w.cents) {
      fail(
        `window ${key}: got ${g.events} events/${g.users.size} users/${g.cents} cents, expected ${w.events}/${w.users.size}/${w.cents}`,
      );
    }
  }
  for (const key of got.keys()) if (!windows.has(key)) fail(`window ${key} was not expected`);

  // .dlq: every expected dead letter exactly once; refused window partials once per window, group and partition.
  const dlq = world.kafka.topics.get(`${TOPIC}.dlq`)?.[0] ?? [];
  const seen = new Map<string, string>();
  const partials = new Set<string>();
  for (const d of dlq) {
    const cls = headerString(d.headers, DLQ_HEADERS.errorClass) ?? '?';
    const partition = headerString(d.headers, DLQ_HEADERS.sourcePartition);
    if (headerString(d.headers, 'sluice.dlq.kind') === 'window-partial') {
      const row = JSON.parse(d.value!.toString()) as Record<string, unknown>;
      const key = windowKey(Number(row.window_start) * 1000, String(row.event_type), String(row.campaign_id));
      // After Redis lost its last writes, a window closed by the timer (not by a record) while its partition
      // is processed again from an older snapshot cannot be told from a first close: its refusal may be
      // published again (README, "Redis losing its last writes").
      if (partials.has(`${key}@${partition}`) && !redisLost)
        fail(`.dlq holds the refused partial of window ${key} (partition ${partition}) twice`);
      partials.add(`${key}@${partition}`);
      continue;
    }
    const where = `${partition}/${headerString(d.headers, DLQ_HEADERS.sourceOffset)}`;
    if (seen.has(where)) fail(`.dlq holds record ${where} twice (${cls})`);
    seen.set(where, cls);
  }
  const partialWindows = new Set([...partials].map((p) => p.slice(0, p.lastIndexOf('@'))));
  const refusedWindows = new Map<string, SimEvent[]>();
  for (const id of exp.refused) {
    const e = eventById.get(id)!;
    const key = windowKey(Math.floor(e.event_time / 60_000) * 60_000, e.event_type, e.campaign_id ?? '');
    refusedWindows.set(key, [...(refusedWindows.get(key) ?? []), e]);
  }
  for (const key of refusedWindows.keys())
    if (!partialWindows.has(key)) fail(`.dlq has no refused partial of window ${key}`);

  // The group ends committed at the end of every partition.
  const committed = world.kafka.committed('sluice.event-counts');
  world.kafka.partitions(TOPIC).forEach((log, p) => {
    if (committed.get(p)?.offset !== String(log.length))
      fail(`partition ${p} committed at ${committed.get(p)?.offset}, its end is ${log.length}`);
  });
  return failures;
}

function kindOf(produced: Produced[], id: string): string {
  return produced
    .filter((p) => p.event?.event_id === id)
    .map((p) => `${p.kind}@${p.partition}/${p.offset}`)
    .join(', ');
}
