import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../test/helpers/cli';
import { AVRO_DIR } from './avro';
import { checkCatalog, loadCatalog } from './catalog';

const v1Text = readFileSync(join(AVRO_DIR, 'analytics_event.avsc'), 'utf8');
const v2Text = readFileSync(join(AVRO_DIR, 'analytics_event.v2.avsc'), 'utf8');
const v2 = JSON.parse(v2Text) as { fields: object[] };

/** A throwaway avro/ folder: the reference v1 and v2, plus whatever the test adds. */
function avroDir(extra: Record<string, unknown>, compatibility = 'BACKWARD'): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-avro-'));
  writeFileSync(join(dir, 'analytics_event.avsc'), v1Text);
  writeFileSync(join(dir, 'analytics_event.v2.avsc'), v2Text);
  writeFileSync(
    join(dir, 'subjects.json'),
    JSON.stringify({ analytics_event: { subject: 'events-value', compatibility } }),
  );
  for (const [file, content] of Object.entries(extra))
    writeFileSync(join(dir, file), typeof content === 'string' ? content : JSON.stringify(content));
  return dir;
}

const withField = (field: object) => ({ ...v2, fields: [...v2.fields, field] });
const withoutField = (name: string) => ({
  ...v2,
  fields: v2.fields.filter((f) => (f as { name: string }).name !== name),
});

describe('schemas check (offline compatibility of the versions in avro/)', () => {
  const dirs: string[] = [];
  const dir = (...args: Parameters<typeof avroDir>) => {
    const made = avroDir(...args);
    dirs.push(made);
    return made;
  };
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('accepts the repository as it is', () => {
    const [result] = checkCatalog(loadCatalog());
    expect(result!.family).toMatchObject({
      name: 'analytics_event',
      subject: 'events-value',
      compatibility: 'BACKWARD',
    });
    expect(result!.family.versions.map((v) => v.version)).toEqual([1, 2]);
    expect(result!.problems).toEqual([]);
  });

  it('rejects a v3 that adds a field without a default under BACKWARD, naming the field', () => {
    const [result] = checkCatalog(
      loadCatalog(dir({ 'analytics_event.v3.avsc': withField({ name: 'region', type: 'string' }) })),
    );
    expect(result!.problems).toHaveLength(1);
    expect(result!.problems[0]).toMatch(/analytics_event\.v3\.avsc \(v3\).*version 2.*field region/);
  });

  it('accepts the same v3 under FORWARD (old readers ignore the new field) but not removing a field without default', () => {
    const added = dir({ 'analytics_event.v3.avsc': withField({ name: 'region', type: 'string' }) }, 'FORWARD');
    expect(checkCatalog(loadCatalog(added))[0]!.problems).toEqual([]);
    const removed = dir({ 'analytics_event.v3.avsc': withoutField('user_id') }, 'FORWARD');
    expect(checkCatalog(loadCatalog(removed))[0]!.problems.join('\n')).toMatch(/version 2 cannot read.*field user_id/);
  });

  it('names a changed field type', () => {
    const changed = {
      ...v2,
      fields: v2.fields.map((f) =>
        (f as { name: string }).name === 'amount' ? { name: 'amount', type: 'string' } : f,
      ),
    };
    const [result] = checkCatalog(loadCatalog(dir({ 'analytics_event.v3.avsc': changed })));
    expect(result!.problems.join('\n')).toMatch(/field amount/);
  });

  it('checks every earlier version only under a _TRANSITIVE level', () => {
    // v3 makes channel required: v2 data has it (BACKWARD passes), v1 data does not (only the transitive check sees v1).
    const v3 = {
      ...v2,
      fields: v2.fields.map((f) =>
        (f as { name: string }).name === 'channel' ? { name: 'channel', type: 'string' } : f,
      ),
    };
    expect(checkCatalog(loadCatalog(dir({ 'analytics_event.v3.avsc': v3 }, 'BACKWARD')))[0]!.problems).toEqual([]);
    const transitive = checkCatalog(loadCatalog(dir({ 'analytics_event.v3.avsc': v3 }, 'BACKWARD_TRANSITIVE')))[0]!
      .problems;
    expect(transitive).toHaveLength(1);
    expect(transitive[0]).toMatch(/version 1.*field channel/);
  });

  it('refuses gaps in version numbers and invalid schemas', () => {
    expect(() => loadCatalog(dir({ 'analytics_event.v4.avsc': v2 }))).toThrow(/without gaps/);
    expect(() =>
      loadCatalog(dir({ 'analytics_event.v3.avsc': { ...v2, fields: [{ name: 'x', type: 'strng' }] } })),
    ).toThrow(/strng/);
  });

  it('exits 1 from the CLI naming the field, with no registry reachable', () => {
    const broken = dir({ 'analytics_event.v3.avsc': withField({ name: 'region', type: 'string' }) });
    const unreachable = { SLUICE_REGISTRY_URL: 'http://127.0.0.1:9' };
    const bad = runCli(['schemas', 'check', '--dir', broken], unreachable);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/FAIL\s+analytics_event/);
    expect(bad.stdout).toMatch(/field region: missing from the writer's schema and has no default/);
    const good = runCli(['schemas', 'check'], unreachable);
    expect(good.stdout).toMatch(/ok\s+analytics_event \(events-value, BACKWARD\): v1 v2/);
    expect(good.status).toBe(0);
  });
});
