import type { PartitionTransactions } from '../../src/kafka/group';
import { TOPIC } from './world';
import { event, produceAt, START, windowPartialDeadLetters, world } from './edge-world';

/**
 * Found by a review. The closed-at-end mark (see bounded-end-side-commit.test.ts) was carried forward only
 * by commits at the marked offset made there. After Redis loses the restore point the marked commit names,
 * the next run restores the fallback (below the marked offset) and re-reads up to it; a commit during that
 * re-read keeps Kafka's offset but wrote metadata without the mark. A restore after that commit (here: the
 * next commit does not land) no longer knew the windows' dead letters were published at that offset, and
 * closing the same windows at the same offset published them again. Every commit of the marked offset
 * keeps the mark now.
 */
async function scenario(events: number, failAfterBehindCommit: boolean): Promise<string[]> {
  const w = world(1);
  w.faults.refusedEventTypes.add('refused');
  for (let s = 1; s <= events; s++) {
    const t = START + s * 100;
    produceAt(w, 0, s * 100, event(s, t, s % 10 === 0 ? 'refused' : 'view'));
  }
  await w.scheduler.runUntil(START + 130_000);
  // Run 1: bounded, closes every open window at its end and commits their dead letters with the mark.
  const a = await w.drive(w.start({ bounded: true, processing: { flushIntervalMs: 100, commitIntervalMs: 0 } }));
  const ta = (a.runner as unknown as { transactions: PartitionTransactions }).transactions;
  const commitA = ta.commit.bind(ta);
  const metaA: { offset: string; metadata?: string }[] = [];
  ta.commit = async (partition, records, offset) => {
    await commitA(partition, records, offset);
    metaA.push(offset);
  };
  const outA = await w.drive(a.done);
  if (outA instanceof Error) throw outA;
  const last = metaA.at(-1)!;
  expect(last.metadata).toMatch(/closed-at-end$/);
  const dlqAfterA = (w.kafka.topics.get(`${TOPIC}.dlq`)?.[0] ?? []).length;

  // Redis loses the restore point the marked commit names (its fallback survives).
  const restorePoint = last.metadata!.split('/')[0]!.split(':')[2]!;
  const data = (w.redis as unknown as { data: Map<string, { kind: string; value: Map<string, string> }> }).data;
  let deleted = 0;
  for (const [key, v] of data) {
    if (!key.includes('state:') || v.kind !== 'hash') continue;
    for (const field of [...v.value.keys()])
      if (field === restorePoint || field.startsWith(`${restorePoint}/`)) {
        v.value.delete(field);
        deleted++;
      }
  }
  expect(deleted).toBeGreaterThan(0);

  // Run 2: bounded, nothing new to read. Restores the fallback, re-reads, commits while behind; then one
  // commit does not land (its partition is restored from what Kafka holds), and the run goes to its end.
  const b = await w.drive(w.start({ bounded: true, processing: { flushIntervalMs: 100, commitIntervalMs: 0 } }));
  const tb = (b.runner as unknown as { transactions: PartitionTransactions }).transactions;
  const commitB = tb.commit.bind(tb);
  // A commit made while re-reading below the marked offset keeps that offset and names a snapshot below it.
  const behind = (o: { offset: string; metadata?: string }) =>
    o.offset === last.offset && BigInt(o.metadata!.split(':')[2]!.split('.')[0]!) < BigInt(last.offset);
  const behindCommits: { offset: string; metadata?: string }[] = [];
  let failed = 0;
  tb.commit = async (partition, records, offset) => {
    if (failAfterBehindCommit && behindCommits.length > 0 && failed === 0) {
      failed++;
      throw new Error(`transaction of partition ${partition} failed`); // did not apply
    }
    await commitB(partition, records, offset);
    if (behind(offset)) behindCommits.push(offset);
  };
  const outB = await w.drive(b.done);
  if (outB instanceof Error) throw outB;
  expect({ behind: behindCommits.length > 0, failed }).toEqual({ behind: true, failed: failAfterBehindCommit ? 1 : 0 });
  expect(behindCommits.filter((o) => !o.metadata!.endsWith('/closed-at-end'))).toEqual([]);

  const { some, twice } = windowPartialDeadLetters(w);
  expect({ dlqAfterA: dlqAfterA > 0, some }).toEqual({ dlqAfterA: true, some: true });
  return twice.map((k) => k.split(' ').slice(0, 2).join(' '));
}

describe('the closed-at-end mark after a restore from the fallback snapshot', () => {
  // Every window is still open at run 1's end (the last event is stamped 12:01:50): all close at the end.
  it('without a redo after the commit made below it, each refused window partial is published once', async () => {
    expect(await scenario(1100, false)).toEqual([]);
  }, 120_000);

  it('survives a commit made below it, so a redo after that commit publishes nothing again', async () => {
    expect(await scenario(1100, true)).toEqual([]);
  }, 120_000);
});
