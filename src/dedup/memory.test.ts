import { MemoryDedupStore } from './memory';
import { dedupKeyPrefix } from './store';

const rec = (id: string, offset: number) => ({ id, topic: 'events', partition: 0, offset: String(offset) });

describe('MemoryDedupStore', () => {
  it('forgets a mark after its TTL, so a late duplicate past the TTL is processed again', async () => {
    let now = 1_000_000;
    const store = new MemoryDedupStore({ ttlSeconds: 60, now: () => now });
    expect(await store.claim([rec('a', 1)])).toEqual([true]);
    now += 59_000;
    expect(await store.claim([rec('a', 2)])).toEqual([false]);
    now += 1_000;
    expect(await store.claim([rec('a', 2)])).toEqual([true]);
  });
});

describe('dedupKeyPrefix', () => {
  it('builds <prefix>dedup:<namespace>:<epoch>: and rejects namespaces that could collide', () => {
    expect(dedupKeyPrefix('sluice:', { namespace: 'event-counts' })).toBe('sluice:dedup:event-counts:0:');
    expect(dedupKeyPrefix('p:', { namespace: 'x', epoch: 7 })).toBe('p:dedup:x:7:');
    expect(() => dedupKeyPrefix('p:', { namespace: 'a:b' })).toThrow(/namespace/);
    expect(() => dedupKeyPrefix('p:', { namespace: 'x', epoch: -1 })).toThrow(/epoch/);
  });
});
