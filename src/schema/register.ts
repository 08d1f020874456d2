import { canonicalSchemaText } from './avro';
import type { SchemaFamily } from './catalog';
import { RegistryError, type RegistryClient } from './client';

/** What registering one schema family did. */
export interface FamilyRegistration {
  family: SchemaFamily;
  /** The subject registered under; undefined when subjects.json maps none to the family, so nothing was registered. */
  subject?: string;
  /** The registry id of each version, oldest first. */
  ids: { file: string; id: number }[];
}

export interface RegisterSchemasOptions {
  /** Put before every subject name (a test or staging namespace). */
  subjectPrefix?: string;
  /** Told of each family as soon as it is done, so what succeeded is known even if a later family fails. */
  onFamily?(registration: FamilyRegistration): void;
}

/**
 * Registers every version of every mapped family under its subject, oldest
 * first. Idempotent: the registry answers a schema it already has with its
 * existing id.
 */
export async function registerSchemas(
  client: RegistryClient,
  families: SchemaFamily[],
  options: RegisterSchemasOptions = {},
): Promise<FamilyRegistration[]> {
  const done: FamilyRegistration[] = [];
  for (const family of families) {
    const registration: FamilyRegistration = { family, ids: [] };
    if (family.subject !== undefined) {
      const subject = `${options.subjectPrefix ?? ''}${family.subject}`;
      registration.subject = subject;
      // The level first, so the registry checks these very registrations under it.
      await client.setCompatibility(subject, family.compatibility);
      for (const version of family.versions) {
        const id = await client.register(subject, canonicalSchemaText(version.schema)).catch((err: unknown) => {
          if (err instanceof RegistryError && err.errorCode === 409) {
            throw new RegistryError(
              err.status,
              err.errorCode,
              `${version.file}.avsc is incompatible with what ${subject} already has: ${err.message}`,
            );
          }
          throw err;
        });
        registration.ids.push({ file: version.file, id });
      }
    }
    done.push(registration);
    options.onFamily?.(registration);
  }
  return done;
}

/** One line per family, as `sluice schemas register` prints it. */
export function formatRegistration({ family, subject, ids }: FamilyRegistration): string {
  if (subject === undefined) return `skip  ${family.name}: not mapped to a subject in subjects.json`;
  return `ok    ${subject} (${family.compatibility}): ${ids.map(({ file, id }) => `${file} id ${id}`).join(', ')}`;
}
