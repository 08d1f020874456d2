import type { ClickHouseClient } from '@clickhouse/client';
import { identifier } from '../../config';
import { SluiceError } from '../../errors';
import type { ServerFeatures } from './features';

/**
 * One schema change, applied once per database and recorded in
 * `sluice_migrations`. Statements use `{db}` for the database name. A migration
 * whose `when` is false on this server is skipped and not recorded, so it runs
 * after the server is upgraded. The sink declares none of its own: streams
 * declare theirs beside their tables.
 */
export interface Migration {
  id: string;
  /**
   * The statements, or a function of the tables the database holds when the
   * migration starts: a migration of several steps that may have stopped
   * half-way (a process killed) plans from where the tables are.
   */
  statements: string[] | ((tables: ReadonlySet<string>) => string[]);
  when?: (features: ServerFeatures) => boolean;
}

/** A ClickHouse table a stream writes, with the statements that create it (idempotent, run by `sink migrate`). */
export interface TableDefinition {
  name: string;
  /**
   * `CREATE ... IF NOT EXISTS` statements; `{db}` is replaced by the database
   * name. A function gets the server's features, for a table or view whose
   * best form differs between server versions (its results must not).
   */
  create: string[] | ((features: ServerFeatures) => string[]);
}

export class InvalidIdentifierError extends SluiceError {
  constructor(kind: string, name: string) {
    super(
      'SQL_IDENTIFIER_INVALID',
      `${kind} name '${name}' is not allowed: use letters, digits and _ (not starting with a digit), at most 63`,
    );
    this.name = 'InvalidIdentifierError';
  }
}

/** Every database, table and column name that reaches SQL passes through here: no quoting is ever needed. */
export function assertIdentifier(kind: 'database' | 'table' | 'column', name: string): string {
  if (!identifier.safeParse(name).success) throw new InvalidIdentifierError(kind, name);
  return name;
}

const LEDGER = `CREATE TABLE IF NOT EXISTS {db}.sluice_migrations
(
    id String,
    applied_at DateTime
)
ENGINE = ReplacingMergeTree()
ORDER BY id`;

export interface MigrationReport {
  database: string;
  createdDatabase: boolean;
  applied: string[];
  alreadyApplied: string[];
  /** Not supported by this server version; will apply after an upgrade. */
  skipped: string[];
  createdTables: string[];
  existingTables: string[];
}

const render = (sql: string, database: string) => sql.split('{db}').join(database);

async function tablesOf(client: ClickHouseClient, database: string): Promise<Set<string>> {
  const result = await client.query({
    query: `SELECT name FROM system.tables WHERE database = '${database}'`,
    format: 'JSONEachRow',
  });
  return new Set((await result.json<{ name: string }>()).map((t) => t.name));
}

async function exists(client: ClickHouseClient, sql: string): Promise<boolean> {
  const result = await client.query({ query: sql, format: 'JSONEachRow' });
  const rows = await result.json<{ n: string | number }>();
  return Number(rows[0]?.n ?? 0) > 0;
}

/**
 * Creates the database, the migration ledger and the caller's migrations and
 * tables, idempotently: a second run changes nothing and says so. Table
 * definitions are re-run every time (they are IF NOT EXISTS) so a dropped
 * table comes back; migrations run once, in the order given, before the tables.
 */
export async function migrate(
  client: ClickHouseClient,
  database: string,
  options: {
    features: ServerFeatures;
    tables?: TableDefinition[];
    migrations?: readonly Migration[];
    /** Checked before every statement: aborted when the process no longer holds the migration lease. */
    signal?: AbortSignal;
  },
): Promise<MigrationReport> {
  assertIdentifier('database', database);
  const tables = options.tables ?? [];
  tables.forEach((t) => assertIdentifier('table', t.name));
  const migrations = options.migrations ?? [];
  const ids = new Set<string>();
  for (const m of migrations) {
    if (ids.has(m.id))
      throw new SluiceError('MIGRATION_DUPLICATE', `migration id '${m.id}' is declared twice: ids must be unique`);
    ids.add(m.id);
  }

  const report: MigrationReport = {
    database,
    createdDatabase: false,
    applied: [],
    alreadyApplied: [],
    skipped: [],
    createdTables: [],
    existingTables: [],
  };
  report.createdDatabase = !(await exists(
    client,
    `SELECT count() AS n FROM system.databases WHERE name = '${database}'`,
  ));
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
  await client.command({ query: render(LEDGER, database) });

  const done = await client.query({
    query: `SELECT DISTINCT id FROM ${database}.sluice_migrations`,
    format: 'JSONEachRow',
  });
  const applied = new Set((await done.json<{ id: string }>()).map((r) => r.id));
  const execute = async (statements: readonly string[]) => {
    for (const statement of statements) {
      options.signal?.throwIfAborted();
      await client.command({ query: render(statement, database) });
    }
  };
  for (const migration of migrations) {
    if (applied.has(migration.id)) {
      report.alreadyApplied.push(migration.id);
      continue;
    }
    if (migration.when && !migration.when(options.features)) {
      report.skipped.push(migration.id);
      continue;
    }
    const statements =
      typeof migration.statements === 'function'
        ? migration.statements(await tablesOf(client, database))
        : migration.statements;
    await execute(statements);
    options.signal?.throwIfAborted();
    await client.insert({
      table: `${database}.sluice_migrations`,
      values: [{ id: migration.id, applied_at: Math.floor(Date.now() / 1000) }],
      format: 'JSONEachRow',
    });
    report.applied.push(migration.id);
  }

  const present = tables.length > 0 ? await tablesOf(client, database) : new Set<string>();
  for (const table of tables) {
    await execute(typeof table.create === 'function' ? table.create(options.features) : table.create);
    (present.has(table.name) ? report.existingTables : report.createdTables).push(table.name);
  }
  return report;
}

/** Human-readable lines for `sluice sink migrate`. */
export function formatMigrationReport(report: MigrationReport): string[] {
  const lines = [`database ${report.database}: ${report.createdDatabase ? 'created' : 'exists'}`];
  for (const id of report.applied) lines.push(`applied   ${id}`);
  for (const id of report.alreadyApplied) lines.push(`unchanged ${id} (already applied)`);
  for (const id of report.skipped) lines.push(`skipped   ${id} (not supported by this server version)`);
  for (const t of report.createdTables) lines.push(`created   table ${t}`);
  for (const t of report.existingTables) lines.push(`unchanged table ${t} (exists)`);
  if (report.applied.length === 0 && report.createdTables.length === 0 && !report.createdDatabase)
    lines.push('nothing to do: schema is up to date');
  return lines;
}
