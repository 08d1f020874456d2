import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTopic as readToEnd } from '../helpers/topics';
import { createTestContext, type TestContext } from '../helpers/context';
import { runCli } from '../helpers/cli';
import { createKafka, defaultPartitionForKey } from '../../src/kafka';
import { DecodeError, SchemaCodec } from '../../src/schema';
import {
  CHANNELS,
  DEFAULT_START_TIME,
  UNKNOWN_SCHEMA_ID,
  produceWorkload,
  type ProduceResult,
  type RecordKind,
} from '../../src/generator';
import { validateAnalyticsEvent } from '../../streams/event-counts';

interface Consumed {
  partition: number;
  offset: number;
  key: Buffer | null;
  value: Buffer;
}

describe('reference workload on the real Kafka', () => {
  let ctx: TestContext;
  let topic: string;
  let result: ProduceResult;
  let consumed: Consumed[];
  const COUNT = 20_000;

  beforeAll(async () => {
    ctx = await createTestContext('generator');
    topic = await ctx.createTopic('events', 6);
    result = await produceWorkload({ config: ctx.config, topic, count: COUNT, seed: 2026, keepLog: true });
    consumed = (await readToEnd(createKafka(ctx.config), topic))
      .map((r) => ({ partition: r.partition, offset: Number(r.offset), key: r.key, value: r.value! }))
      .sort((a, b) => a.partition - b.partition || a.offset - b.offset);
  });

  afterAll(async () => {
    await ctx.cleanup();
  });

  it('lands every record, in log order within each partition', () => {
    expect(consumed).toHaveLength(COUNT);
    const log = result.log!;
    expect(log).toHaveLength(COUNT);
    for (let p = 0; p < 6; p++) {
      const fromKafka = consumed.filter((c) => c.partition === p).map((c) => c.key?.toString() ?? null);
      const fromLog = log.filter((e) => e.partition === p).map((e) => e.key);
      expect(fromKafka).toEqual(fromLog);
      expect(fromKafka.length).toBeGreaterThan(COUNT / 6 / 2); // murmur2 of uuids spreads them
    }
  });

  it('has each kind in the expected number, classified from the bytes alone', async () => {
    // Classify what Kafka holds without the log: decode through the real registry,
    // validate, then per partition in offset order: before the run start -> late,
    // an id seen before -> duplicate. (A duplicate shares its original's key, so partition.)
    const codec = SchemaCodec.fromConfig(ctx.config); // fresh: every writer schema comes from the registry
    const counts: Record<RecordKind, number> = { valid: 0, duplicate: 0, late: 0, poison: 0 };
    const seen = new Set<string>();
    const keyMismatches: number[] = [];
    const channels = new Set<unknown>();
    const decodeCodes = new Set<string>();
    for (const record of consumed) {
      let value: Record<string, unknown>;
      try {
        value = (await codec.decode(record.value)).value;
      } catch (err) {
        expect(err).toBeInstanceOf(DecodeError); // never a registry outage
        decodeCodes.add((err as DecodeError).code);
        counts.poison += 1;
        continue;
      }
      const validation = validateAnalyticsEvent(value);
      if (!validation.ok) {
        counts.poison += 1;
        continue;
      }
      const event = validation.event;
      // Written with v2: the channel at top level, none left in the properties.
      channels.add('channel' in event.properties ? 'in properties' : value.channel);
      if (record.key?.toString() !== event.event_id) keyMismatches.push(record.offset);
      if (seen.has(event.event_id)) counts.duplicate += 1;
      else if (event.event_time < DEFAULT_START_TIME) counts.late += 1;
      else counts.valid += 1;
      seen.add(event.event_id);
    }
    expect(keyMismatches).toEqual([]);
    expect([...channels].sort()).toEqual([...CHANNELS].sort());
    expect(counts).toEqual(result.byKind);
    expect(result.byKind).toEqual({ valid: 19_480, duplicate: 400, late: 100, poison: 20 });
    expect([...decodeCodes].sort()).toEqual(['AVRO_INVALID', 'SCHEMA_UNKNOWN', 'WIRE_FORMAT_INVALID']);
    expect(
      consumed.some((c) => c.value.length >= 5 && c.value[0] === 0 && c.value.readInt32BE(1) === UNKNOWN_SCHEMA_ID),
    ).toBe(true);
  });

  it("puts each keyed record where Kafka's default partitioner would", () => {
    const misplaced = consumed
      .filter((c) => c.key !== null)
      .filter((c) => defaultPartitionForKey(c.key!, 6) !== c.partition);
    expect(misplaced).toEqual([]);
  });

  it('keeps the exact poison bytes in the log', () => {
    const poisonLog = result.log!.filter((e) => e.kind === 'poison');
    const values = new Set(consumed.map((c) => c.value.toString('base64')));
    expect(poisonLog.filter((e) => !values.has(e.value!))).toEqual([]);
    expect(poisonLog.some((e) => e.key === null)).toBe(true);
  });

  it('runs from the CLI, writes the log, and refuses bad input with a one-line error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-generate-'));
    try {
      const logFile = join(dir, 'log.ndjson');
      const cliTopic = ctx.topic('cli');
      const ok = runCli([
        'generate',
        '--events',
        '3000',
        '--seed',
        '5',
        '--topic',
        cliTopic,
        '--partitions',
        '3',
        '--log',
        logFile,
      ]);
      expect(ok.stderr).toBe('');
      expect(ok.status).toBe(0);
      expect(ok.stdout).toMatch(
        /^produced 3000 records to .* records\/s\)\n {2}valid 2922, duplicate 60, late 15, poison 3/,
      );
      expect(ok.stdout).toMatch(/event time 2026-01-01T00:00:\d\d\.\d{3}Z \.\. 2026-01-01T00:0\d:\d\d\.\d{3}Z/);
      const lines = readFileSync(logFile, 'utf8').trim().split('\n');
      expect(lines).toHaveLength(3000);
      expect(JSON.parse(lines[0]!)).toMatchObject({ seq: 0, kind: 'valid' });
      // Created with its side topics, which `sluice run --topic` requires.
      const topics = await ctx.admin.listTopics();
      expect([cliTopic, `${cliTopic}.dlq`, `${cliTopic}.late`].filter((t) => !topics.includes(t))).toEqual([]);

      const usage = runCli(['generate', '--events', '10', '--duplicates', '2']);
      expect(usage.status).toBe(2);
      const missing = runCli(['generate', '--events', '10', '--topic', ctx.topic('absent')]);
      expect(missing.status).toBe(1);
      expect(missing.stderr.trim().split('\n')).toHaveLength(1);
      expect(missing.stderr).toMatch(/does not exist/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
