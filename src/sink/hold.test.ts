import { ServiceError } from '../errors';
import { insertAttempt, SinkHeldError, SinkHold, SinkLeaseLostError, type HoldBackend } from './hold';
import { MemoryHoldBackend } from './hold-memory';
import { ManualClock } from './manual-clock';
import { sleep } from '../clock';

/** A backend whose calls can be made to fail, as Redis being away. */
function flaky(inner: HoldBackend) {
  let down = false;
  const guard =
    <A extends unknown[], R>(f: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      if (down) throw new Error('connect ECONNREFUSED 127.0.0.1:6379');
      return f(...a);
    };
  const backend: HoldBackend = {
    enterLease: guard((t, ms) => inner.enterLease(t, ms)),
    renewLease: guard((t, ms) => inner.renewLease(t, ms)),
    leaveLease: guard((t) => inner.leaveLease(t)),
    setHold: guard((h, ms) => inner.setHold(h, ms)),
    renewHold: guard((h, ms) => inner.renewHold(h, ms)),
    releaseHold: guard((h) => inner.releaseHold(h)),
  };
  return { backend, setDown: (d: boolean) => (down = d) };
}

const MINUTE = 60_000;

describe('SinkHold on simulated time (in-memory backend)', () => {
  let clock: ManualClock;
  let backend: MemoryHoldBackend;
  beforeEach(() => {
    clock = new ManualClock(1_000_000);
    backend = new MemoryHoldBackend(clock);
  });

  it('a write running for ten minutes keeps its 120 s lease: a holder waits for it all that time', async () => {
    const hold = new SinkHold(backend, 's', { clock });
    let finish!: () => void;
    const writing = hold.write(() => new Promise<void>((r) => (finish = r)));
    await clock.advance(10 * MINUTE);
    expect(backend.inspect().leases).toHaveLength(1);
    const holding = hold.hold(MINUTE).then(() => clock.now());
    await clock.advance(30_000);
    finish();
    await writing;
    await clock.advance(100);
    // Granted at the first poll after the write ended, not before.
    expect(await holding).toBe(1_000_000 + 10 * MINUTE + 30_000 + 50);
  });

  it('a write whose lease cannot be renewed is aborted at TTL - margin after its last confirmed renewal, retriably', async () => {
    const { backend: b, setDown } = flaky(backend);
    const hold = new SinkHold(b, 's', { clock, leaseTtlMs: 120_000 });
    let signal!: AbortSignal;
    const writing = hold.write((s) => {
      signal = s;
      return new Promise<never>(() => undefined);
    });
    const outcome = writing.catch((err: unknown) => err);
    await clock.advance(15_000); // one renewal confirmed, at 15 s
    setDown(true);
    await clock.advance(15_000 + 90_000 - 15_000 - 1); // 1 ms before 15 s + 120 s - 30 s
    expect(signal.aborted).toBe(false);
    await clock.advance(1);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeInstanceOf(SinkLeaseLostError);
    expect((signal.reason as SinkLeaseLostError).retriable).toBe(true);
    // The lease itself outlives the abort by the margin: a fully received insert still commits inside it.
    expect(backend.inspect().leases).toHaveLength(1);
    await clock.advance(30_000);
    expect(backend.inspect().leases).toHaveLength(0);
    void outcome;
  });

  it('a write whose lease is gone (a renewal finds it expired or removed) is aborted at that renewal', async () => {
    const hold = new SinkHold(backend, 's', { clock, leaseTtlMs: 8000 });
    let signal!: AbortSignal;
    void hold
      .write((s) => {
        signal = s;
        return new Promise<never>(() => undefined);
      })
      .catch(() => undefined);
    await clock.advance(500);
    backend.forget(); // Redis lost its data
    await clock.advance(499);
    expect(signal.aborted).toBe(false);
    await clock.advance(1); // the renewal at 1000 ms (TTL / 8)
    expect(signal.reason).toBeInstanceOf(SinkLeaseLostError);
  });

  it('an insert attempt is cut when its lease is lost, and after its own time limit otherwise', async () => {
    const hold = new SinkHold(backend, 's', { clock, leaseTtlMs: 8000 });
    const cuts: string[] = [];
    const writing = hold.write(async () => {
      const first = insertAttempt(5000);
      await clock.sleep(4999);
      expect(first.cut()).toBeUndefined();
      await clock.sleep(1);
      expect(first.cut()).toBeInstanceOf(ServiceError);
      expect(first.cut()!.retriable).toBe(true);
      cuts.push('timeout');
      first.end();
      const second = insertAttempt(5000);
      backend.forget();
      await new Promise((r) => second.signal.addEventListener('abort', r));
      expect(second.cut()).toBeInstanceOf(SinkLeaseLostError);
      cuts.push('lease');
    });
    await clock.advance(20_000);
    await writing;
    expect(cuts).toEqual(['timeout', 'lease']);
  });

  it('outside any write lease (a replay writing its rebuild tables), an insert attempt is still bounded', async () => {
    const attempt = insertAttempt(20);
    expect(attempt.cut()).toBeUndefined();
    await sleep(40); // the process's own clock: no lease, no manual clock
    expect(attempt.cut()).toBeInstanceOf(ServiceError);
    expect(attempt.cut()!.retriable).toBe(true);
    attempt.end();
  });

  it('a write that ends after an insert attempt was cut mid-flight keeps its lease for the margin; one that ends cleanly drops it', async () => {
    const hold = new SinkHold(backend, 's', { clock, leaseTtlMs: 120_000 });
    const writing = hold.write(async () => {
      const attempt = insertAttempt(10_000);
      await clock.sleep(10_000); // the server never answered: cut
      attempt.end();
    });
    await clock.advance(10_000);
    await writing;
    const endedAt = clock.now();
    expect(backend.inspect().leases).toHaveLength(1);
    const granted = hold.hold(60_000).then(() => clock.now() - endedAt);
    await clock.advance(31_000);
    // The lingering lease lasts 30 s (TTL / 4) after the write: the holder's polls (every 50 ms) get the hold exactly then.
    expect(await granted).toBe(30_000);

    const other = new SinkHold(new MemoryHoldBackend(clock), 's', { clock });
    const clean = other.write(async () => {
      const attempt = insertAttempt(10_000);
      await clock.sleep(5000); // answered in time
      attempt.end();
    });
    await clock.advance(5000);
    await clean;
    expect(backend.inspect().leases).toHaveLength(0);
  });

  it('a lease refused while held; the hold is renewed for as long as the holder works, and lost when renewals fail', async () => {
    const { backend: b, setDown } = flaky(backend);
    const hold = new SinkHold(b, 's', { clock, holdTtlMs: 60_000 });
    const held = await hold.hold(1000);
    await clock.advance(30 * MINUTE);
    await expect(hold.write(async () => undefined)).rejects.toBeInstanceOf(SinkHeldError);
    await held.confirm();
    const confirmedAt = clock.now();
    setDown(true);
    await clock.advance(45_000 - 1);
    expect(held.signal.aborted).toBe(false);
    await clock.advance(1);
    expect(held.signal.aborted).toBe(true); // 60 s - 15 s margin after the last confirmation
    expect(clock.now() - confirmedAt).toBe(45_000);
    setDown(false);
    await expect(held.confirm()).rejects.toMatchObject({ code: 'SINK_HOLD_LOST' });
    await held.release();
  });

  it('a hold that lapsed is never confirmed again, even by its own holder, and never re-created by a renewal', async () => {
    const hold = new SinkHold(backend, 's', { clock, holdTtlMs: 60_000 });
    const held = await hold.hold(1000);
    backend.forget();
    await hold.write(async () => undefined); // writes go on at once
    await expect(held.confirm()).rejects.toMatchObject({ code: 'SINK_HOLD_LOST' });
    expect(backend.inspect().holder).toBeUndefined();
  });

  it('a dead writer (no renewals) blocks a holder for its TTL, no longer', async () => {
    await backend.enterLease('dead', 120_000);
    const hold = new SinkHold(backend, 's', { clock });
    await clock.advance(119_000);
    const outcome = hold.hold(500).then(
      () => 'held',
      (err: { code: string }) => err.code,
    );
    await clock.advance(600);
    expect(await outcome).toBe('SINK_HOLD_TIMEOUT');
    const held = hold.hold(2000);
    await clock.advance(1000);
    await expect(held.then((h) => typeof h.holder)).resolves.toBe('string');
  });
});
