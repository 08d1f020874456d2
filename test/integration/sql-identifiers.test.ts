import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { loadConfig } from '../../src/config';
import { ConfigError } from '../../src/errors';
import { createKafka } from '../../src/kafka';
import { defineStream, loadStream, startStream } from '../../src/process';
import { SchemaCodec, loadAvroSchema } from '../../src/schema';
import {
  ClickHouseSink,
  InvalidIdentifierError,
  detectServerFeatures,
  fetchColumns,
  migrate,
  type ServerFeatures,
} from '../../src/sink/clickhouse';
import { createLogger } from '../../src/telemetry';
import eventCounts, { type AnalyticsEvent } from '../../streams/event-counts';
import { runCli } from '../helpers/cli';
import { createTestContext, type TestContext } from '../helpers/context';

/**
 * Issue 9, security: every identifier that reaches SQL is validated. Each
 * injection below goes through a real ClickHouse client that records what it
 * is asked to send: the attempt must be refused with InvalidIdentifierError
 * (or a ConfigError naming the setting) and the client must have sent
 * nothing. A canary table and the server's own catalogue show afterwards that
 * no statement of an attacker ran. Values (group keys, ids, properties) are
 * data, never SQL: the reference stream stores payloads verbatim.
 */

const MARKER = `pwned_${process.pid}`;
const PAYLOADS = [
  `canary; DROP TABLE canary`,
  `x; CREATE DATABASE ${MARKER}`,
  `x' OR '1'='1`,
  `events_raw FORMAT TSV --`,
  '`canary`',
  '"canary"',
  'canary/**/',
  'a.b',
  '',
  '1table',
  'tаble', // Cyrillic а
  'x'.repeat(64),
  'events_raw\n',
  'name with space',
  'x\u0000y',
];

