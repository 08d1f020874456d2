import type { Type } from 'avsc';
import { canonicalSchemaText, parseAvroType } from '../avro';
import { checkCompatibility, isCompatibilityLevel, type CompatibilityLevel } from '../compatibility';
import {
  RegistryHttpError,
  incompatibleSchema,
  invalidCompatibility,
  invalidSchema,
  invalidVersion,
  schemaNotFound,
  storeError,
  subjectLevelNotConfigured,
  subjectNotFound,
  subjectNotSoftDeleted,
  versionNotFound,
  versionNotSoftDeleted,
} from './errors';
import type { LogRecord } from './log';
import {
  RegistryState,
  configRecord,
  fingerprint,
  maxIdRecord,
  permanentDeleteRecords,
  registrationRecord,
  softDeleteRecord,
  type Registration,
  type VersionEntry,
} from './store';

/** What the service needs from storage: append-and-read-back, and catching up with other writers. */
export interface RegistryLog {
  append(records: LogRecord[]): Promise<void>;
  syncToEnd(): Promise<void>;
}

export interface SchemaSubmission {
  schema?: unknown;
  schemaType?: unknown;
  references?: unknown;
}

interface ParsedSchema {
  text: string;
  fingerprint: string;
  type: Type;
}

export interface VersionView {
  subject: string;
  id: number;
  version: number;
  schema: string;
}

/** A write that lost a race is retried against the newer state this many times. */
const MAX_WRITE_ATTEMPTS = 5;

/**
 * The registry's operations, in Confluent's terms and error codes, over the
 * log-built state. Reads answer from memory; a read that would answer "not
 * found" first catches up with the end of the log, so a schema another
 * instance just registered is found. Writes are serialized in this instance
 * and decided by the log (see RegistryState).
 */
