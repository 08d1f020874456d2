import { loadAvroSchema } from './avro';
import type { SchemaFamily } from './catalog';
import { RegistryClient, RegistryError } from './client';
import { startMemoryRegistry, type RunningRegistry } from './registry';
import { formatRegistration, registerSchemas, type FamilyRegistration } from './register';

const v1 = loadAvroSchema('analytics_event');
const v2 = loadAvroSchema('analytics_event.v2');

const family = (over: Partial<SchemaFamily> = {}): SchemaFamily => ({
  name: 'analytics_event',
  subject: 'events-value',
  compatibility: 'BACKWARD',
  versions: [
    { version: 1, file: 'analytics_event', schema: v1 },
    { version: 2, file: 'analytics_event.v2', schema: v2 },
  ],
  ...over,
});

describe('registerSchemas', () => {
  let registry: RunningRegistry;
  let client: RegistryClient;
  beforeEach(async () => {
    registry = await startMemoryRegistry();
    client = new RegistryClient(registry.url);
  });
  afterEach(() => registry.close());

  it('registers every version under the prefixed subject, oldest first, under the family level, and again to the same ids', async () => {
    const first = await registerSchemas(client, [family()], { subjectPrefix: 'test.' });
    expect(first.map(formatRegistration)).toEqual([
      `ok    test.events-value (BACKWARD): analytics_event id ${first[0]!.ids[0]!.id}, analytics_event.v2 id ${first[0]!.ids[1]!.id}`,
    ]);
    expect(await client.versions('test.events-value')).toEqual([1, 2]);
    expect(await client.compatibility('test.events-value')).toBe('BACKWARD');
    expect(await registerSchemas(client, [family()], { subjectPrefix: 'test.' })).toEqual(first);
    expect(await client.versions('test.events-value')).toEqual([1, 2]);
  });

  it('skips a family no subject is mapped to, and tells of each family as it is done', async () => {
    const told: FamilyRegistration[] = [];
    const done = await registerSchemas(client, [family({ name: 'draft', subject: undefined }), family()], {
      onFamily: (r) => told.push(r),
    });
    expect(told).toEqual(done);
    expect(formatRegistration(done[0]!)).toBe('skip  draft: not mapped to a subject in subjects.json');
    expect(done[1]!.subject).toBe('events-value');
  });

  it('names the file a subject refuses as incompatible, after telling of the families before it', async () => {
    const told: string[] = [];
    const breaking = { ...(v1 as object), fields: [{ name: 'only', type: 'string' }] };
    const families = [
      family({ name: 'other', subject: 'other-value' }),
      family({ versions: [family().versions[0]!, { version: 2, file: 'breaking', schema: breaking }] }),
    ];
    const failure = await registerSchemas(client, families, { onFamily: (r) => told.push(r.subject ?? '') }).catch(
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(RegistryError);
    expect((failure as RegistryError).message).toMatch(
      /^breaking\.avsc is incompatible with what events-value already has/,
    );
    expect(told).toEqual(['other-value']);
  });
});