describe('identifiers that reach SQL are refused before anything is sent', () => {
  let ctx: TestContext;
  let features: ServerFeatures;
  let dir: string;
  /** What the observed client was asked to send. */
  const sent: string[] = [];
  let observed: ClickHouseClient;

  beforeAll(async () => {
    ctx = await createTestContext('sqlident');
    features = await detectServerFeatures(ctx.clickhouse);
    await ctx.clickhouse.command({ query: `CREATE TABLE ${ctx.id}.canary (n UInt8) ENGINE = MergeTree ORDER BY n` });
    await ctx.clickhouse.insert({ table: `${ctx.id}.canary`, values: [{ n: 7 }], format: 'JSONEachRow' });
    // The real client, recording each statement it is handed before passing it on.
    observed = new Proxy(ctx.clickhouse, {
      get(target, prop, receiver) {
        const member = Reflect.get(target, prop, receiver) as unknown;
        if (typeof member !== 'function') return member;
        return (...args: unknown[]) => {
          if (prop === 'query' || prop === 'command' || prop === 'insert' || prop === 'exec') {
            const params = args[0] as { query?: string; table?: string };
            sent.push(`${String(prop)}: ${params.query ?? params.table}`);
          }
          return (member as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    dir = mkdtempSync(join(tmpdir(), 'sluice-sqlident-'));
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await ctx.cleanup();
  });

  /** Runs an attempt that must be refused as an invalid identifier, with nothing sent. */
  async function refusedBeforeSql(what: string, attempt: () => unknown): Promise<void> {
    sent.length = 0;
    let error: unknown;
    try {
      await attempt();
    } catch (err) {
      error = err;
    }
    expect({
      what,
      error: error instanceof InvalidIdentifierError ? 'InvalidIdentifierError' : String(error),
      sent,
    }).toEqual({
      what,
      error: 'InvalidIdentifierError',
      sent: [],
    });
    expect((error as InvalidIdentifierError).code).toBe('SQL_IDENTIFIER_INVALID');
    expect((error as Error).message).toMatch(/is not allowed: use letters, digits and _/);
  }

  const position = { topic: 't', partition: 0, fromOffset: '0', toOffset: '1' };

  it.each(PAYLOADS.map((p) => [JSON.stringify(p), p]))(
    'refuses %s as a database, table or column name',
    async (_label, payload) => {
      await refusedBeforeSql('migrate: database', () => migrate(observed, payload, { features }));
      await refusedBeforeSql('migrate: table', () =>
        migrate(observed, ctx.id, {
          features,
          tables: [{ name: payload, create: [`CREATE TABLE {db}.x (n UInt8) ENGINE = Memory`] }],
        }),
      );
      await refusedBeforeSql('fetchColumns: database', () => fetchColumns(observed, payload, 'canary'));
      await refusedBeforeSql('fetchColumns: table', () => fetchColumns(observed, ctx.id, payload));
      await refusedBeforeSql(
        'sink: database',
        () => new ClickHouseSink({ settings: ctx.config.clickhouse, database: payload, client: observed }),
      );
      const sink = new ClickHouseSink({
        settings: ctx.config.clickhouse,
        database: ctx.id,
        client: observed,
        features,
      });
      try {
        await refusedBeforeSql('sink.write: table', () => sink.write(payload, [{ n: 1 }], [position]));
        await refusedBeforeSql('sink.add: table', () => sink.add(payload, [{ n: 1 }], position));
      } finally {
        await sink.close();
      }
      await refusedBeforeSql('defineStream: raw table', () =>
        defineStream({ ...eventCounts, raw: { ...eventCounts.raw!, table: payload } }),
      );
      await refusedBeforeSql('defineStream: window table', () =>
        defineStream({ ...eventCounts, windowed: { ...eventCounts.windowed!, table: payload } }),
      );
      await refusedBeforeSql('defineStream: declared table', () =>
        defineStream({ ...eventCounts, tables: [{ name: payload, create: [] }] }),
      );

      // A column name is never spliced into SQL (rows go as JSONEachRow); a key the table lacks refuses the row before any INSERT.
      const declared = new ClickHouseSink({
        settings: ctx.config.clickhouse,
        database: ctx.id,
        client: observed,
        features,
        columns: { canary: { n: 'UInt8' } },
      });
      try {
        sent.length = 0;
        const refused = await declared.write('canary', [{ n: 1, [payload]: 1 }], [position]);
        expect(refused.map((r) => r.index)).toEqual([0]);
        expect(refused[0]!.problems.join()).toContain('unknown column');
        expect(sent).toEqual([]);
      } finally {
        await declared.close();
      }
    },
  );

  it('refuses a database name from configuration, naming the setting', () => {
    // (An empty variable counts as unset: the default applies.)
    for (const payload of PAYLOADS.filter((p) => p !== '')) {
      let error: unknown;
      try {
        loadConfig({ SLUICE_CLICKHOUSE_DATABASE: payload });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toContain('clickhouse.database');
    }
  });

  it('refuses stream names that are not lowercase letters, digits and -', () => {
    for (const name of [`x'; DROP TABLE canary --`, 'Events', '../etc', 'a b', '', 'x'.repeat(64)]) {
      expect(() => defineStream({ ...eventCounts, name })).toThrow(
        /stream name .* must be lowercase letters, digits and -/,
      );
    }
  });

  it('refuses a stream module that bypasses defineStream with a bad table name, in the CLI too, before touching ClickHouse', async () => {
    const file = join(dir, 'sneaky.js');
    const raw = { table: `events_raw; DROP TABLE ${ctx.id}.canary`, toRow: () => ({}) };
    writeFileSync(
      file,
      `module.exports = { default: { name: 'sneaky', source: { topic: 'events', schema: 'analytics_event' }, validate: () => ({ ok: false, errors: [] }), eventTime: () => 0, raw: { table: ${JSON.stringify(raw.table)}, toRow: () => ({}) }, tables: [] } };`,
    );
    expect(() => loadStream(file)).toThrow(InvalidIdentifierError);
    const cli = runCli(['run', file, '--bounded'], {
      SLUICE_CLICKHOUSE_DATABASE: ctx.id,
      SLUICE_REDIS_KEY_PREFIX: ctx.config.redis.keyPrefix,
    });
    expect(cli.status).not.toBe(0);
    expect(cli.stderr).toMatch(/table name 'events_raw; DROP TABLE .*' is not allowed/);
    expect(cli.stderr).not.toMatch(/\n\s+at /); // one line, no stack trace
  });

  it('stores SQL-looking values (group keys, ids, properties) as data, verbatim', async () => {
    const topic = await ctx.createTopic('events', 2);
    await ctx.createTopic('events.dlq', 1);
    await ctx.createTopic('events.late', 1);
    const codec = SchemaCodec.fromConfig(ctx.config);
    const id = await codec.register(`${topic}-value`, loadAvroSchema('analytics_event'));
    const hostileValues = [
      `'); DROP TABLE ${ctx.id}.canary; --`,
      `\\'; CREATE DATABASE ${MARKER}; --`,
      `x" FORMAT TSV\n`,
      '`canary`',
      '\\\\',
      `' OR 1=1 --`,
      '{"n":1}\n{"n":2}',
      `\t${MARKER}\u0000`,
    ];
    const t0 = Date.UTC(2026, 0, 2, 3, 0, 0);
    const events: AnalyticsEvent[] = hostileValues.map((v, i) => ({
      event_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      event_type: 'click',
      user_id: v,
      campaign_id: v,
      ad_id: v,
      event_time: t0 + i * 1000,
      amount: null,
      properties: { [v]: v },
    }));
    const producer = createKafka(ctx.config).producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: await Promise.all(events.map(async (e) => ({ key: e.event_id, value: await codec.encode(id, e) }))),
    });
    await producer.disconnect();

    const running = await startStream(
      eventCounts,
      ctx.config,
      { bounded: true, groupId: ctx.group, topic },
      createLogger('warn'),
    );
    const summary = await running.done;
    expect(summary.deadLettered).toBe(0);

    const rows = await (
      await ctx.clickhouse.query({
        query:
          'SELECT event_id, user_id, campaign_id, ad_id, property_keys, property_values FROM events_raw FINAL ORDER BY event_id',
        format: 'JSONEachRow',
      })
    ).json<{
      event_id: string;
      user_id: string;
      campaign_id: string;
      ad_id: string;
      property_keys: string[];
      property_values: string[];
    }>();
    expect(rows).toEqual(
      events.map((e) => ({
        event_id: e.event_id,
        user_id: e.user_id,
        campaign_id: e.campaign_id,
        ad_id: e.ad_id,
        property_keys: [e.user_id],
        property_values: [e.user_id],
      })),
    );
    // The window group key (event type, campaign) of each value is a group of its own.
    const groups = await (
      await ctx.clickhouse.query({
        query: "SELECT campaign_id, events FROM event_counts_1m WHERE event_type = 'click' ORDER BY campaign_id",
        format: 'JSONEachRow',
      })
    ).json<{ campaign_id: string; events: string }>();
    expect(groups.map((g) => [g.campaign_id, Number(g.events)])).toEqual(
      [...hostileValues].sort(byBytes).map((v) => [v, 1]),
    );
  });

  it('ran nothing an attacker wrote: the canary is whole and no marked database or table exists', async () => {
    const [canary] = await (
      await ctx.clickhouse.query({
        query: `SELECT count() AS rows, sum(n) AS total FROM ${ctx.id}.canary`,
        format: 'JSONEachRow',
      })
    ).json<{ rows: string; total: string }>();
    expect(canary).toEqual({ rows: '1', total: '7' });
    const marked = await (
      await ctx.clickhouse.query({
        query: `SELECT name FROM system.databases WHERE name LIKE 'pwned%' UNION ALL SELECT name FROM system.tables WHERE name LIKE '%pwned%' OR name LIKE '% %'`,
        format: 'JSONEachRow',
      })
    ).json<{ name: string }>();
    expect(marked).toEqual([]);
  });
});

/** ClickHouse orders strings by their bytes. */
function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