export class RegistryService {
  private writeQueue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly state: RegistryState,
    private readonly log: RegistryLog,
  ) {}

  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const run = this.writeQueue.then(work, work);
    this.writeQueue = run.catch(() => undefined);
    return run;
  }

  /** Runs a read; if it answers 404, catches up with the log and asks again. */
  private async fresh<T>(read: () => T): Promise<T> {
    try {
      return read();
    } catch (err) {
      if (!(err instanceof RegistryHttpError) || err.status !== 404) throw err;
      await this.log.syncToEnd();
      return read();
    }
  }

  parseSubmission(body: SchemaSubmission): ParsedSchema {
    if (body === null || typeof body !== 'object')
      throw invalidSchema('the request body must be a JSON object with a "schema" string');
    if (body.schemaType !== undefined && body.schemaType !== null && body.schemaType !== 'AVRO') {
      throw invalidSchema(
        `schemaType ${JSON.stringify(body.schemaType)} is not supported: this registry stores AVRO schemas only`,
      );
    }
    if (Array.isArray(body.references) && body.references.length > 0) {
      throw invalidSchema('schema references are not supported by this registry');
    }
    if (typeof body.schema !== 'string') throw invalidSchema('"schema" must be a string holding the Avro schema JSON');
    let json: unknown;
    try {
      json = JSON.parse(body.schema);
    } catch (err) {
      throw invalidSchema(`not JSON: ${(err as Error).message}`);
    }
    let type: Type;
    try {
      type = parseAvroType(json as object);
    } catch (err) {
      throw invalidSchema((err as Error).message.replace(/^invalid Avro schema: /, ''));
    }
    const text = canonicalSchemaText(json as object);
    return { text, fingerprint: fingerprint(text), type };
  }

  parseVersion(raw: string): number | 'latest' {
    if (raw === 'latest' || raw === '-1') return 'latest';
    if (!/^\d{1,10}$/.test(raw)) throw invalidVersion(raw);
    const version = Number(raw);
    if (version < 1 || version > 2 ** 31 - 1) throw invalidVersion(raw);
    return version;
  }

  private findVersion(subject: string, raw: string, includeDeleted: boolean): VersionEntry {
    const version = this.parseVersion(raw);
    if (!this.state.hasSubject(subject) || this.state.versions(subject, includeDeleted).length === 0)
      throw subjectNotFound(subject);
    const versions = this.state.versions(subject, includeDeleted);
    const entry = version === 'latest' ? versions.at(-1) : versions.find((v) => v.version === version);
    if (entry === undefined) throw versionNotFound(subject, raw);
    return entry;
  }

  private view(subject: string, entry: VersionEntry): VersionView {
    const stored = this.state.schemaById(entry.id);
    if (stored === undefined)
      throw storeError(`schema id ${entry.id} of ${subject} version ${entry.version} is missing`);
    return { subject, id: entry.id, version: entry.version, schema: stored.text };
  }

  subjects(includeDeleted: boolean): string[] {
    return this.state.subjectNames(includeDeleted);
  }

  versions(subject: string, includeDeleted: boolean): Promise<number[]> {
    return this.fresh(() => {
      const versions = this.state.versions(subject, includeDeleted);
      if (versions.length === 0) throw subjectNotFound(subject);
      return versions.map((v) => v.version);
    });
  }

  version(subject: string, raw: string, includeDeleted: boolean): Promise<VersionView> {
    return this.fresh(() => this.view(subject, this.findVersion(subject, raw, includeDeleted)));
  }

  schemaById(id: number): Promise<{ schema: string }> {
    return this.fresh(() => {
      const stored = this.state.schemaById(id);
      if (stored === undefined) throw schemaNotFound(`Schema ${id} not found`);
      return { schema: stored.text };
    });
  }

  subjectsOfId(id: number): Promise<{ subject: string; version: number }[]> {
    return this.fresh(() => {
      if (this.state.schemaById(id) === undefined) throw schemaNotFound(`Schema ${id} not found`);
      return this.state.subjectsOf(id);
    });
  }

  lookup(subject: string, body: SchemaSubmission, includeDeleted: boolean): Promise<VersionView> {
    const parsed = this.parseSubmission(body);
    return this.fresh(() => {
      if (this.state.versions(subject, includeDeleted).length === 0) throw subjectNotFound(subject);
      const id = this.state.idOf(parsed.fingerprint);
      const entry = this.state.versions(subject, includeDeleted).find((v) => v.id === id);
      if (entry === undefined) throw schemaNotFound();
      return this.view(subject, entry);
    });
  }

  /** Registers a schema under a subject: the existing id if the subject has it, else a new version after the compatibility check. */
  register(subject: string, body: SchemaSubmission): Promise<{ id: number }> {
    const parsed = this.parseSubmission(body);
    return this.serialized(async () => {
      await this.log.syncToEnd();
      for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt += 1) {
        const live = this.state.versions(subject, false);
        const knownId = this.state.idOf(parsed.fingerprint);
        const existing = live.find((v) => v.id === knownId);
        if (existing !== undefined) return { id: existing.id };

        const level = this.state.level(subject);
        const previous = live.map((v) => ({ version: v.version, type: this.state.schemaById(v.id)!.type }));
        const result = checkCompatibility(parsed.type, previous, level);
        if (!result.compatible) throw incompatibleSchema(subject, result.messages);

        const registration: Registration = {
          subject,
          version: this.state.maxVersion(subject) + 1,
          id: knownId ?? this.state.nextId(),
          schema: parsed.text,
          fingerprint: parsed.fingerprint,
        };
        await this.log.append([registrationRecord(registration)]);
        const written = this.state.versions(subject, false).find((v) => v.version === registration.version);
        // Accepted only if the version holds this very schema: a rival may have won with the same id and version.
        if (written?.id === registration.id && this.state.schemaById(written.id)?.fingerprint === parsed.fingerprint) {
          return { id: registration.id };
        }
        // Another instance got there first and the log rejected this write. Remove it from
        // the log (so no later compaction can revive it), then decide again on the new state.
        await this.log.append(permanentDeleteRecords(registration).slice(0, 1));
      }
      throw storeError(`could not register under ${subject}: ${MAX_WRITE_ATTEMPTS} concurrent writes won the race`);
    });
  }

  deleteSubject(subject: string, permanent: boolean): Promise<number[]> {
    return this.serialized(async () => {
      await this.log.syncToEnd();
      const all = this.state.versions(subject, true);
      if (all.length === 0) throw subjectNotFound(subject);
      if (permanent) {
        if (all.some((v) => !v.deleted)) throw subjectNotSoftDeleted(subject);
        await this.log.append([
          maxIdRecord(this.state.nextId() - 1),
          ...all.flatMap((v) => permanentDeleteRecords(this.registration(subject, v))),
          configRecord(subject, null),
        ]);
        return all.map((v) => v.version);
      }
      const live = all.filter((v) => !v.deleted);
      if (live.length === 0)
        throw new RegistryHttpError(
          404,
          40404,
          `Subject '${subject}' was soft deleted. Set permanent=true to delete permanently`,
        );
      await this.log.append(live.map((v) => softDeleteRecord(this.registration(subject, v))));
      return live.map((v) => v.version);
    });
  }

  deleteVersion(subject: string, raw: string, permanent: boolean): Promise<number> {
    return this.serialized(async () => {
      await this.log.syncToEnd();
      const entry = this.findVersion(subject, raw, permanent);
      if (permanent) {
        if (!entry.deleted) throw versionNotSoftDeleted(subject, entry.version);
        await this.log.append([
          maxIdRecord(this.state.nextId() - 1),
          ...permanentDeleteRecords(this.registration(subject, entry)),
        ]);
      } else {
        await this.log.append([softDeleteRecord(this.registration(subject, entry))]);
      }
      return entry.version;
    });
  }

  private registration(subject: string, entry: VersionEntry): Registration {
    const stored = this.state.schemaById(entry.id);
    if (stored === undefined) throw storeError(`schema id ${entry.id} is missing`);
    return { subject, version: entry.version, id: entry.id, schema: stored.text, fingerprint: stored.fingerprint };
  }

  config(subject: string | undefined, defaultToGlobal: boolean): Promise<{ compatibilityLevel: CompatibilityLevel }> {
    return this.fresh(() => {
      if (subject === undefined) return { compatibilityLevel: this.state.level() };
      const level = this.state.subjectLevel(subject);
      if (level !== undefined) return { compatibilityLevel: level };
      if (defaultToGlobal) return { compatibilityLevel: this.state.level() };
      throw subjectLevelNotConfigured(subject);
    });
  }

  setConfig(subject: string | undefined, body: unknown): Promise<{ compatibility: CompatibilityLevel }> {
    const level = (body as { compatibility?: unknown } | null)?.compatibility;
    if (!isCompatibilityLevel(level)) return Promise.reject(invalidCompatibility(level));
    return this.serialized(async () => {
      await this.log.append([configRecord(subject ?? null, level)]);
      return { compatibility: level };
    });
  }

  deleteConfig(subject: string): Promise<{ compatibilityLevel: CompatibilityLevel }> {
    return this.serialized(async () => {
      await this.log.syncToEnd();
      const level = this.state.subjectLevel(subject);
      if (level === undefined) throw subjectLevelNotConfigured(subject);
      await this.log.append([configRecord(subject, null)]);
      return { compatibilityLevel: level };
    });
  }

  /**
   * Would this schema be accepted? Against one named version, the level's
   * direction is checked against that version alone; with no version, exactly
   * the check a registration would run.
   */
  testCompatibility(
    subject: string,
    raw: string | undefined,
    body: SchemaSubmission,
  ): Promise<{ is_compatible: boolean; messages: string[] }> {
    const parsed = this.parseSubmission(body);
    return this.fresh(() => {
      const level = this.state.level(subject);
      const live = this.state.versions(subject, false);
      let against: VersionEntry[];
      if (raw === undefined) {
        against = live;
      } else {
        against = [this.findVersion(subject, raw, false)];
      }
      const previous = against.map((v) => ({ version: v.version, type: this.state.schemaById(v.id)!.type }));
      const effective: CompatibilityLevel =
        raw === undefined ? level : (level.replace('_TRANSITIVE', '') as CompatibilityLevel);
      const result = checkCompatibility(parsed.type, previous, effective);
      return { is_compatible: result.compatible, messages: result.messages };
    });
  }
}
