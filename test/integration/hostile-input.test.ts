import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { promisify } from 'node:util';
import pino from 'pino';
import { hashApiKey, startIngestServer, type RunningIngestServer } from '../../src/ingest';
import { createKafka, type KafkaProducer, type Message } from '../../src/kafka';
import { startStream } from '../../src/process';
import { SchemaCodec, loadAvroSchema } from '../../src/schema';
import { createLogger } from '../../src/telemetry';
import eventCounts, { type AnalyticsEvent } from '../../streams/event-counts';
import { createTestContext, type TestContext } from '../helpers/context';
import { SeededRandom } from '../../src/generator/random';
import { readTopic, type ReadRecord } from '../helpers/topics';

const run = promisify(execFile);
const KCAT = '/usr/bin/kcat';
const API_KEY = 'hostile-input-key';
const CASE = 'hostile.case';
const BASE = Date.UTC(2026, 0, 1, 12, 0, 0);
const V1 = loadAvroSchema('analytics_event');

/**
 * Issue 9, hostile input: each hostile case goes through the producer path
 * (raw records written straight to the topic with kcat or kafkajs) and
 * through the HTTP API, with valid events interleaved. Then the reference
 * stream runs over the topic (bounded). Every hostile record must come out
 * as a dead letter naming its reason and source, or as a 4xx naming the
 * problem with nothing written; the run must finish; and ClickHouse must hold
 * exactly the valid events sent, counted per window as computed here.
 *
 * Decisions: a tombstone (null value) is dead-lettered (`VALUE_MISSING`):
 * `events` is an append-only log where a delete means nothing, so a null
 * value is a producer bug to be seen, not skipped. A null key is harmless:
 * the key only spreads records over partitions, the event id in the value is
 * the identity, so a valid event without a key is processed like any other.
 * Event times outside [2000, 2100) are dead-lettered by the stream's
 * validator; the API already refuses times no ClickHouse DateTime can hold.
 */
