import {
  MemorySnapshotStore,
  WindowParts,
  releasesOf,
  snapshotId,
  snapshotsOf,
  stateMetadata,
  stateSavedAt,
  unknownSchemasOf,
  closedAtEndOf,
  type PartitionSnapshot,
} from './snapshots';

const ref = { topic: 'events', partition: 0 };

/** A link of incremental state: its parts are text the window layer made; here, markers to follow. */
function link(offset: string, tag: string, chain: string[], parts: string[]): PartitionSnapshot {
  return {
    id: snapshotId(offset, 1, tag),
    offset,
    savedAt: 1,
    watermark: { maxEventTimeMs: Number(offset) },
    windows: new WindowParts({ format: 2, kind: chain.length === 0 ? 'base' : 'delta' }, Promise.resolve(parts)),
    chain,
  };
}

describe('incremental window state in the snapshot store', () => {
  it('loads a delta with its chain, base first, each link with its parts', async () => {
    const store = new MemorySnapshotStore();
    const base = link('10', 'a', [], ['b0', 'b1']);
    const d1 = link('20', 'b', [base.id], ['d1']);
    const d2 = link('30', 'c', [base.id, d1.id], []);
    await store.save([{ ref, snapshot: base }]);
    await store.save([
      { ref, snapshot: d1 },
      { ref: { ...ref, partition: 1 }, snapshot: d1 },
    ]);
    await store.save([{ ref, snapshot: d2 }]);
    // Parts first, the record last: one field per part beside each record.
    expect(store.fields(ref)).toEqual([`${base.id}/0`, `${base.id}/1`, base.id, `${d1.id}/0`, d1.id, d2.id]);
    const loaded = await store.load(ref, [d2.id, d1.id]);
    expect(loaded).toMatchObject({
      id: d2.id,
      offset: '30',
      watermark: { maxEventTimeMs: 30 },
      chain: [base.id, d1.id],
    });
    expect(loaded!.windows).toEqual({
      links: [
        { windows: { format: 2, kind: 'base' }, parts: ['b0', 'b1'] },
        { windows: { format: 2, kind: 'delta' }, parts: ['d1'] },
        { windows: { format: 2, kind: 'delta' }, parts: [] },
      ],
    });
  });

  it('falls back to the next snapshot named when any link or part of the first is missing, and to none when every one is', async () => {
    const store = new MemorySnapshotStore();
    const base = link('10', 'a', [], ['b0', 'b1']);
    const d1 = link('20', 'b', [base.id], ['d1']);
    const d2 = link('30', 'c', [base.id, d1.id], ['d2']);
    await store.save([{ ref, snapshot: base }]);
    await store.save([{ ref, snapshot: d1 }]);
    await store.save([{ ref, snapshot: d2 }]);
    store.lose(ref, `${d2.id}/0`);
    expect((await store.load(ref, [d2.id, d1.id]))?.id).toBe(d1.id);
    store.lose(ref, `${base.id}/1`);
    expect(await store.load(ref, [d2.id, d1.id])).toBeUndefined();
    // A base record lost: nothing on it loads either.
    const other = new MemorySnapshotStore();
    for (const s of [base, d1]) await other.save([{ ref, snapshot: s }]);
    other.lose(ref, base.id);
    expect(await other.load(ref, [d1.id])).toBeUndefined();
  });

  it('still loads a whole snapshot of format 1 as it was saved', async () => {
    const store = new MemorySnapshotStore();
    const whole: PartitionSnapshot = {
      id: '10.1.x',
      offset: '10',
      savedAt: 1,
      watermark: null,
      windows: { format: 1 },
    };
    await store.save([{ ref, snapshot: whole }]);
    expect(await store.load(ref, ['10.1.x'])).toEqual(whole);
  });

  it('prunes older snapshots but never a link of a chain that a kept snapshot extends', async () => {
    const store = new MemorySnapshotStore();
    const base = link('10', 'a', [], ['b0']);
    const orphan = link('15', 'z', [base.id], ['o']);
    const d1 = link('20', 'b', [base.id], ['d1']);
    const d2 = link('30', 'c', [base.id, d1.id], ['d2']);
    for (const s of [base, orphan, d1, d2]) await store.save([{ ref, snapshot: s }]);
    // A commit named d2 then d1: what is older than d1 goes, except d1's chain.
    await store.prune(ref, '20');
    expect(store.fields(ref)).toEqual([`${base.id}/0`, base.id, `${d1.id}/0`, d1.id, `${d2.id}/0`, d2.id]);
    const newBase = link('40', 'd', [], ['n']);
    const d3 = link('50', 'e', [newBase.id], ['d3']);
    for (const s of [newBase, d3]) await store.save([{ ref, snapshot: s }]);
    await store.prune(ref, '40');
    expect(store.fields(ref)).toEqual([`${newBase.id}/0`, newBase.id, `${d3.id}/0`, d3.id]);
  });

  it('prunes nothing while a later snapshot is one whose chain it does not know (another member saved it)', async () => {
    const mine = new MemorySnapshotStore();
    const base = link('10', 'a', [], ['b0']);
    await mine.save([{ ref, snapshot: base }]);
    await mine.save([{ ref, snapshot: link('20', 'b', [base.id], []) }]);
    // The same hash, seen by a process that never saved or loaded those snapshots.
    const other = new MemorySnapshotStore();
    Object.assign(other, { data: (mine as unknown as { data: unknown }).data });
    await other.prune(ref, '20');
    expect(mine.fields(ref)).toEqual([`${base.id}/0`, base.id, snapshotId('20', 1, 'b')]);
  });
});

