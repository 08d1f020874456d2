import { RedisDedupStore, type DedupRecord } from '../../src/dedup';
import { createTestContext, type TestContext } from '../helpers/context';

/**
 * A dedup claim sends its ids and claimants to Redis as two JSON arrays, which the claim script decodes
 * with Redis' cjson (src/dedup/redis.ts). Guards from a review: ids that JSON or cjson might treat apart
 * mark the same keys, answer the same, and never make the script fail (which would pause the stream for
 * good), as when each key was an argument of its own.
 */
let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext('dedup-json');
});
afterAll(async () => {
  await ctx.cleanup();
});

const rec = (id: string, offset: number, partition = 0): DedupRecord => ({
  id,
  topic: 'events',
  partition,
  offset: String(offset),
});
let n = 0;
const store = () => new RedisDedupStore(ctx.redis, { keyPrefix: ctx.config.redis.keyPrefix, namespace: `json${n++}` });

/** What the store sends for an id: lone surrogates as U+FFFD. */
const wf = (s: string): string => (s as string & { toWellFormed(): string }).toWellFormed();

async function roundTrip(ids: string[]) {
  const s = store();
  const batch = ids.map((id, i) => rec(id, i, 1));
  const uniqueFirst = ids.map((id, i) => ids.findIndex((x) => wf(x) === wf(id)) === i);
  expect(await s.claim(batch)).toEqual(uniqueFirst);
  for (const [i, id] of ids.entries())
    if (uniqueFirst[i]) expect(await ctx.redis.get(s.keyOf(id))).toBe(`events/1/${i}`);
  expect(await s.claim(batch)).toEqual(uniqueFirst);
  expect(await s.claim(ids.map((id, i) => rec(id, i + 1_000_000, 1)))).toEqual(ids.map(() => false));
}

describe('a dedup claim of ids JSON and cjson might treat apart', () => {
  it('empty id, number-looking and JSON-keyword ids', async () => {
    await roundTrip([
      '',
      '0',
      '-0',
      '1e400',
      '1E-400',
      'NaN',
      'Infinity',
      '0x10',
      'null',
      'true',
      '[]',
      '{}',
      '"',
      '  1 ',
      '9007199254740993',
    ]);
  });
  it('every control character and escape', async () => {
    const ids = Array.from({ length: 0x80 }, (_, c) => `c${String.fromCharCode(c)}x`);
    ids.push(
      '\u2028\u2029',
      '\u007f',
      '\\u0041',
      '/\\/',
      '\uFEFFbom',
      '\uFFFF',
      '\uFFFE',
      '\u{10FFFF}',
      '\uDBFF\uDFFF',
    );
    await roundTrip(ids);
  });
  it('lone surrogates of every position', async () => {
    await roundTrip(['\uD800', '\uDFFF', 'a\uD83D', '\uDE00b', '\uDE00\uD83D', 'x\uFFFD']);
  });
  it('very long ids (1 MiB, 8 MiB of escapes)', async () => {
    await roundTrip(['L'.repeat(1 << 20), '\u0001'.repeat(1 << 20), '"'.repeat(1 << 20)]);
  });
  it('a huge batch (200k ids)', async () => {
    const ids = Array.from({ length: 200_000 }, (_, i) => `h${i}`);
    const s = store();
    const r = await s.claim(ids.map((id, i) => rec(id, i)));
    expect(r.every(Boolean)).toBe(true);
    const r2 = await s.claim(ids.map((id, i) => rec(id, i + 1_000_000)));
    expect(r2.some(Boolean)).toBe(false);
  }, 60_000);
  it('claimants with big offsets', async () => {
    const s = store();
    const batch = [{ id: 'o', topic: 'events', partition: 2147483647, offset: '9223372036854775807' }];
    expect(await s.claim(batch)).toEqual([true]);
    expect(await s.claim(batch)).toEqual([true]);
  });
});
