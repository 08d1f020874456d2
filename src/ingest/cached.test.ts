import { cachedFor } from './cached';

describe('cachedFor', () => {
  let clock = 0;
  const now = () => clock;

  it('shares a call in flight, then its outcome for the TTL after it ended', async () => {
    let calls = 0;
    let release!: () => void;
    const probe = cachedFor(
      1000,
      () => {
        calls += 1;
        return new Promise<number>((resolve) => (release = () => resolve(calls)));
      },
      now,
    );
    clock = 0;
    const first = [probe(), probe(), probe()];
    clock = 5000; // a slow probe: the TTL counts from its end, not its start
    expect(probe()).toBe(first[0]);
    release();
    expect(await Promise.all(first)).toEqual([1, 1, 1]);
    clock = 5999;
    expect(await probe()).toBe(1);
    clock = 6000;
    const second = probe();
    release();
    expect(await second).toBe(2);
    expect(calls).toBe(2);
  });

  it('keeps a failure for the TTL too, then tries again', async () => {
    let calls = 0;
    const probe = cachedFor(
      1000,
      async () => {
        calls += 1;
        if (calls === 1) throw new Error('down');
        return 'up';
      },
      now,
    );
    clock = 0;
    await expect(probe()).rejects.toThrow('down');
    clock = 999;
    await expect(probe()).rejects.toThrow('down');
    clock = 1000;
    await expect(probe()).resolves.toBe('up');
    expect(calls).toBe(2);
  });
});
