import { randomBytes } from 'node:crypto';
import {
  DeadLetterPublisher,
  DLQ_HEADERS,
  readTopic,
  RetryRouter,
  redrive,
  redriveGroup,
  redriveTransactionalId,
  type DeadLetter,
} from '../../src/dlq';
import type { ErrorCode } from '../../src/errors';
import { createKafka, endOffsetSum, type RecordHeaders, type ConsumedRecord } from '../../src/kafka';
import { runCli } from '../helpers/cli';
import { createTestContext, type TestContext } from '../helpers/context';
import { waitFor } from '../helpers/processes';

let ctx: TestContext;
let base: string;
beforeAll(async () => {
  ctx = await createTestContext('dlq');
  base = await ctx.createTopic('events', 3);
  await ctx.createTopic('events.dlq', 2);
  await ctx.createTopic('events.late', 1);
  await ctx.createTopic('events.retry.1', 1);
  await ctx.createTopic('events.retry.2', 1);
});
afterAll(async () => {
  await ctx.cleanup();
});

/** An independent reader (the group consumer, not readTopic): every record of `topic` once `count` have arrived. */
async function consume(topic: string, count: number): Promise<ConsumedRecord[]> {
  const consumer = createKafka(ctx.config).consumer({
    groupId: `${ctx.id}.check.${randomBytes(4).toString('hex')}`,
    topic,
    sessionTimeoutMs: 30_000,
    maxWaitMs: 100,
  });
  const seen: ConsumedRecord[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${seen.length}/${count} records on ${topic}`)), 20_000);
      consumer
        .start({
          onAssignment: () => undefined,
          onCrash: reject,
          onBatch: async (_partition, records, control) => {
            seen.push(...records);
            control.resolve(control.lastOffset);
            if (seen.length >= count) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
    return seen;
  } finally {
    await consumer.disconnect();
  }
}

const high = (topic: string) => endOffsetSum(ctx.admin, topic);
/** Records a read_committed reader sees (a topic written in transactions also holds commit markers, which have offsets). */
async function committedRecords(topic: string): Promise<ConsumedRecord[]> {
  const seen: ConsumedRecord[] = [];
  await readTopic(createKafka(ctx.config), topic, (r) => seen.push(r));
  return seen;
}
/** The same, once there are at least `atLeast`: a commit returns before its markers reach the partitions. */
async function committedAtLeast(topic: string, atLeast: number): Promise<ConsumedRecord[]> {
  let seen: ConsumedRecord[] = [];
  await waitFor(`${atLeast} committed records in ${topic}`, async () => {
    seen = await committedRecords(topic);
    return seen.length >= atLeast;
  });
  return seen;
}
/** Dead letters of `source`'s records `keys` (partition 0, offsets 0, 1, ...), written as a checkpoint writes them. */
async function deadLetters(source: string, keys: string[], errorClass: ErrorCode = 'EVENT_INVALID') {
  const publisher = new DeadLetterPublisher(createKafka(ctx.config), { stream: 'event-counts', now: () => failedAt });
  try {
    await publisher.send(
      keys.map((key, n) => ({
        source: {
          topic: source,
          partition: 0,
          offset: String(n),
          timestamp: '1',
          key: Buffer.from(key),
          value: binaryValue,
          headers: {},
        },
        errorClass,
        message: 'bad',
        attempt: 1,
      })),
    );
  } finally {
    await publisher.disconnect();
  }
}
const str = (headers: RecordHeaders | undefined, name: string) => headers?.[name]?.toString();

/** An error class as dead letters written before classes were error codes name it. */
const formerClass = (name: string) => name as ErrorCode;

const binaryValue = Buffer.from([0x00, 0x00, 0x00, 0x00, 0x07, 0xff, 0xfe, 0x80, 0x00, 0x41]);
const source = (offset: number, key: Buffer | null, headers: RecordHeaders = {}): ConsumedRecord => ({
  topic: base,
  partition: 2,
  offset: String(offset),
  timestamp: '1700000000123',
  key,
  value: binaryValue,
  headers,
});
const failedAt = new Date('2026-03-04T05:06:07.089Z');

describe('DeadLetterPublisher', () => {
  it('writes the original key, value and headers byte for byte, plus exact sluice.dlq.* headers', async () => {
    const publisher = new DeadLetterPublisher(createKafka(ctx.config), { stream: 'event-counts', now: () => failedAt });
    const originalKey = Buffer.from([0xde, 0xad, 0xbe, 0xef]);
    try {
      await publisher.send([
        {
          source: source(41, originalKey, { trace: 'abc', bin: Buffer.from([1, 2, 255]) }),
          errorClass: 'WIRE_FORMAT_INVALID',
          message: 'unknown magic byte 7\nat offset 0',
          attempt: 1,
        },
      ]);
    } finally {
      await publisher.disconnect();
    }
    const [m] = await consume(`${base}.dlq`, 1);
    expect(Buffer.compare(m!.key!, originalKey)).toBe(0);
    expect(Buffer.compare(m!.value!, binaryValue)).toBe(0);
    const headers = Object.fromEntries(
      Object.entries(m!.headers!).map(([k, v]) => [k, k === 'bin' ? v : v!.toString()]),
    );
    expect(headers).toEqual({
      trace: 'abc',
      bin: Buffer.from([1, 2, 255]),
      'sluice.dlq.source.topic': base,
      'sluice.dlq.source.partition': '2',
      'sluice.dlq.source.offset': '41',
      'sluice.dlq.source.timestamp': '1700000000123',
      'sluice.dlq.stream': 'event-counts',
      'sluice.dlq.error.class': 'WIRE_FORMAT_INVALID',
      'sluice.dlq.error.message': 'unknown magic byte 7 | at offset 0',
      'sluice.dlq.attempt': '1',
      'sluice.dlq.failed.at': '2026-03-04T05:06:07.089Z',
    });
  });

  it('writes late events to <topic>.late with the window, watermark, event time and reason', async () => {
    const publisher = new DeadLetterPublisher(createKafka(ctx.config), { stream: 'event-counts' });
    try {
      await publisher.late([
        {
          source: source(9, null),
          windowStart: Date.UTC(2026, 0, 1, 0, 0),
          windowEnd: Date.UTC(2026, 0, 1, 0, 1),
          watermark: Date.UTC(2026, 0, 1, 0, 3),
          eventTime: Date.UTC(2026, 0, 1, 0, 0, 30),
        },
      ]);
    } finally {
      await publisher.disconnect();
    }
    const [m] = await consume(`${base}.late`, 1);
    expect(m!.key).toBeNull();
    expect(Buffer.compare(m!.value!, binaryValue)).toBe(0);
    expect(str(m!.headers, 'sluice.late.window.start')).toBe('2026-01-01T00:00:00.000Z');
    expect(str(m!.headers, 'sluice.late.window.end')).toBe('2026-01-01T00:01:00.000Z');
    expect(str(m!.headers, 'sluice.late.watermark')).toBe('2026-01-01T00:03:00.000Z');
    expect(str(m!.headers, 'sluice.late.event.time')).toBe('2026-01-01T00:00:30.000Z');
    expect(str(m!.headers, 'sluice.late.reason')).toBe('after-allowed-lateness');
    expect(str(m!.headers, 'sluice.late.source.offset')).toBe('9');
  });
});

describe('RetryRouter', () => {
  it('routes attempt 1 to .retry.1 with a not-before, and a record failing after the last retry to the DLQ naming its origin', async () => {
    const now = new Date('2026-05-01T00:00:00.000Z');
    const router = new RetryRouter(createKafka(ctx.config), {
      stream: 'event-counts',
      policy: { maxAttempts: 2, baseDelayMs: 2000, maxDelayMs: 10_000 },
      now: () => now,
      random: () => 0,
    });
    try {
      const first: DeadLetter = {
        source: source(50, Buffer.from('k50')),
        errorClass: 'SERVICE_UNAVAILABLE',
        message: 'slow',
        attempt: 1,
      };
      const [r1] = await router.route([first]);
      expect(r1!.topic).toBe(`${base}.retry.1`);
      const [m1] = await consume(`${base}.retry.1`, 1);
      expect(str(m1!.headers, 'sluice.retry.not-before')).toBe(String(now.getTime() + 1000));
      expect(str(m1!.headers, 'sluice.retry.attempt')).toBe('1');
      // the same record, consumed from .retry.2, fails a third time
      const fromRetry: ConsumedRecord = {
        topic: `${base}.retry.2`,
        partition: 0,
        offset: '0',
        timestamp: m1!.timestamp,
        key: m1!.key,
        value: m1!.value,
        headers: m1!.headers!,
      };
      const [r3] = await router.route([
        { source: fromRetry, errorClass: 'SERVICE_UNAVAILABLE', message: 'still slow', attempt: 3 },
      ]);
      expect(r3!.kind).toBe('dlq');
    } finally {
      await router.disconnect();
    }
    const dead = await consume(`${base}.dlq`, 2);
    const last = dead.find((m) => str(m.headers, 'sluice.dlq.attempt') === '3')!;
    expect(str(last.headers, 'sluice.dlq.source.topic')).toBe(base);
    expect(str(last.headers, 'sluice.dlq.source.offset')).toBe('50');
    expect(Buffer.compare(last.value!, binaryValue)).toBe(0);
  });
});

describe('sluice dlq list | show | redrive', () => {
  it('lists per class, shows records, and redrives each dead letter exactly once with its original bytes', async () => {
    const dlq = `${base}.dlq`;
    const publisher = new DeadLetterPublisher(createKafka(ctx.config), { stream: 'event-counts', now: () => failedAt });
    const before = await high(dlq); // two from the tests above (WIRE_FORMAT_INVALID, SERVICE_UNAVAILABLE)
    try {
      await publisher.send([
        { source: source(100, Buffer.from('a')), errorClass: 'EVENT_INVALID', message: 'amount < 0', attempt: 1 },
        // the same class, as an older Sluice named it
        {
          source: source(101, Buffer.from('b'), { trace: 'keep-me' }),
          errorClass: formerClass('ValidationError'),
          message: 'no user',
          attempt: 1,
        },
      ]);
    } finally {
      await publisher.disconnect();
    }
    expect(await high(dlq)).toBe(before + 2);

    const list = runCli(['dlq', 'list', base]);
    expect(list.stderr).toBe('');
    expect(list.stdout).toContain(`${dlq}: 4 record(s)`);
    expect(list.stdout).toMatch(/EVENT_INVALID\s+2/);
    expect(list.stdout).toMatch(/WIRE_FORMAT_INVALID\s+1/);
    expect(list.stdout).toMatch(/SERVICE_UNAVAILABLE\s+1/);

    const show = runCli(['dlq', 'show', dlq, '--limit', '1']);
    expect(show.status).toBe(0);
    expect(show.stdout.match(/^\S+\[\d\]@\d+/gm)).toHaveLength(1);
    expect(show.stdout).toContain('header sluice.dlq.error.class = ');
    expect(show.stdout).toContain('10 bytes: hex 00 00 00 00 07 ff fe 80 00 41');

    const dry = runCli(['dlq', 'redrive', base, '--filter', 'error.class=ValidationError']); // a former name still filters
    expect(dry.status).toBe(0);
    expect(dry.stdout).toContain('would redrive 2');
    // A plan per class, no progress: a dry run only reads.
    expect(dry.stdout).toMatch(/^\s+class\s+kind\s+records\s+would redrive\s+skipped \(why\)$/m);
    expect(dry.stdout).toMatch(/^\s+EVENT_INVALID\s+transient\s+2\s+2\s+-$/m);
    expect(dry.stdout).toContain('dry run: nothing was produced or committed');
    expect(dry.stderr).toBe('');
    expect(await high(base)).toBe(0);
    const [notCommitted] = await ctx.admin.fetchOffsets(redriveGroup(dlq, 'EVENT_INVALID'), [dlq]);
    expect(notCommitted!.partitions.every((p) => p.offset === '-1')).toBe(true);

    const real = runCli(['dlq', 'redrive', base, '--filter', 'error.class=EVENT_INVALID', '--yes', '--json']);
    expect(real.stderr).toBe(''); // --json: no progress output
    expect(JSON.parse(real.stdout)).toMatchObject({ dryRun: false, redriven: 2, byClass: { EVENT_INVALID: 2 } });
    const redriven = await consume(base, 2);
    expect(redriven.map((m) => m.key!.toString()).sort()).toEqual(['a', 'b']);
    for (const m of redriven) {
      expect(Buffer.compare(m.value!, binaryValue)).toBe(0);
      expect(Object.keys(m.headers!).filter((h) => h.startsWith('sluice.dlq.'))).toEqual([]);
      expect(str(m.headers, 'sluice.redrive.from.topic')).toBe(dlq);
      expect(str(m.headers, 'sluice.redrive.origin.offset')).toBe(m.key!.toString() === 'a' ? '100' : '101');
    }
    expect(str(redriven.find((m) => m.key!.toString() === 'b')!.headers, 'trace')).toBe('keep-me');
    // the redrive offsets name DLQ records that really are those two
    const dlqRecords = await consume(dlq, 4);
    const fromOffsets = redriven
      .map((m) => `${str(m.headers, 'sluice.redrive.from.partition')}/${str(m.headers, 'sluice.redrive.from.offset')}`)
      .sort();
    const expected = dlqRecords
      .filter((m) => ['EVENT_INVALID', 'ValidationError'].includes(str(m.headers, 'sluice.dlq.error.class')!))
      .map((m) => m.offset);
    expect(fromOffsets.map((o) => o.split('/')[1]).sort()).toEqual(expected.sort());

    // the library behind the CLI (each CLI start costs seconds): nothing is redriven twice, filtered or not
    const kafka = createKafka(ctx.config);
    expect(await redrive(kafka, dlq, { errorClass: 'ValidationError', dryRun: false })).toMatchObject({
      redriven: 0,
      group: redriveGroup(dlq, 'EVENT_INVALID'),
    });
    // WIRE_FORMAT_INVALID is permanent (left for a run asking for it); the SERVICE_UNAVAILABLE record failed three
    // times through the retry topics, at the default bound (passed over for good).
    expect(await redrive(kafka, dlq, { dryRun: false })).toMatchObject({
      redriven: 0,
      alreadyRedriven: 2,
      skippedPermanent: 1,
      skippedAtBound: 1,
    });
    expect(await redrive(kafka, dlq, { dryRun: false, includePermanent: true, maxAttempts: 5 })).toMatchObject({
      redriven: 1,
      alreadyRedriven: 3,
      byClass: { WIRE_FORMAT_INVALID: 1 },
    });
    expect(await redrive(kafka, dlq, { dryRun: false, includePermanent: true })).toMatchObject({
      redriven: 0,
      scanned: 0,
    });
    expect(await committedRecords(base)).toHaveLength(3);
  });

  it('a redrive interrupted before its commit and run again redrives each record once', async () => {
    const source = await ctx.createTopic('interrupted', 1);
    const dlq = await ctx.createTopic('interrupted.dlq', 1);
    await deadLetters(source, ['k0', 'k1', 'k2']);
    // A redrive that wrote its records in its transaction and died before committing it.
    const kafka = createKafka(ctx.config);
    const crashed = kafka.producer({ transactionalId: redriveTransactionalId(dlq), idempotent: true });
    await crashed.connect();
    const transaction = await crashed.transaction();
    await transaction.send({
      topic: source,
      compression: 'gzip',
      messages: [0, 1, 2].map((n) => ({ key: `k${n}`, value: binaryValue })),
    });
    // (no commit: the process is gone; its producer connection is simply dropped)
    await crashed.disconnect();

    expect(await redrive(kafka, dlq, { dryRun: false })).toMatchObject({ redriven: 3 });
    const seen = await committedRecords(source);
    // The crashed run's records were never committed: the new run's taking over its transactional id aborted them.
    expect(seen.map((r) => r.key!.toString()).sort()).toEqual(['k0', 'k1', 'k2']);
    expect(await redrive(kafka, dlq, { dryRun: false })).toMatchObject({ redriven: 0 });
    expect(await committedRecords(source)).toHaveLength(3);
  });

  it('counts a class group an older Sluice committed under a former class name', async () => {
    const source = await ctx.createTopic('former', 1);
    const dlq = await ctx.createTopic('former.dlq', 1);
    await deadLetters(source, ['k0', 'k1', 'k2'], formerClass('ValidationError'));
    // An older Sluice redrove the first record, filtered by the class's former name.
    await ctx.admin.setOffsets(redriveGroup(dlq, 'ValidationError'), dlq, [{ partition: 0, offset: '1' }]);
    const kafka = createKafka(ctx.config);
    expect(await redrive(kafka, dlq, { errorClass: 'EVENT_INVALID', dryRun: true })).toMatchObject({
      redriven: 2,
      alreadyRedriven: 1,
      byClass: { EVENT_INVALID: 2 },
    });
    expect(await redrive(kafka, dlq, { dryRun: true })).toMatchObject({ redriven: 2, alreadyRedriven: 1 });
  });

  it('sends dead letters back only to the topic the DLQ belongs to: one whose source header names another is counted, never sent', async () => {
    const source = await ctx.createTopic('home', 1);
    const dlq = await ctx.createTopic('home.dlq', 1);
    const other = await ctx.createTopic('payments', 1); // another service's topic
    await deadLetters(source, ['genuine']);
    // Anyone who can write to the DLQ can write a "dead letter" that names another topic as its source.
    const kafka = createKafka(ctx.config);
    const forger = kafka.producer();
    await forger.connect();
    await forger.send({
      topic: dlq,
      messages: [
        {
          key: 'forged',
          value: 'attacker-chosen bytes',
          headers: {
            [DLQ_HEADERS.sourceTopic]: other,
            [DLQ_HEADERS.sourcePartition]: '0',
            [DLQ_HEADERS.sourceOffset]: '0',
            [DLQ_HEADERS.errorClass]: 'EVENT_INVALID',
            [DLQ_HEADERS.attempt]: '1',
          },
        },
      ],
    });
    await forger.disconnect();

    const plan = runCli(['dlq', 'redrive', source]);
    expect(plan.stderr).toBe('');
    expect(plan.stdout).toMatch(
      /^\s+EVENT_INVALID\s+transient\s+2\s+1\s+1 name another source topic \(never redriven\)$/m,
    );
    expect(await redrive(kafka, dlq, { dryRun: false })).toMatchObject({
      redriven: 1,
      foreignSource: 1,
      byTarget: { [source]: 1 },
    });
    expect((await committedAtLeast(source, 1)).map((r) => r.key!.toString())).toEqual(['genuine']);
    expect(await high(other)).toBe(0); // not even an aborted write
  });

  it('two redrives of one DLQ at once, filtered and not, send each dead letter once: the later fences the earlier', async () => {
    const source = await ctx.createTopic('together', 1);
    const dlq = await ctx.createTopic('together.dlq', 1);
    await deadLetters(source, ['k0', 'k1']);
    const kafka = createKafka(ctx.config);
    const runs = await Promise.allSettled([
      redrive(kafka, dlq, { dryRun: false }),
      redrive(kafka, dlq, { dryRun: false, errorClass: 'EVENT_INVALID' }),
    ]);
    const sent = runs.reduce((n, run) => n + (run.status === 'fulfilled' ? run.value.redriven : 0), 0);
    expect(sent).toBe(2);
    for (const run of runs)
      if (run.status === 'rejected') expect(String(run.reason)).toMatch(/took the DLQ over and fenced this one/);
    const copies = await committedAtLeast(source, 2);
    expect(copies.map((r) => r.key!.toString()).sort()).toEqual(['k0', 'k1']);
    // And one after the other, either filter finds both sent.
    expect(await redrive(kafka, dlq, { dryRun: false, errorClass: 'EVENT_INVALID' })).toMatchObject({ redriven: 0 });
    expect(await redrive(kafka, dlq, { dryRun: false })).toMatchObject({ redriven: 0 });
    expect(await committedRecords(source)).toHaveLength(2);
  });

  it('never redrives a refused row (its event was claimed and counted when the row was refused): the plan says replay', async () => {
    const source = await ctx.createTopic('refused', 1);
    const dlq = await ctx.createTopic('refused.dlq', 1);
    await deadLetters(source, ['row'], 'SINK_ROW_REFUSED');
    await deadLetters(source, ['fixable']);
    const kafka = createKafka(ctx.config);

    const plan = runCli(['dlq', 'redrive', source, '--include-permanent']);
    expect(plan.stderr).toBe('');
    expect(plan.stdout).toMatch(
      /^\s+SINK_ROW_REFUSED\s+replay\s+1\s+0\s+1 refused rows \(never redriven: widen the column, then sluice replay their range\)$/m,
    );
    await expect(redrive(kafka, dlq, { dryRun: true, errorClass: 'SINK_ROW_REFUSED' })).rejects.toThrow(
      /never redriven.*a copy would be a duplicate.*sluice replay/,
    );
    expect(await redrive(kafka, dlq, { dryRun: false, includePermanent: true })).toMatchObject({
      redriven: 1,
      notRedrivable: 1,
      byClass: { EVENT_INVALID: 1 },
    });
    expect((await committedAtLeast(source, 1)).map((r) => r.key!.toString())).toEqual(['fixable']);
  });

  it('rejects an unsupported filter with a one-line usage hint', () => {
    const bad = runCli(['dlq', 'redrive', base, '--filter', 'stream=x']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^sluice: --filter 'stream=x' is not supported: use --filter error.class=<CLASS>/);
  });
});