describe('commit metadata', () => {
  it('names the snapshots and records the idle releases, and reads both back', () => {
    const releases = [
      { offset: '7', watermark: 180_000 },
      { offset: '12', watermark: -5 },
    ];
    const metadata = stateMetadata(3, ['12.a.x', '7.b.y'], releases);
    expect(snapshotsOf(metadata, 3)).toEqual(['12.a.x', '7.b.y']);
    expect(releasesOf(metadata, 3)).toEqual(releases);
    expect(stateSavedAt(metadata)).toBe(10);
    // Another epoch's metadata is not this one's: neither its snapshots nor its releases.
    expect([snapshotsOf(metadata, 4), releasesOf(metadata, 4)]).toEqual([undefined, []]);
    // Metadata written before releases were recorded reads as none.
    expect(releasesOf(stateMetadata(3, ['12.a.x']), 3)).toEqual([]);
    expect(() => releasesOf(`${stateMetadata(3, ['12.a.x'])}/12@x`, 3)).toThrow(/malformed idle release "12@x"/);
    // Every finite watermark reads back as written, those JavaScript prints in exponent form too.
    const extremes = [2e21, -3.5e-7, 1e-7, Number.MAX_VALUE].map((watermark, i) => ({ offset: String(i), watermark }));
    expect(releasesOf(stateMetadata(3, ['12.a.x'], extremes), 3)).toEqual(extremes);
  });

  it('records the schemas unknown to the live stream after the releases, with or without releases', () => {
    const unknown = [
      { schemaId: 42, from: '3', through: '9' },
      { schemaId: -7, from: '11', through: '11' },
    ];
    const releases = [{ offset: '7', watermark: 180_000 }];
    const both = stateMetadata(3, ['12.a.x', '7.b.y'], releases, unknown);
    expect([snapshotsOf(both, 3), releasesOf(both, 3), unknownSchemasOf(both, 3)]).toEqual([
      ['12.a.x', '7.b.y'],
      releases,
      unknown,
    ]);
    const onlyUnknown = stateMetadata(3, ['12.a.x'], [], unknown);
    expect([releasesOf(onlyUnknown, 3), unknownSchemasOf(onlyUnknown, 3)]).toEqual([[], unknown]);
    // Metadata written before they were recorded (or by a commit with none) reads as none, as does another epoch's.
    expect(stateMetadata(3, ['12.a.x'], releases)).toBe('sluice-state:3:12.a.x/7@180000');
    expect(unknownSchemasOf(stateMetadata(3, ['12.a.x'], releases), 3)).toEqual([]);
    expect(unknownSchemasOf(both, 4)).toEqual([]);
    expect(stateMetadata(3, ['12.a.x'], [], unknown)).toBe('sluice-state:3:12.a.x//42@3-9,-7@11-11');
    expect(() => unknownSchemasOf(`${stateMetadata(3, ['12.a.x'])}//9@7`, 3)).toThrow(/malformed unknown schema "9@7"/);
  });

  it('says, last, that the commit carried the dead letters of a close of every open window', () => {
    const unknown = [{ schemaId: 42, from: '3', through: '9' }];
    const closed = stateMetadata(3, ['12.a.x'], [], unknown, true);
    expect(closed).toBe('sluice-state:3:12.a.x//42@3-9/closed-at-end');
    expect([snapshotsOf(closed, 3), releasesOf(closed, 3), unknownSchemasOf(closed, 3)]).toEqual([
      ['12.a.x'],
      [],
      unknown,
    ]);
    expect([closedAtEndOf(closed, 3), closedAtEndOf(closed, 4)]).toEqual([true, false]);
    expect(closedAtEndOf(stateMetadata(3, ['12.a.x'], [], unknown), 3)).toBe(false);
    expect(stateMetadata(3, ['12.a.x'], [], [], true)).toBe('sluice-state:3:12.a.x///closed-at-end');
  });
});
