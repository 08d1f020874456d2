import type { SluiceConfig } from '../config';
import { ConfigError, ServiceError, describeError } from '../errors';
import { RegistryClient, RegistryError, canonicalSchemaText, loadCatalog } from '../schema';

/**
 * The schema the ingest API validates against when none is named: the
 * registry's latest version under `<topic>-value`, as the file of avro/ that
 * holds it. So the HTTP API accepts what an SDK producer writing the latest
 * schema sends (v2's `channel`, say) instead of refusing fields the stream
 * reads. Undefined when the subject has no version yet; fails naming what to
 * set when its latest is in no file of avro/.
 */
export async function latestRegisteredSchema(
  config: Pick<SluiceConfig, 'registry'>,
  topic: string,
): Promise<string | undefined> {
  const subject = `${topic}-value`;
  let latest: string;
  try {
    latest = (await new RegistryClient(config.registry.url).version(subject, 'latest')).schema;
  } catch (err) {
    // Nothing registered yet: the producer registers the configured schema on start, as before.
    if (err instanceof RegistryError && err.status === 404) return undefined;
    throw new ServiceError(
      'registry',
      `cannot read the latest schema of ${subject} to choose the ingest schema: ${describeError(err)} (or name the schema with --schema)`,
      { retriable: true, cause: err },
    );
  }
  const text = canonicalSchemaText(JSON.parse(latest) as object);
  // Any family: a topic of its own (a test's, a staging copy) is registered under its own subject, not the mapped one.
  const match = loadCatalog()
    .flatMap((family) => family.versions)
    .find((v) => canonicalSchemaText(v.schema) === text);
  if (!match) {
    throw new ConfigError(
      `the latest schema registered under ${subject} is in no file of avro/: name the schema with --schema (ingest.schema)`,
    );
  }
  return match.file;
}