describe('hostile input through the producer path and the HTTP API', () => {
  let ctx: TestContext;
  let topic: string;
  let producer: KafkaProducer;
  let codec: SchemaCodec;
  let v1Id: number;
  let api: RunningIngestServer;
  let dir: string;
  const seeded = new SeededRandom(9);
  const random = () => seeded.next();

  /** Every valid event sent, by id: what ClickHouse must hold, exactly. */
  const valid = new Map<string, AnalyticsEvent>();
  /** Hostile records that reached the topic, by case name: the dead-letter error class each must get. */
  const deadLetters = new Map<string, { errorClass: string; value: Buffer | null; key: string | null }>();
  /** What the dead letter's message must say, for the cases where the class alone does not name the problem. */
  const REASONS: Record<string, RegExp> = {
    'random-bytes': /not the wire-format magic byte/,
    'truncated-avro': /truncated/,
    'unknown-schema-id': /schema id 987654321 is not in the schema registry/,
    'other-subject-schema-id': /cannot be read with the reader schema/,
    tombstone: /tombstone/,
    'empty-value': /0 byte\(s\), shorter than the 5-byte/,
    'trailing-bytes': /trailing byte/,
    'missing-event-time': /event_time/,
    'event-time-negative': /event_time must be integer epoch ms in \[2000-01-01, 2100-01-01\), got -1/,
    'event-time-far-future': /event_time must be .* got 253402214400000/,
    'event-time-beyond-2^53': /a long is beyond ±2\^52/,
    'amount-nan': /amount must be null or a finite number >= 0, got NaN/,
    'huge-event-type': /event_type must be .*\.\.\./,
    'invalid-utf8': /not valid UTF-8/,
    'http-event-time-after-2100': /event_time must be/,
  };
  /** Event ids the API refused: none may appear anywhere. */
  const refusedIds: string[] = [];
  let seq = 0;
  let partitionTurn = 0;

  beforeAll(async () => {
    ctx = await createTestContext('hostile');
    topic = await ctx.createTopic('events', 3);
    await ctx.createTopic('events.dlq', 1);
    await ctx.createTopic('events.late', 1);
    codec = SchemaCodec.fromConfig(ctx.config);
    v1Id = await codec.register(`${topic}-value`, V1);
    producer = createKafka(ctx.config).producer();
    await producer.connect();
    api = await startIngestServer(ctx.config, {
      logger: pino({ level: 'silent' }),
      settings: {
        port: 0,
        topic,
        apiKeys: [hashApiKey(API_KEY)],
        rateLimitPerSecond: 100_000,
        maxBodyBytes: 256 * 1024,
      },
    });
    dir = mkdtempSync(join(tmpdir(), 'sluice-hostile-'));
  });
  afterAll(async () => {
    await api?.close();
    await producer?.disconnect();
    rmSync(dir, { recursive: true, force: true });
    await ctx.cleanup();
  });

  const uuid = () => 'xxxxxxxx-xxxx-4xxx-8xxx-xxxxxxxxxxxx'.replace(/x/g, () => Math.floor(random() * 16).toString(16));
  /** A valid event; times increase in the order events are made, so no valid event is ever late. */
  function makeEvent(overrides: Partial<AnalyticsEvent> = {}): AnalyticsEvent {
    seq += 1;
    return {
      event_id: uuid(),
      event_type: ['view', 'click', 'purchase'][seq % 3]!,
      user_id: `user-${Math.floor(random() * 40)}`,
      campaign_id: seq % 4 === 0 ? null : `camp-${seq % 2}`,
      ad_id: null,
      event_time: BASE + seq * 250,
      amount: seq % 3 === 2 ? (seq % 7) + 0.5 : null,
      properties: { seq: String(seq) },
      ...overrides,
    };
  }
  const nextPartition = () => partitionTurn++ % 3;
  const encode = (event: object) => codec.encode(v1Id, event);

  async function sendKafka(name: string, message: Message, errorClass: string): Promise<void> {
    await producer.send({
      topic,
      messages: [{ partition: nextPartition(), ...message, headers: { [CASE]: name } }],
    });
    deadLetters.set(name, {
      errorClass,
      value: (message.value as Buffer | null) ?? null,
      key: (message.key as string | null) ?? null,
    });
  }

  /**
   * kcat (librdkafka) writes one file as one record. It skips an empty file
   * or line, so an empty value goes as `key:` on stdin (`-K:`), which `-Z`
   * turns into a null value: a tombstone.
   */
  async function sendKcat(
    name: string,
    value: Buffer,
    options: { key?: string; errorClass?: string } = {},
  ): Promise<void> {
    const args = [
      '-P',
      '-b',
      ctx.config.kafka.brokers[0]!,
      '-t',
      topic,
      '-p',
      String(nextPartition()),
      '-H',
      `${CASE}=${name}`,
      '-Z',
      '-X',
      'acks=all',
    ];
    if (value.length === 0) {
      const child = execFile(KCAT, [...args, '-K', ':'], { timeout: 30_000 });
      child.stdin!.end(`${options.key}:\n`);
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(code).toBe(0);
    } else {
      if (options.key !== undefined) args.push('-k', options.key);
      const file = join(dir, `${name}.bin`);
      writeFileSync(file, value);
      await run(KCAT, [...args, file], { timeout: 30_000 });
    }
    if (options.errorClass)
      deadLetters.set(name, {
        errorClass: options.errorClass,
        value: value.length === 0 ? null : value,
        key: options.key ?? null,
      });
  }

  async function sendValid(how: 'kafkajs' | 'kcat' | 'http', count = 1): Promise<void> {
    const events = Array.from({ length: count }, () => makeEvent());
    if (how === 'http') {
      const res = await post(JSON.stringify(events));
      expect(res.status).toBe(202);
    } else if (how === 'kcat') {
      for (const e of events) await sendKcat(`valid-${e.event_id}`, await encode(e), { key: e.event_id });
    } else {
      const messages = await Promise.all(
        events.map(async (e) => ({ key: e.event_id, value: await encode(e), partition: nextPartition() })),
      );
      await producer.send({ topic, messages });
    }
    for (const e of events) valid.set(e.event_id, e);
  }

  async function post(
    body: string | Buffer,
    contentType: string | null = 'application/json',
    extra: Record<string, string> = {},
  ) {
    const headers: Record<string, string> = { authorization: `Bearer ${API_KEY}`, ...extra };
    if (contentType !== null) headers['content-type'] = contentType;
    const res = await fetch(`${api.url}/v1/events`, {
      method: 'POST',
      headers,
      body,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    return {
      status: res.status,
      body: JSON.parse(text) as { error?: string; message?: string; issues?: { path: string; reason: string }[] },
    };
  }

  /** An HTTP case the API must refuse: the status, the error code, and the message or an issue naming the problem. */
  async function refused(
    name: string,
    body: string | Buffer,
    expected: { status: number; error: string | RegExp; names: RegExp },
    contentType?: string | null,
    extra?: Record<string, string>,
  ) {
    const res = await post(body, contentType === undefined ? 'application/json' : contentType, extra);
    const said = `${res.body.message ?? ''} ${(res.body.issues ?? []).map((i) => `${i.path}: ${i.reason}`).join('; ')}`;
    expect({ name, status: res.status, error: res.body.error }).toEqual({
      name,
      status: expected.status,
      error: typeof expected.error === 'string' ? expected.error : expect.stringMatching(expected.error),
    });
    expect(said).toMatch(expected.names);
  }

  /** Bytes of a v1 encoding with the varint of `event_time` replaced: for times avsc will not write. */
  async function withEventTimeVarint(varint: number[]): Promise<Buffer> {
    const a = await encode(makeEvent({ event_time: 1 }));
    const b = await encode({ ...(await codec.decode(a, V1)).value, event_time: 2 });
    const at = a.findIndex((byte, i) => byte !== b[i]);
    return Buffer.concat([a.subarray(0, at), Buffer.from(varint), a.subarray(at + 1)]);
  }

  it('dead-letters or refuses every hostile record, keeps going, and loses no valid event', async () => {
    // ---- Producer path: raw records straight to the topic --------------------------------------
    await sendValid('kafkajs', 5);
    const garbage = Buffer.from(Array.from({ length: 64 }, (_, i) => (i === 0 ? 0x7b : Math.floor(random() * 256))));
    await sendKcat('random-bytes', garbage, { key: 'hostile-random', errorClass: 'WIRE_FORMAT_INVALID' });
    const wrongMagic = await encode(makeEvent());
    wrongMagic[0] = 0x01;
    await sendKcat('wrong-magic-byte', wrongMagic, { key: 'hostile-magic', errorClass: 'WIRE_FORMAT_INVALID' });
    await sendValid('kcat', 2);
    const whole = await encode(makeEvent());
    await sendKcat('truncated-avro', whole.subarray(0, whole.length - 7), {
      key: 'hostile-truncated',
      errorClass: 'AVRO_INVALID',
    });
    const unknownId = await encode(makeEvent());
    unknownId.writeInt32BE(987_654_321, 1);
    await sendKcat('unknown-schema-id', unknownId, { key: 'hostile-unknown-id', errorClass: 'SCHEMA_UNKNOWN' });
    const otherId = await codec.register(`${ctx.id}.other-value`, {
      type: 'record',
      name: 'Invoice',
      fields: [{ name: 'total', type: 'long' }],
    });
    await sendKcat('other-subject-schema-id', await codec.encode(otherId, { total: 42 }), {
      key: 'hostile-other-subject',
      errorClass: 'SCHEMA_INCOMPATIBLE',
    });
    await sendKcat('tombstone', Buffer.alloc(0), { key: 'hostile-tombstone', errorClass: 'VALUE_MISSING' });
    await sendKcat('json-not-avro', Buffer.from(JSON.stringify(makeEvent())), {
      key: 'hostile-json',
      errorClass: 'WIRE_FORMAT_INVALID',
    });
    await sendValid('kafkajs', 3);

    // Over the size limit: the broker refuses it, so nothing reaches the topic; both clients say why.
    const oversize = Buffer.alloc(1_100_000, 0x61);
    const kcatOversize = await sendKcat('oversize-kcat', oversize, { key: 'hostile-oversize' }).then(
      () => 'sent',
      (err: { stderr?: string; code?: number }) => `${err.code} ${err.stderr ?? ''}`,
    );
    expect(kcatOversize).toMatch(/too large/i);
    await expect(
      producer.send({
        topic,
        messages: [{ key: 'hostile-oversize', value: oversize, headers: { [CASE]: 'oversize-kafkajs' } }],
      }),
    ).rejects.toThrow(/larger than the max message size|too large/i);

    await sendKafka('empty-value', { key: 'hostile-empty', value: Buffer.alloc(0) }, 'WIRE_FORMAT_INVALID');
    await sendKafka(
      'header-only',
      { key: 'hostile-header-only', value: (await encode(makeEvent())).subarray(0, 5) },
      'AVRO_INVALID',
    );
    await sendKafka(
      'trailing-bytes',
      { key: 'hostile-trailing', value: Buffer.concat([await encode(makeEvent()), Buffer.from([1, 2, 3])]) },
      'AVRO_INVALID',
    );
    await sendKafka('null-key-garbage', { key: null, value: Buffer.from('not avro at all') }, 'WIRE_FORMAT_INVALID');
    await sendKafka('null-key-null-value', { key: null, value: null }, 'VALUE_MISSING');
    // A valid event without a key is just a valid event.
    const keyless = makeEvent();
    await producer.send({
      topic,
      messages: [
        { key: null, value: await encode(keyless), partition: nextPartition(), headers: { [CASE]: 'keyless-valid' } },
      ],
    });
    valid.set(keyless.event_id, keyless);

    // Missing event time: written with a schema that lacks it (same record name, its own subject).
    const noClock = {
      ...(V1 as { fields: { name: string }[] }),
      fields: (V1 as { fields: { name: string }[] }).fields.filter((f) => f.name !== 'event_time'),
    };
    const noClockId = await codec.register(`${ctx.id}.no-clock-value`, noClock);
    const { event_time: _dropped, ...clockless } = makeEvent();
    expect(_dropped).toBeGreaterThan(0);
    await sendKafka(
      'missing-event-time',
      { key: 'hostile-no-time', value: await codec.encode(noClockId, clockless) },
      'SCHEMA_INCOMPATIBLE',
    );
    await sendKafka(
      'event-time-negative',
      { key: 'hostile-negative-time', value: await encode(makeEvent({ event_time: -1 })) },
      'EVENT_INVALID',
    );
    await sendKafka(
      'event-time-epoch-zero',
      { key: 'hostile-zero-time', value: await encode(makeEvent({ event_time: 0 })) },
      'EVENT_INVALID',
    );
    await sendKafka(
      'event-time-far-future',
      { key: 'hostile-future-time', value: await encode(makeEvent({ event_time: Date.UTC(9999, 11, 31) })) },
      'EVENT_INVALID',
    );
    // 2^62 ms: a long avsc will neither write nor read (JS cannot hold it exactly): zigzag varint, 9 bytes of 0x80 then 0x01.
    await sendKafka(
      'event-time-beyond-2^53',
      {
        key: 'hostile-huge-time',
        value: await withEventTimeVarint([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
      },
      'AVRO_INVALID',
    );
    await sendKafka(
      'amount-nan',
      { key: 'hostile-nan', value: await encode(makeEvent({ amount: Number.NaN })) },
      'EVENT_INVALID',
    );
    await sendValid('kafkajs', 3);
    await sendKafka(
      'huge-event-type',
      { key: 'hostile-huge-type', value: await encode(makeEvent({ event_type: 'x'.repeat(300_000) })) },
      'EVENT_INVALID',
    );
    const badUtf8 = await encode(makeEvent({ user_id: 'user-\u00e9' }));
    badUtf8[badUtf8.indexOf(Buffer.from('user-\u00e9')) + 5] = 0xff; // the first byte of é becomes one no UTF-8 sequence starts with
    await sendKafka('invalid-utf8', { key: 'hostile-utf8', value: badUtf8 }, 'AVRO_INVALID');
    // Two invalid records of 600 KB each: their dead letters together exceed what one request to the DLQ may carry.
    await sendKafka(
      'big-invalid-1',
      { key: 'hostile-big-1', value: await encode(makeEvent({ user_id: 'u'.repeat(600_000) })) },
      'EVENT_INVALID',
    );
    partitionTurn -= 1; // the same partition: both in one checkpoint
    await sendKafka(
      'big-invalid-2',
      { key: 'hostile-big-2', value: await encode(makeEvent({ user_id: 'v'.repeat(600_000) })) },
      'EVENT_INVALID',
    );
    // Valid but unusual: a __proto__ map key and a 200 KB property value are data, stored as sent.
    const protoKey = makeEvent({
      properties: JSON.parse('{"__proto__":"not a prototype","constructor":"x"}') as Record<string, string>,
    });
    const bigProperty = makeEvent({ properties: { blob: 'b'.repeat(200_000) } });
    for (const e of [protoKey, bigProperty]) {
      await producer.send({
        topic,
        messages: [{ key: e.event_id, value: await encode(e), partition: nextPartition() }],
      });
      valid.set(e.event_id, e);
    }

    // ---- HTTP API ----------------------------------------------------------------------------
    await sendValid('http', 4);
    const refuse = (
      name: string,
      body: string | Buffer,
      status: number,
      error: string | RegExp,
      names: RegExp,
      contentType?: string | null,
      extra?: Record<string, string>,
    ) => refused(name, body, { status, error, names }, contentType, extra);
    const refusedEvent = (overrides: Record<string, unknown>) => {
      const e = { ...makeEvent(), ...overrides };
      refusedIds.push(e.event_id as string);
      return e;
    };
    await refuse('random bytes', garbage, 400, /malformed_(json|utf8)/, /not valid (JSON|UTF-8)/);
    await refuse(
      'Avro bytes sent as JSON (wrong magic byte, truncated Avro, unknown schema id)',
      wrongMagic,
      400,
      /malformed_(json|utf8)/,
      /not valid (JSON|UTF-8)/,
    );
    await refuse(
      'Avro bytes as octet-stream',
      whole,
      415,
      'unsupported_media_type',
      /application\/json/,
      'application/octet-stream',
    );
    await refuse(
      'truncated JSON',
      JSON.stringify(refusedEvent({})).slice(0, 60),
      400,
      'malformed_json',
      /not valid JSON/,
    );
    await refuse('malformed JSON', "{event_id: 'x', }", 400, 'malformed_json', /not valid JSON/);
    await refuse(
      'over the size limit',
      JSON.stringify(refusedEvent({ properties: { blob: 'x'.repeat(300 * 1024) } })),
      413,
      'body_too_large',
      /larger than 262144 bytes/,
    );
    await refuse(
      'no event id (the key)',
      JSON.stringify({ ...refusedEvent({}), event_id: undefined }),
      400,
      'invalid_events',
      /event_id: required string is missing/,
    );
    await refuse('null body (a tombstone)', 'null', 400, 'invalid_events', /expected a JSON object, got null/);
    await refuse('empty batch', '[]', 400, 'invalid_events', /no events/);
    await refuse(
      'missing event time',
      JSON.stringify({ ...refusedEvent({}), event_time: undefined }),
      400,
      'invalid_events',
      /event_time: required long/,
    );
    await refuse(
      'negative event time',
      JSON.stringify(refusedEvent({ event_time: -1 })),
      400,
      'invalid_events',
      /event_time: expected epoch milliseconds between 1970/,
    );
    await refuse(
      'far-future event time',
      JSON.stringify(refusedEvent({ event_time: Date.UTC(9999, 0, 1) })),
      400,
      'invalid_events',
      /event_time: expected epoch milliseconds/,
    );
    await refuse(
      'NaN event time',
      JSON.stringify(refusedEvent({ event_time: 'NaN' })),
      400,
      'invalid_events',
      /event_time: expected long, got string "NaN"/,
    );
    await refuse(
      'infinite event time',
      `${JSON.stringify(refusedEvent({})).slice(0, -1)},"event_time":1e400}`,
      400,
      'invalid_events',
      /event_time: expected long/,
    );
    await refuse(
      'fractional event time',
      JSON.stringify(refusedEvent({ event_time: BASE + 0.5 })),
      400,
      'invalid_events',
      /event_time: expected long/,
    );
    const invalidUtf8 = Buffer.from(JSON.stringify(refusedEvent({ user_id: 'user-\u00e9' })));
    invalidUtf8[invalidUtf8.indexOf(Buffer.from('user-\u00e9')) + 5] = 0xff;
    await refuse('invalid UTF-8', invalidUtf8, 400, 'malformed_utf8', /not valid UTF-8/);
    await refuse(
      'lone surrogate',
      JSON.stringify(refusedEvent({ user_id: 'user-\ud800' })),
      400,
      'invalid_events',
      /user_id: string holds a lone UTF-16 surrogate/,
    );
    const deep = `${JSON.stringify({ ...refusedEvent({}), properties: undefined }).slice(0, -1)},"properties":{"a":${'['.repeat(60_000)}${']'.repeat(60_000)}}}`;
    await refuse('deeply nested JSON', deep, 400, 'invalid_events', /properties\.a: expected string, got array/);
    await refuse(
      '__proto__ as a field',
      `${JSON.stringify(refusedEvent({})).slice(0, -1)},"__proto__":{"polluted":"yes"}}`,
      400,
      'invalid_events',
      /__proto__: unknown field/,
    );
    await refuse(
      '__proto__ map key with an object',
      `${JSON.stringify({ ...refusedEvent({}), properties: undefined }).slice(0, -1)},"properties":{"__proto__":{"polluted":"yes"}}}`,
      400,
      'invalid_events',
      /properties.__proto__: expected string/,
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await refuse(
      'text/plain',
      JSON.stringify(refusedEvent({})),
      415,
      'unsupported_media_type',
      /got text\/plain/,
      'text/plain',
    );
    // A Buffer body: fetch labels a string body text/plain by itself.
    await refuse(
      'no content type',
      Buffer.from(JSON.stringify(refusedEvent({}))),
      415,
      'unsupported_media_type',
      /got none/,
      null,
    );
    await refuse(
      'latin1 JSON',
      JSON.stringify(refusedEvent({})),
      415,
      'unsupported_media_type',
      /charset/,
      'application/json; charset=latin1',
    );
    await refuse(
      'gzip that is not gzip',
      garbage,
      400,
      'malformed_encoding',
      /not valid gzip data/,
      'application/json',
      { 'content-encoding': 'gzip' },
    );
    // A decompression bomb: 10 KB of gzip that inflates to 10 MB; the byte limit applies to the inflated body.
    await refuse(
      'gzip bomb',
      gzipSync(Buffer.alloc(10 * 1024 * 1024, 0x20)),
      413,
      'body_too_large',
      /larger than 262144 bytes/,
      'application/json',
      { 'content-encoding': 'gzip' },
    );
    await refuse(
      'truncated gzip',
      gzipSync(JSON.stringify(refusedEvent({}))).subarray(0, 20),
      400,
      'malformed_encoding',
      /not valid gzip data/,
      'application/json',
      { 'content-encoding': 'gzip' },
    );
    await refuse(
      'unknown content encoding',
      gzipSync(JSON.stringify(refusedEvent({}))),
      415,
      'unsupported_media_type',
      /encoding/,
      'application/json',
      { 'content-encoding': 'br-but-not' },
    );
    await sendValid('http', 2);

    // Accepted by the API (they fit the schema), refused by the stream's stricter rules: dead letters, by key.
    const after2100 = { ...makeEvent(), event_time: Date.UTC(2101, 0, 1) };
    const longType = { ...makeEvent(), event_type: 't'.repeat(100_000) };
    const protoField = makeEvent({ properties: JSON.parse('{"__proto__":"x"}') as Record<string, string> });
    for (const [name, e] of [
      ['http-event-time-after-2100', after2100],
      ['http-huge-event-type', longType],
    ] as const) {
      expect((await post(JSON.stringify(e))).status).toBe(202);
      deadLetters.set(name, { errorClass: 'EVENT_INVALID', value: null, key: e.event_id });
    }
    expect((await post(JSON.stringify(protoField))).status).toBe(202);
    valid.set(protoField.event_id, protoField);
    await sendValid('kcat', 1);
    await sendValid('kafkajs', 4);

    // ---- The reference stream over it all (bounded) --------------------------------------------
    const running = await startStream(
      eventCounts,
      ctx.config,
      { bounded: true, groupId: ctx.group, topic },
      createLogger('warn'),
    );
    const summary = await running.done;
    console.log(
      JSON.stringify({ summary, valid: valid.size, deadLetters: deadLetters.size, refusedByApi: refusedIds.length }),
    );

    // Every record in the topic is accounted for: a valid event or an expected hostile record, nothing the API refused.
    const inTopic = await readTopic(createKafka(ctx.config), topic);
    expect(summary.recordsIn).toBe(inTopic.length);
    const identity = (r: ReadRecord) =>
      r.headers[CASE] && !r.headers[CASE]!.startsWith('valid-') ? r.headers[CASE]! : `key:${r.key?.toString()}`;
    const expectedIdentities = [...valid.keys()].map((id) => (id === keyless.event_id ? 'keyless-valid' : `key:${id}`));
    for (const [name, d] of deadLetters) expectedIdentities.push(name.startsWith('http-') ? `key:${d.key}` : name);
    expect(inTopic.map(identity).sort()).toEqual(expectedIdentities.sort());
    const topicKeys = new Set(inTopic.map((r) => r.key?.toString()));
    expect(refusedIds.filter((id) => topicKeys.has(id))).toEqual([]);

    // ClickHouse: exactly the valid events, stored as sent, and the windows they make.
    const rows = await (
      await ctx.clickhouse.query({
        query: 'SELECT event_id, user_id, property_keys, property_values FROM events_raw FINAL',
        format: 'JSONEachRow',
      })
    ).json<{ event_id: string; user_id: string; property_keys: string[]; property_values: string[] }>();
    expect(rows.map((r) => r.event_id).sort()).toEqual([...valid.keys()].sort());
    for (const row of rows) {
      const sent = valid.get(row.event_id)!;
      expect(row.user_id).toBe(sent.user_id);
      expect(row.property_keys).toEqual(Object.keys(sent.properties ?? {}));
      expect(row.property_values).toEqual(Object.values(sent.properties ?? {}));
    }
    const windows = await (
      await ctx.clickhouse.query({
        query:
          'SELECT toUnixTimestamp(window_start) AS ws, event_type, campaign_id, events, distinct_users_in_window AS distinct_users FROM event_counts_1m',
        format: 'JSONEachRow',
      })
    ).json<{ ws: number; event_type: string; campaign_id: string; events: string; distinct_users: string }>();
    const expectedWindows = new Map<string, { events: number; users: Set<string> }>();
    for (const e of valid.values()) {
      const key = `${Math.floor(e.event_time / 60_000) * 60}|${e.event_type}|${e.campaign_id ?? ''}`;
      const w = expectedWindows.get(key) ?? { events: 0, users: new Set<string>() };
      w.events += 1;
      w.users.add(e.user_id);
      expectedWindows.set(key, w);
    }
    const found = Object.fromEntries(
      windows.map((w) => [`${w.ws}|${w.event_type}|${w.campaign_id}`, [Number(w.events), Number(w.distinct_users)]]),
    );
    expect(found).toEqual(Object.fromEntries([...expectedWindows].map(([k, w]) => [k, [w.events, w.users.size]])));

    // Dead letters: one per hostile record, with its reason and its source, the original bytes untouched.
    const letters: ReadRecord[] = await readTopic(createKafka(ctx.config), `${topic}.dlq`);
    const byCase = new Map<string, ReadRecord>();
    for (const l of letters) byCase.set(l.headers[CASE] ?? `key:${l.key?.toString()}`, l);
    expect(letters).toHaveLength(deadLetters.size);
    const outcome = (l: ReadRecord | undefined) =>
      l && {
        errorClass: l.headers['sluice.dlq.error.class'],
        topic: l.headers['sluice.dlq.source.topic'],
        stream: l.headers['sluice.dlq.stream'],
      };
    for (const [name, expected] of deadLetters) {
      const letter = byCase.get(name) ?? byCase.get(`key:${expected.key}`);
      expect({ name, ...outcome(letter) }).toEqual({
        name,
        errorClass: expected.errorClass,
        topic,
        stream: 'event-counts',
      });
      expect(letter!.headers['sluice.dlq.error.message']!.length).toBeGreaterThan(10);
      if (REASONS[name])
        expect({ name, message: letter!.headers['sluice.dlq.error.message'] }).toEqual({
          name,
          message: expect.stringMatching(REASONS[name]!),
        });
      expect(letter!.headers['sluice.dlq.error.message']!.length).toBeLessThanOrEqual(1000);
      expect(Number(letter!.headers['sluice.dlq.source.offset'])).toBeGreaterThanOrEqual(0);
      expect(letter!.key?.toString() ?? null).toBe(expected.key);
      if (expected.value) expect(letter!.value?.equals(expected.value)).toBe(true);
    }
    // No valid event was dead-lettered or late.
    expect(letters.filter((l) => valid.has(l.key?.toString() ?? ''))).toEqual([]);
    expect(await readTopic(createKafka(ctx.config), `${topic}.late`)).toEqual([]);
  }, 150_000);
});
