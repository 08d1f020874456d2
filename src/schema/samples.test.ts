import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AVRO_DIR, parseAvroType } from './avro';
import { loadCatalog } from './catalog';

/**
 * Every released schema version has an encoded sample in avro/samples/
 * (<name>.v<N>.bin: the Avro body, <name>.v<N>.json: the value it holds), written once
 * when the version was released and never regenerated. Decoding them with
 * the current schemas catches what a compatibility check cannot: an edit to
 * an already-released .avsc that changes its binary layout, or a new version
 * whose reader no longer understands old data.
 */
const SAMPLES = join(AVRO_DIR, 'samples');

interface FieldSchema {
  name: string;
  default?: unknown;
}

describe.each(loadCatalog().map((family) => [family.name, family] as const))(
  'encoded samples of %s',
  (_name, family) => {
    const latest = family.versions.at(-1)!;
    const reader = parseAvroType(latest.schema);
    const readerFields = (latest.schema as { fields: FieldSchema[] }).fields;

    it.each(family.versions.map((v) => [`${family.name}.v${v.version}`, v] as const))(
      '%s decodes with its own schema and with the current reader',
      (sample, version) => {
        const bin = join(SAMPLES, `${sample}.bin`);
        expect(existsSync(bin)).toBe(true);
        const body = readFileSync(bin);
        const expected = JSON.parse(readFileSync(join(SAMPLES, `${sample}.json`), 'utf8')) as Record<string, unknown>;

        const writer = parseAvroType(version.schema);
        // fromBuffer also fails on trailing bytes: the layout must match exactly.
        expect(writer.fromBuffer(body)).toEqual(expected);

        // The current reader: fields it added take their declared defaults, fields it dropped disappear.
        const resolved = reader.fromBuffer(body, reader.createResolver(writer));
        const withDefaults = Object.fromEntries(
          readerFields.map((field) => [field.name, field.name in expected ? expected[field.name] : field.default]),
        );
        expect(resolved).toEqual(withDefaults);
      },
    );
  },
);
