import { createHash } from 'node:crypto';
import type { Type } from 'avsc';
import { parseAvroType } from '../avro';
import { DEFAULT_COMPATIBILITY, isCompatibilityLevel, type CompatibilityLevel } from '../compatibility';

/**
 * The registry's state, rebuilt by applying the records of the `_schemas`
 * topic in log order. Every instance applies the same log with the same
 * rules, so every instance ends in the same state, and the log (not an
 * instance's memory) decides which of two racing writes wins.
 *
 * Record keys (JSON):
 *   {"keytype":"SCHEMA","subject":s,"version":v,"id":i,"fingerprint":f}
 *     value {"subject","version","id","schema","deleted":false} or null (permanent delete)
 *   {"keytype":"DELETE_VERSION", same fields}
 *     value {"deleted":true} (soft delete of that registration) or null
 *   {"keytype":"CONFIG","subject":s|null}
 *     value {"compatibilityLevel"} or null (subject level removed)
 *   {"keytype":"MAX_ID"}
 *     value {"maxId"}: written with every permanent delete, so ids are never
 *     reused once the deleted schema's records are compacted away (a record
 *     in some topic may still carry that id)
 *
 * Why it survives log compaction: a SCHEMA key names one registration
 * exactly, and a soft delete is a separate key, so a registration record is
 * never rewritten and never moves; compaction only removes registrations
 * whose permanent delete follows them. A rival write that lost a race (it
 * proposed a version or id the log had already given away) is rejected here
 * and tombstoned by the instance that wrote it, so it cannot come back to
 * life once the winner is permanently deleted and compacted away.
 */
export interface SchemaKey {
  keytype: 'SCHEMA' | 'DELETE_VERSION';
  subject: string;
  version: number;
  id: number;
  fingerprint: string;
}
export interface SchemaValue {
  subject: string;
  version: number;
  id: number;
  schema: string;
  deleted: boolean;
}
export interface ConfigKey {
  keytype: 'CONFIG';
  subject: string | null;
}
export interface ConfigValue {
  compatibilityLevel: CompatibilityLevel;
}
export type RegistryKey = SchemaKey | ConfigKey | { keytype: 'MAX_ID' };

export interface VersionEntry {
  version: number;
  id: number;
  deleted: boolean;
}

export interface StoredSchema {
  id: number;
  text: string;
  fingerprint: string;
  type: Type;
}

export function fingerprint(schemaText: string): string {
  return createHash('sha256').update(schemaText).digest('hex').slice(0, 32);
}

export class RegistryState {
  private readonly byId = new Map<number, StoredSchema>();
  private readonly idByFingerprint = new Map<string, number>();
  /** subject -> version -> entry, versions in ascending order of insertion. */
  private readonly subjects = new Map<string, Map<number, VersionEntry>>();
  private readonly subjectLevels = new Map<string, CompatibilityLevel>();
  private globalLevel: CompatibilityLevel = DEFAULT_COMPATIBILITY;
  private maxId = 0;

  /** Applies one record of the log; returns false when the record lost a race and was ignored. */
  apply(rawKey: Buffer | null, rawValue: Buffer | null): boolean {
    if (rawKey === null) return false;
    let key: RegistryKey;
    try {
      key = JSON.parse(rawKey.toString('utf8')) as RegistryKey;
    } catch {
      return false; // not ours: a foreign record in the topic must not stop the registry
    }
    const value: unknown = rawValue === null ? null : JSON.parse(rawValue.toString('utf8'));
    if (key.keytype === 'CONFIG') return this.applyConfig(key, value as ConfigValue | null);
    if (key.keytype === 'MAX_ID') {
      const maxId = (value as { maxId?: unknown } | null)?.maxId;
      if (typeof maxId !== 'number' || !Number.isInteger(maxId)) return false;
      this.maxId = Math.max(this.maxId, maxId);
      return true;
    }
    if (key.keytype === 'SCHEMA') return this.applySchema(key, value as SchemaValue | null);
    if (key.keytype === 'DELETE_VERSION') return this.applySoftDelete(key, value);
    return false;
  }

  private applyConfig(key: ConfigKey, value: ConfigValue | null): boolean {
    if (value !== null && !isCompatibilityLevel(value.compatibilityLevel)) return false;
    if (key.subject === null || key.subject === undefined) {
      this.globalLevel = value?.compatibilityLevel ?? DEFAULT_COMPATIBILITY;
    } else if (value === null) {
      this.subjectLevels.delete(key.subject);
    } else {
      this.subjectLevels.set(key.subject, value.compatibilityLevel);
    }
    return true;
  }

  /** The registration this key names, if the state holds exactly it (same version, id and schema). */
  private registration(key: SchemaKey): VersionEntry | undefined {
    const found = this.subjects.get(key.subject)?.get(key.version);
    if (found === undefined || found.id !== key.id || this.byId.get(found.id)?.fingerprint !== key.fingerprint)
      return undefined;
    return found;
  }

  private applySoftDelete(key: SchemaKey, value: unknown): boolean {
    const existing = this.registration(key);
    if (existing === undefined || value === null) return false;
    existing.deleted = true;
    return true;
  }

