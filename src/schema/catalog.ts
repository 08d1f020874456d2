import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { AVRO_DIR, loadAvroSchema, parseAvroType } from './avro';
import {
  checkCompatibility,
  DEFAULT_COMPATIBILITY,
  isCompatibilityLevel,
  type CompatibilityLevel,
} from './compatibility';
import { SchemaInvalidError } from './avro';

/**
 * The schemas kept in the repository, grouped into families: `<name>.avsc` is
 * version 1 and `<name>.v<N>.avsc` version N. The released versions stay in
 * the repository, so compatibility can be checked in CI with no registry.
 * `avro/subjects.json` maps each family to its registry subject and level.
 */
export interface SchemaVersionFile {
  version: number;
  /** File name without .avsc, as loadAvroSchema takes it. */
  file: string;
  schema: object;
}

export interface SchemaFamily {
  name: string;
  /** Undefined when avro/subjects.json does not map the family. */
  subject?: string;
  compatibility: CompatibilityLevel;
  /** Ascending by version. */
  versions: SchemaVersionFile[];
}

export const SUBJECTS_FILE = 'subjects.json';
const VERSIONED = /^(?<name>[A-Za-z_][A-Za-z0-9_]*?)(?:\.v(?<version>\d+))?\.avsc$/;

interface SubjectMapping {
  subject: string;
  compatibility?: string;
}

function readMappings(dir: string): Record<string, SubjectMapping> {
  const file = join(dir, SUBJECTS_FILE);
  if (!existsSync(file)) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new SchemaInvalidError(`${file} is not valid JSON: ${(err as Error).message}`, err);
  }
  const mappings: Record<string, SubjectMapping> = {};
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (name.startsWith('$')) continue;
    const mapping = value as Partial<SubjectMapping> | null;
    if (typeof mapping?.subject !== 'string' || mapping.subject === '') {
      throw new SchemaInvalidError(`${file}: "${name}" needs a "subject" string, e.g. {"subject": "events-value"}`);
    }
    if (mapping.compatibility !== undefined && !isCompatibilityLevel(mapping.compatibility)) {
      throw new SchemaInvalidError(
        `${file}: "${name}" has unknown compatibility ${JSON.stringify(mapping.compatibility)}`,
      );
    }
    mappings[name] = { subject: mapping.subject, compatibility: mapping.compatibility };
  }
  return mappings;
}

export function loadCatalog(dir: string = AVRO_DIR): SchemaFamily[] {
  const mappings = readMappings(dir);
  const families = new Map<string, SchemaVersionFile[]>();
  for (const entry of readdirSync(dir).sort()) {
    const match = VERSIONED.exec(entry);
    if (!match?.groups) continue;
    const name = match.groups.name!;
    const version = match.groups.version === undefined ? 1 : Number(match.groups.version);
    const file = entry.slice(0, -'.avsc'.length);
    const list = families.get(name) ?? [];
    if (list.some((v) => v.version === version)) {
      throw new SchemaInvalidError(`${dir}: two files claim version ${version} of ${name}`);
    }
    list.push({ version, file, schema: loadAvroSchema(file, dir) });
    families.set(name, list);
  }
  for (const name of Object.keys(mappings)) {
    if (!families.has(name))
      throw new SchemaInvalidError(`${join(dir, SUBJECTS_FILE)} maps "${name}" but ${name}.avsc is missing`);
  }
  return [...families.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, versions]) => {
      versions.sort((a, b) => a.version - b.version);
      const expected = versions.map((_, i) => i + 1).join(',');
      if (versions.map((v) => v.version).join(',') !== expected) {
        throw new SchemaInvalidError(
          `${name}: versions must be 1..N without gaps, found ${versions.map((v) => v.version).join(', ')}`,
        );
      }
      const mapping = mappings[name];
      return {
        name,
        subject: mapping?.subject,
        compatibility: (mapping?.compatibility as CompatibilityLevel | undefined) ?? DEFAULT_COMPATIBILITY,
        versions,
      };
    });
}

export interface FamilyCheck {
  family: SchemaFamily;
  /** One line per broken rule; empty when every version keeps the family's compatibility. */
  problems: string[];
}

/**
 * Checks each version of each family against the versions before it, as the
 * registry would on registration: the verdict CI uses to reject a breaking
 * schema change before it reaches a registry.
 */
export function checkCatalog(families: SchemaFamily[]): FamilyCheck[] {
  return families.map((family) => {
    const problems: string[] = [];
    const types = family.versions.map((v) => ({ version: v.version, file: v.file, type: parseAvroType(v.schema) }));
    for (let i = 1; i < types.length; i += 1) {
      const result = checkCompatibility(types[i]!.type, types.slice(0, i), family.compatibility);
      for (const message of result.messages)
        problems.push(`${types[i]!.file}.avsc (v${types[i]!.version}): ${message}`);
    }
    return { family, problems };
  });
}
