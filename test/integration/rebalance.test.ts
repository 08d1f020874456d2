import { Writable } from 'node:stream';
import { sleep } from '../../src/clock';
import type { SluiceConfig } from '../../src/config';
import { computeExpected, produceWorkload } from '../../src/generator';
import { createKafka } from '../../src/kafka';
import { nodeRunsPlatformatic } from '../../src/kafka/client';
import { startStream, type RunningStream } from '../../src/process';
import { createLogger } from '../../src/telemetry';
import eventCounts from '../../streams/event-counts';
import { createTestContext, type TestContext } from '../helpers/context';
import { waitFor } from '../helpers/processes';
import { compareWithExpected, expectExactAnswer } from '../helpers/reference';

const PARTITIONS = 12;
const EVENTS = 60_000;

/** One member of the group, with what it logged (the runner logs every restore of a partition). */
interface Member {
  name: string;
  running: RunningStream;
  restores: { at: number; partition: number }[];
}

interface Sample {
  at: number;
  /** Per member: its partitions and their next offsets. */
  members: { assigned: number[]; positions: Record<number, string> }[];
}

const platformaticLoads = nodeRunsPlatformatic();
if (!platformaticLoads)
  console.warn(
    `rebalance.test.ts skipped: @platformatic/kafka needs Node.js 22.22 or later, this is ${process.version} (run it with the project's Node.js 24)`,
  );

/**
 * Issue 16: a member joining a running group of the reference stream takes partitions over without
 * the members that keep theirs restoring (or dropping) them, under KIP-848 on @platformatic/kafka; the
 * same join with kafkajs (eager: every partition revoked) is measured beside it. The stream stays exact.
 *
 * Restores are observed in the runners' own logs ('partition restored', one per partition taken over),
 * positions through the runners' status; the pause of a member is the longest time one of its kept
 * partitions did not advance while the join was going on.
 */