  private applySchema(key: SchemaKey, value: SchemaValue | null): boolean {
    const versions = this.subjects.get(key.subject);
    const existing = this.registration(key);
    if (value === null) {
      if (existing === undefined) return false;
      versions!.delete(key.version);
      if (versions!.size === 0) this.subjects.delete(key.subject);
      this.forgetUnreferenced(key.id);
      return true;
    }
    if (existing !== undefined) return true; // the same registration written twice: nothing changes
    if (versions?.has(key.version)) return false; // the version went to another schema first
    const known = this.byId.get(key.id);
    if (known !== undefined && known.fingerprint !== key.fingerprint) return false; // id taken by another schema
    const idOfSchema = this.idByFingerprint.get(key.fingerprint);
    if (idOfSchema !== undefined && idOfSchema !== key.id) return false; // schema already has another id
    if (versions !== undefined) {
      for (const entry of versions.values()) if (entry.id === key.id && !entry.deleted) return false; // already live in this subject
    }
    if (known === undefined) {
      let type: Type;
      try {
        type = parseAvroType(JSON.parse(value.schema) as object);
      } catch {
        return false;
      }
      this.byId.set(key.id, { id: key.id, text: value.schema, fingerprint: key.fingerprint, type });
      this.idByFingerprint.set(key.fingerprint, key.id);
      this.maxId = Math.max(this.maxId, key.id);
    }
    const target = versions ?? new Map<number, VersionEntry>();
    target.set(key.version, { version: key.version, id: key.id, deleted: false });
    this.subjects.set(key.subject, target);
    return true;
  }

  /** After a hard delete, a schema no version refers to is gone, as it would be after compaction. */
  private forgetUnreferenced(id: number): void {
    for (const versions of this.subjects.values()) {
      for (const entry of versions.values()) if (entry.id === id) return;
    }
    const stored = this.byId.get(id);
    if (stored === undefined) return;
    this.byId.delete(id);
    this.idByFingerprint.delete(stored.fingerprint);
  }

  schemaById(id: number): StoredSchema | undefined {
    return this.byId.get(id);
  }

  idOf(fingerprintValue: string): number | undefined {
    return this.idByFingerprint.get(fingerprintValue);
  }

  nextId(): number {
    return this.maxId + 1;
  }

  subjectNames(includeDeleted: boolean): string[] {
    return [...this.subjects.entries()]
      .filter(([, versions]) => includeDeleted || [...versions.values()].some((v) => !v.deleted))
      .map(([name]) => name)
      .sort();
  }

  /** The subject's versions, ascending; soft-deleted ones only when asked. */
  versions(subject: string, includeDeleted: boolean): VersionEntry[] {
    const versions = this.subjects.get(subject);
    if (versions === undefined) return [];
    return [...versions.values()].filter((v) => includeDeleted || !v.deleted).sort((a, b) => a.version - b.version);
  }

  /** True when the subject has any version, soft-deleted or not. */
  hasSubject(subject: string): boolean {
    return this.subjects.has(subject);
  }

  maxVersion(subject: string): number {
    return this.versions(subject, true).reduce((max, v) => Math.max(max, v.version), 0);
  }

  subjectsOf(id: number): { subject: string; version: number }[] {
    const out: { subject: string; version: number }[] = [];
    for (const [subject, versions] of this.subjects) {
      for (const entry of versions.values())
        if (entry.id === id && !entry.deleted) out.push({ subject, version: entry.version });
    }
    return out.sort((a, b) => a.subject.localeCompare(b.subject) || a.version - b.version);
  }

  subjectLevel(subject: string): CompatibilityLevel | undefined {
    return this.subjectLevels.get(subject);
  }

  level(subject?: string): CompatibilityLevel {
    return (subject !== undefined ? this.subjectLevels.get(subject) : undefined) ?? this.globalLevel;
  }
}

export interface Registration {
  subject: string;
  version: number;
  id: number;
  schema: string;
  fingerprint: string;
}

function keyOf(r: Registration, keytype: SchemaKey['keytype']): string {
  const key: SchemaKey = { keytype, subject: r.subject, version: r.version, id: r.id, fingerprint: r.fingerprint };
  return JSON.stringify(key);
}

/** The record that registers a schema version. */
export function registrationRecord(r: Registration): { key: string; value: string } {
  const value: SchemaValue = { subject: r.subject, version: r.version, id: r.id, schema: r.schema, deleted: false };
  return { key: keyOf(r, 'SCHEMA'), value: JSON.stringify(value) };
}

export function softDeleteRecord(r: Registration): { key: string; value: string } {
  return { key: keyOf(r, 'DELETE_VERSION'), value: JSON.stringify({ deleted: true }) };
}

/** Tombstones that remove a registration (and its soft-delete marker) for good, also from the compacted log. */
export function permanentDeleteRecords(r: Registration): { key: string; value: null }[] {
  return [
    { key: keyOf(r, 'SCHEMA'), value: null },
    { key: keyOf(r, 'DELETE_VERSION'), value: null },
  ];
}

export function configRecord(
  subject: string | null,
  level: CompatibilityLevel | null,
): { key: string; value: string | null } {
  const key: ConfigKey = { keytype: 'CONFIG', subject };
  return { key: JSON.stringify(key), value: level === null ? null : JSON.stringify({ compatibilityLevel: level }) };
}

/** Remembers the highest id ever given, so a permanent delete followed by compaction cannot free an id for reuse. */
export function maxIdRecord(maxId: number): { key: string; value: string } {
  return { key: JSON.stringify({ keytype: 'MAX_ID' }), value: JSON.stringify({ maxId }) };
}
