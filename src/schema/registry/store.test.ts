import { canonicalSchemaText } from '../avro';
import {
  RegistryState,
  configRecord,
  fingerprint,
  maxIdRecord,
  permanentDeleteRecords,
  registrationRecord,
  softDeleteRecord,
} from './store';

const record = (name: string, fields: object[] = []) =>
  canonicalSchemaText({ type: 'record', name, fields: [{ name: 'id', type: 'string' }, ...fields] });
const A = record('A');
const B = record('B');
const A2 = record('A', [{ name: 'n', type: 'int', default: 0 }]);

type Rec = { key: string; value: string | null };
const registration = (subject: string, version: number, id: number, schema: string) => ({
  subject,
  version,
  id,
  schema,
  fingerprint: fingerprint(schema),
});
const reg = (subject: string, version: number, id: number, schema: string): Rec =>
  registrationRecord(registration(subject, version, id, schema));
const soft = (subject: string, version: number, id: number, schema: string): Rec =>
  softDeleteRecord(registration(subject, version, id, schema));
const hard = (subject: string, version: number, id: number, schema: string): Rec[] =>
  permanentDeleteRecords(registration(subject, version, id, schema));

function replay(log: Rec[]): { state: RegistryState; accepted: boolean[] } {
  const state = new RegistryState();
  const accepted = log.map((r) => state.apply(Buffer.from(r.key), r.value === null ? null : Buffer.from(r.value)));
  return { state, accepted };
}

/** What Kafka's log compaction may leave: only the last record of each key, in their original order. */
function compact(log: Rec[]): Rec[] {
  const last = new Map<string, number>();
  log.forEach((r, i) => last.set(r.key, i));
  return log.filter((r, i) => last.get(r.key) === i);
}

function snapshot(state: RegistryState) {
  return state.subjectNames(true).map((s) => ({
    subject: s,
    level: state.level(s),
    versions: state.versions(s, true).map((v) => ({ ...v, schema: state.schemaById(v.id)?.text })),
  }));
}

describe('RegistryState: the log decides', () => {
  it('keeps the first of two rival writes for the same id or version and rejects the loser', () => {
    // Two instances, same state, register different schemas at the same moment: both propose id 1, version 1.
    const { state, accepted } = replay([reg('s', 1, 1, A), reg('s', 1, 1, B), reg('t', 1, 1, B), reg('t', 1, 2, A)]);
    expect(accepted).toEqual([true, false, false, false]);
    expect(state.schemaById(1)?.text).toBe(A);
    expect(state.versions('s', false)).toEqual([{ version: 1, id: 1, deleted: false }]);
    expect(state.hasSubject('t')).toBe(false); // B cannot take id 1; A cannot get a second id
  });

  it('shares one global id for the same schema under two subjects and refuses a duplicate live version', () => {
    const { state, accepted } = replay([reg('s', 1, 1, A), reg('t', 1, 1, A), reg('s', 2, 1, A), reg('s', 2, 2, A2)]);
    expect(accepted).toEqual([true, true, false, true]);
    expect(state.subjectsOf(1)).toEqual([
      { subject: 's', version: 1 },
      { subject: 't', version: 1 },
    ]);
    expect(state.nextId()).toBe(3);
  });

  it('soft-deletes, hard-deletes and forgets a schema no version refers to', () => {
    const { state } = replay([reg('s', 1, 1, A), reg('s', 2, 2, A2), soft('s', 2, 2, A2), ...hard('s', 2, 2, A2)]);
    expect(state.versions('s', true).map((v) => v.version)).toEqual([1]);
    expect(state.schemaById(2)).toBeUndefined();
    expect(state.schemaById(1)?.text).toBe(A);
  });

  it('ignores a soft delete or a re-sent registration that names a rival write', () => {
    const { state, accepted } = replay([reg('s', 1, 1, A), soft('s', 1, 2, B), reg('s', 1, 1, A)]);
    expect(accepted).toEqual([true, false, true]);
    expect(state.versions('s', false)).toEqual([{ version: 1, id: 1, deleted: false }]);
  });

  it('ends in the same state after compaction as before it', () => {
    const log: Rec[] = [
      reg('s', 1, 1, A),
      reg('s', 1, 2, B), // lost a race for version 1 ...
      ...hard('s', 1, 2, B).slice(0, 1), // ... so its writer tombstoned it
      reg('s', 2, 2, B),
      configRecord('s', 'FULL'),
      reg('t', 1, 2, B),
      soft('s', 1, 1, A), // soft delete of an early version: the registration must not move
      reg('s', 3, 1, A), // the same schema registered again after its soft delete: a new version, same id
      reg('s', 4, 3, A2),
      soft('s', 4, 3, A2),
      maxIdRecord(3),
      ...hard('s', 4, 3, A2),
      reg('s', 4, 4, record('C')), // version 4 reused after the permanent delete, id 3 not
      configRecord('s', 'NONE'),
      configRecord(null, 'FORWARD'),
      { key: 'not json', value: 'x' }, // a foreign record must not stop the registry
    ];
    const live = replay(log).state;
    const compacted = replay(compact(log)).state;
    expect(compact(log).length).toBeLessThan(log.length);
    expect(snapshot(compacted)).toEqual(snapshot(live));
    expect(compacted.nextId()).toBe(live.nextId()); // id 3 is never handed out again
    expect(compacted.level()).toBe('FORWARD');
    expect(compacted.level('s')).toBe('NONE');
    expect(snapshot(live).find((s) => s.subject === 's')!.versions).toEqual([
      { version: 1, id: 1, deleted: true, schema: A },
      { version: 2, id: 2, deleted: false, schema: B },
      { version: 3, id: 1, deleted: false, schema: A },
      { version: 4, id: 4, deleted: false, schema: record('C') },
    ]);
  });

  it('needs the loser tombstone: without it a permanently deleted winner would let the loser come back', () => {
    const winnerGone = [reg('s', 1, 1, A), soft('s', 1, 1, A), ...hard('s', 1, 1, A)];
    const withoutTombstone = [reg('s', 1, 1, A), reg('s', 1, 2, B), ...winnerGone.slice(1)];
    expect(snapshot(replay(compact(withoutTombstone)).state)).not.toEqual(snapshot(replay(withoutTombstone).state));
    const withTombstone = [reg('s', 1, 1, A), reg('s', 1, 2, B), hard('s', 1, 2, B)[0]!, ...winnerGone.slice(1)];
    expect(snapshot(replay(compact(withTombstone)).state)).toEqual(snapshot(replay(withTombstone).state));
  });

  it('never hands out a permanently deleted id again, even after compaction', () => {
    const deleteNewest = [reg('s', 1, 1, A), reg('s', 2, 2, A2), soft('s', 2, 2, A2)];
    const withMarker = [...deleteNewest, maxIdRecord(2), ...hard('s', 2, 2, A2)];
    expect(replay(withMarker).state.nextId()).toBe(3);
    expect(replay(compact(withMarker)).state.nextId()).toBe(3);
    const withoutMarker = [...deleteNewest, ...hard('s', 2, 2, A2)];
    expect(replay(compact(withoutMarker)).state.nextId()).toBe(2); // what the marker prevents
  });
});