(platformaticLoads ? describe : describe.skip)('a member joining a running group', () => {
  // Each scenario has its own database and Redis keys: the same generated events in one of them would be
  // duplicates to the other's dedup, and its windows would add to the other's.
  const contexts: TestContext[] = [];
  afterAll(async () => Promise.all(contexts.map((c) => c.cleanup())));

  async function scenario(name: string, kafka: Partial<SluiceConfig['kafka']>) {
    const ctx = await createTestContext(`rebalance_${name}`);
    contexts.push(ctx);
    const config: SluiceConfig = { ...ctx.config, kafka: { ...ctx.config.kafka, ...kafka } };
    const topic = await ctx.createTopic(name, PARTITIONS);
    await ctx.createTopic(`${name}.dlq`, 1);
    await ctx.createTopic(`${name}.late`, 1);
    const groupId = `${ctx.group}.${name}`;
    const members: Member[] = [];
    const start = async (memberName: string) => {
      const restores: Member['restores'] = [];
      const destination = new Writable({
        write(chunk: Buffer, _encoding, done) {
          for (const line of chunk.toString().split('\n').filter(Boolean)) {
            const entry = JSON.parse(line) as { msg?: string; partition?: number };
            if (
              entry.msg === 'partition restored' ||
              entry.msg?.startsWith('the window state for the committed offset')
            )
              restores.push({ at: Date.now(), partition: entry.partition! });
          }
          done();
        },
      });
      const running = await startStream(
        eventCounts,
        config,
        { groupId, topic, flushIntervalMs: 300 },
        createLogger('info', { member: memberName }, destination),
      );
      const member = { name: memberName, running, restores };
      members.push(member);
      return member;
    };
    const assigned = (m: Member) => m.running.runner.status().assigned;
    const samples: Sample[] = [];
    const sample = () =>
      samples.push({
        at: Date.now(),
        members: members.map((m) => ({ assigned: assigned(m), positions: m.running.runner.status().positions })),
      });

    try {
      for (const n of ['m1', 'm2', 'm3']) await start(n);
      await waitFor(
        'three members sharing every partition',
        async () =>
          members.reduce((n, m) => n + assigned(m).length, 0) === PARTITIONS &&
          members.every((m) => assigned(m).length > 0),
        60_000,
      );
      // The input arrives while the members run, so they are busy when the fourth joins.
      const producing = produceWorkload({
        config,
        topic,
        count: EVENTS,
        seed: 16,
        batchSize: 500,
        duplicateRatio: 0.02,
        outOfOrderMs: 30_000,
        lateRatio: 0.005,
        poisonRatio: 0.001,
        keepLog: true,
      });
      // Once the input has all arrived, a partition that stops advancing is done, not paused.
      let producedAt = Number.POSITIVE_INFINITY;
      void producing.then(() => (producedAt = Date.now()));
      const sampler = setInterval(sample, 20);
      await waitFor('the members processing', async () =>
        members.every((m) => Object.values(m.running.runner.status().positions).some((o) => o !== '0')),
      );
      await sleep(1500);
      const before = members.map((m) => new Set(assigned(m)));
      const joinAt = Date.now();
      const fourth = await start('m4');
      await waitFor('the fourth member owning partitions', async () => assigned(fourth).length > 0, 30_000);
      const settledAt = Date.now();
      await sleep(2000);
      clearInterval(sampler);
      const after = members.slice(0, 3).map((m) => new Set(assigned(m)));
      const gained = assigned(fourth).length;
      const produced = await producing;
      const expected = computeExpected(produced.log!);

      // Every record processed and committed: then stop, and close the windows with a bounded run.
      const admin = createKafka(config).admin();
      await admin.connect();
      try {
        const ends = new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, o.high]));
        await waitFor(
          'every partition committed to its end',
          async () => {
            const [offsets] = await admin.fetchOffsets(groupId, [topic]);
            return (offsets?.partitions ?? []).filter((p) => p.offset === ends.get(p.partition)).length === PARTITIONS;
          },
          60_000,
        );
      } finally {
        await admin.disconnect();
      }
      const originals = members.slice(0, 3);
      await Promise.all(members.map((m) => m.running.stop()));
      const closing = await startStream(eventCounts, config, { bounded: true, groupId, topic }, createLogger('warn'));
      await closing.done;

      // Per original member: the partitions it kept through the join, how often they were restored after
      // it, and the longest time one of them did not advance while the join went on.
      const figures = originals.map((m, i) => {
        const kept = [...before[i]!].filter((p) => after[i]!.has(p));
        // Kept means kept all along: the member owned it in every sample since the join.
        const droppedMeanwhile = kept.filter((p) =>
          samples.some((s) => s.at >= joinAt && s.members[i] !== undefined && !s.members[i]!.assigned.includes(p)),
        );
        const restoresOfKept = m.restores.filter((r) => r.at >= joinAt && kept.includes(r.partition)).length;
        const windowEnd = Math.min(settledAt + 2000, producedAt);
        let pauseMs = 0;
        for (const p of kept) {
          let last: { at: number; offset: string | undefined } | undefined;
          for (const s of samples.filter((x) => x.at >= joinAt - 500 && x.at <= windowEnd)) {
            const offset = s.members[i]?.positions[p];
            if (!last || offset !== last.offset) {
              if (last) pauseMs = Math.max(pauseMs, s.at - last.at);
              last = { at: s.at, offset };
            }
          }
          if (last) pauseMs = Math.max(pauseMs, windowEnd - last.at);
        }
        return { member: m.name, kept, droppedMeanwhile, restoresOfKept, pauseMs };
      });
      const report = await compareWithExpected(ctx.clickhouse, createKafka(config), topic, expected);
      // Every restore after the join, by any member: the partitions that moved (state loaded from Redis again).
      const restoresAfterJoin = members.reduce((n, m) => n + m.restores.filter((r) => r.at >= joinAt).length, 0);
      return { figures, report, joinMs: settledAt - joinAt, gained, restoresAfterJoin };
    } finally {
      for (const m of members) await m.running.stop().catch(() => undefined);
    }
  }

  it('keeps the partitions that stay, without restoring them, under KIP-848 on platformatic; kafkajs (eager) beside it', async () => {
    const platformatic = await scenario('kip848', { client: 'platformatic', groupProtocol: 'consumer' });
    const kafkajs = await scenario('eager', { client: 'kafkajs' });
    console.log(
      [
        `join of a 4th member into 3 (${PARTITIONS} partitions, ${EVENTS} events arriving meanwhile):`,
        ...[
          ['platformatic, KIP-848', platformatic],
          ['kafkajs, eager', kafkajs],
        ].map(([label, r]) => {
          const run = r as typeof platformatic;
          return `  ${label as string}: join took ${run.joinMs} ms, the 4th took ${run.gained}, partitions restored after the join ${run.restoresAfterJoin}; ${run.figures
            .map((f) => `${f.member} kept [${f.kept.join(',')}] restores ${f.restoresOfKept} pause ${f.pauseMs} ms`)
            .join('; ')}`;
        }),
      ].join('\n'),
    );

    expect(platformatic.gained).toBeGreaterThan(0);
    // Under KIP-848 only what the newcomer takes moves.
    expect(platformatic.restoresAfterJoin).toBe(platformatic.gained);
    for (const f of platformatic.figures) {
      expect(f.kept.length).toBeGreaterThan(0);
      expect(f.droppedMeanwhile).toEqual([]);
      expect(f.restoresOfKept).toBe(0);
    }
    expectExactAnswer(platformatic.report);
    expectExactAnswer(kafkajs.report);
  }, 180_000);
});
