import { systemClock, type Clock } from '../clock';
import type { HoldBackend } from './hold';

/**
 * The hold's coordination in memory, for one stream: what the Redis scripts
 * in ./hold.ts do, step for step, on the injected clock. Every process that
 * shares one instance shares the hold, so it serves one process running
 * several writers (tests, single-process tools) and the simulation, where
 * simulated time drives the TTLs. It lives in src/, not test/, because it is
 * a real implementation of the port with nothing test-specific in it.
 *
 * Expiry follows Redis: a key set with PX ttl at t is gone once now > t + ttl;
 * a lease (a sorted-set score) counts as expired once its expiry <= now.
 */
export class MemoryHoldBackend implements HoldBackend {
  private hold?: { holder: string; expiresAt: number };
  private readonly leases = new Map<string, number>();

  constructor(private readonly clock: Clock = systemClock) {}

  async enterLease(token: string, ttlMs: number): Promise<boolean> {
    if (this.currentHold()) return false;
    this.leases.set(token, this.clock.now() + ttlMs);
    return true;
  }

  async renewLease(token: string, ttlMs: number): Promise<boolean> {
    const now = this.clock.now();
    const expiry = this.leases.get(token);
    if (expiry === undefined || expiry <= now) {
      this.leases.delete(token);
      return false;
    }
    this.leases.set(token, now + ttlMs);
    return true;
  }

  async leaveLease(token: string): Promise<void> {
    this.leases.delete(token);
  }

  async setHold(holder: string, ttlMs: number): Promise<number> {
    const now = this.clock.now();
    const current = this.currentHold();
    if (current && current.holder !== holder) return -1;
    this.hold = { holder, expiresAt: now + ttlMs };
    for (const [token, expiry] of this.leases) if (expiry <= now) this.leases.delete(token);
    return this.leases.size;
  }

  async renewHold(holder: string, ttlMs: number): Promise<boolean> {
    const current = this.currentHold();
    if (current?.holder !== holder) return false;
    current.expiresAt = this.clock.now() + ttlMs;
    return true;
  }

  async releaseHold(holder: string): Promise<void> {
    if (this.currentHold()?.holder === holder) this.hold = undefined;
  }

  /** For tests and the simulation: whether a hold is set now, and the leases not yet expired. */
  inspect(): { holder?: string; leases: string[] } {
    const now = this.clock.now();
    return {
      holder: this.currentHold()?.holder,
      leases: [...this.leases].filter(([, expiry]) => expiry > now).map(([token]) => token),
    };
  }

  /** Fault hook for the simulation: the state is lost, as when Redis restarts without its data. */
  forget(): void {
    this.hold = undefined;
    this.leases.clear();
  }

  private currentHold() {
    if (this.hold && this.clock.now() > this.hold.expiresAt) this.hold = undefined;
    return this.hold;
  }
}
