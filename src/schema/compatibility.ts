import type { Type } from 'avsc';

/** Confluent's compatibility levels; BACKWARD is the default, as in Confluent. */
export const COMPATIBILITY_LEVELS = [
  'NONE',
  'BACKWARD',
  'BACKWARD_TRANSITIVE',
  'FORWARD',
  'FORWARD_TRANSITIVE',
  'FULL',
  'FULL_TRANSITIVE',
] as const;
export type CompatibilityLevel = (typeof COMPATIBILITY_LEVELS)[number];
export const DEFAULT_COMPATIBILITY: CompatibilityLevel = 'BACKWARD';

export function isCompatibilityLevel(value: unknown): value is CompatibilityLevel {
  return typeof value === 'string' && (COMPATIBILITY_LEVELS as readonly string[]).includes(value);
}

interface FieldLike {
  name: string;
  type: Type;
  defaultValue(): unknown;
  aliases?: string[];
}
interface RecordLike {
  typeName: 'record' | 'error';
  name?: string;
  fields: FieldLike[];
}

function isRecord(type: Type): type is Type & RecordLike {
  return type.typeName === 'record' || type.typeName === 'error';
}

/**
 * Why `reader` cannot read data written with `writer`, naming the field path
 * that breaks (avsc's own message names a type, not the field). Undefined
 * when the reader resolves the writer.
 */
export function readIncompatibility(reader: Type, writer: Type, path = ''): string | undefined {
  try {
    reader.createResolver(writer);
    return undefined;
  } catch (err) {
    const message = (err as Error).message;
    if (!isRecord(reader) || !isRecord(writer)) return path ? `field ${path}: ${message}` : message;
    for (const field of reader.fields) {
      const fieldPath = path ? `${path}.${field.name}` : field.name;
      const names = [field.name, ...(field.aliases ?? [])];
      const written = writer.fields.find((w) => names.includes(w.name));
      if (written === undefined) {
        if (field.defaultValue() === undefined)
          return `field ${fieldPath}: missing from the writer's schema and has no default`;
        continue;
      }
      const inner = readIncompatibility(field.type, written.type, fieldPath);
      if (inner !== undefined) return inner;
    }
    return path ? `field ${path}: ${message}` : message;
  }
}

export interface CompatibilityResult {
  compatible: boolean;
  /** One line per broken rule, naming the version and the field. */
  messages: string[];
}

/**
 * Checks a candidate schema against the existing versions (oldest first)
 * under a level. BACKWARD: the candidate reads data written with the previous
 * version; FORWARD: the previous version reads the candidate's data; FULL:
 * both. The _TRANSITIVE levels check every earlier version, the others only
 * the latest. Decided by avsc's schema resolution, the same rules the
 * decoder applies at read time.
 */
export function checkCompatibility(
  candidate: Type,
  existing: { version: number; type: Type }[],
  level: CompatibilityLevel,
): CompatibilityResult {
  if (level === 'NONE' || existing.length === 0) return { compatible: true, messages: [] };
  const against = level.endsWith('_TRANSITIVE') ? existing : existing.slice(-1);
  const backward = level.startsWith('BACKWARD') || level.startsWith('FULL');
  const forward = level.startsWith('FORWARD') || level.startsWith('FULL');
  const messages: string[] = [];
  for (const { version, type } of against) {
    if (backward) {
      const why = readIncompatibility(candidate, type);
      if (why) messages.push(`new schema cannot read data written with version ${version} (${level}): ${why}`);
    }
    if (forward) {
      const why = readIncompatibility(type, candidate);
      if (why) messages.push(`version ${version} cannot read data written with the new schema (${level}): ${why}`);
    }
  }
  return { compatible: messages.length === 0, messages };
}
