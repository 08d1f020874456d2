import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { systemClock, type Cancel, type Clock } from '../clock';
import { describeError, ServiceError, SluiceError } from '../errors';

/**
 * A short pause of a stream's ClickHouse writes, so that a shadow replay can
 * swap rebuilt partitions in without a live insert landing between its copy
 * and its swap (such a row would be dropped by the swap while its offsets
 * are committed).
 *
 * Writers (every live process of the stream) take a lease before each write
 * and drop it after; a lease is refused while a hold exists. The holder sets
 * the hold, then waits until no lease is left, so when `hold` returns no
 * write is running and none can start until `release`. Leases and the hold
 * expire (a writer or holder that dies cannot stop the other side for longer
 * than its TTL), so both sides renew theirs while they work:
 *
 * - a writer renews its lease while its write runs, and aborts the write
 *   (retriably: the runtime writes the rows again later) before the lease
 *   could have expired, i.e. `leaseTtlMs - margin` after the last renewal it
 *   saw confirmed. Each insert attempt is also bounded (`insertAttempt`, used
 *   by the ClickHouse sink), well under the lease.
 * - the holder renews the hold while it copies, and confirms it right before
 *   each statement that changes a live table (`HeldWrites.confirm`); a hold
 *   that lapsed is never re-created, so a confirmed hold was held throughout.
 *
 * What remains: aborting an insert cuts its HTTP request, which stops an
 * insert the server has not fully received; one it has fully received is
 * committed anyway, a moment later. The margin (a quarter of the lease TTL,
 * 30 s by default) is the time such an insert has to commit inside its
 * lease: a write aborted for a lost lease stops at TTL - margin, and a write
 * that ends after an attempt was cut mid-flight (lease lost or attempt timed
 * out) keeps its lease for the margin instead of dropping it. Committing a
 * received block of one checkpoint takes well under a second. Only a lease
 * deleted outright (Redis lost its data) leaves no margin; for that, and
 * anything else that slips through, the swap compares the live table's
 * newest insert before its copy and right before its swap
 * (src/replay/swap.ts), so a row that slipped in makes the swap stop
 * instead of dropping the row.
 *
 * The coordination itself is a HoldBackend: Redis (one Lua call per step,
 * Redis's own clock, so processes on other machines agree) for real streams,
 * or in memory (./hold-memory.ts) for one process and for the simulation.
 * Time here (renewals, deadlines, waits) comes from an injected Clock.
 */

/** The coordination a SinkHold needs, for one stream. Every call is atomic on its own. */
export interface HoldBackend {
  /** Takes lease `token` for `ttlMs` unless a hold is set; false = a hold is set, no lease taken. */
  enterLease(token: string, ttlMs: number): Promise<boolean>;
  /** Extends a live lease to `ttlMs` from now, even while a hold is set; false = it expired or was removed (it is never re-created). */
  renewLease(token: string, ttlMs: number): Promise<boolean>;
  leaveLease(token: string): Promise<void>;
  /** Sets the hold for `holder` (or refreshes it) for `ttlMs` and drops expired leases; -1 = another holder has it, else the number of live leases. */
  setHold(holder: string, ttlMs: number): Promise<number>;
  /** Extends the hold to `ttlMs` from now if it is still `holder`'s; false = it lapsed or is another's (it is never re-created). */
  renewHold(holder: string, ttlMs: number): Promise<boolean>;
  /** Deletes the hold if it is still `holder`'s. */
  releaseHold(holder: string): Promise<void>;
}

/** Keys: 1 hold, 2 leases (zset member = writer token, score = expiry ms). Args: 1 token, 2 ttl ms. */
const ENTER = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local ttl = tonumber(ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1`;

/** Keys: 1 leases. Args: 1 token, 2 ttl ms. An expired lease is removed, not renewed: the holder may already have counted it out. */
const RENEW_LEASE = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local ttl = tonumber(ARGV[2])
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not expiry or tonumber(expiry) <= now then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1`;

/** Keys as ENTER. Args: 1 holder, 2 hold ttl ms. Returns -1 when another holder has it, else the live leases. */
const HOLD = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return -1 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
return redis.call('ZCARD', KEYS[2])`;

/** Keys: 1 hold. Args: 1 holder, 2 ttl ms. Extends only this holder's hold: a lapsed one stays lapsed. */
const RENEW_HOLD = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2])) end
return 0`;

/** Keys: 1 hold. Args: 1 holder. Deletes the hold only if it is still this holder's. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** The hold's state in Redis: `<prefix>hold:<stream>` (the holder's token) and `<prefix>hold:<stream>:writers` (leases). */
export class RedisHoldBackend implements HoldBackend {
  private readonly holdKey: string;
  private readonly leasesKey: string;

  constructor(
    private readonly redis: Redis,
    keyPrefix: string,
    stream: string,
  ) {
    this.holdKey = `${keyPrefix}hold:${stream}`;
    this.leasesKey = `${keyPrefix}hold:${stream}:writers`;
  }

  async enterLease(token: string, ttlMs: number): Promise<boolean> {
    return Number(await this.redis.eval(ENTER, 2, this.holdKey, this.leasesKey, token, ttlMs)) === 1;
  }

  async renewLease(token: string, ttlMs: number): Promise<boolean> {
    return Number(await this.redis.eval(RENEW_LEASE, 1, this.leasesKey, token, ttlMs)) === 1;
  }

  async leaveLease(token: string): Promise<void> {
    await this.redis.zrem(this.leasesKey, token);
  }

  async setHold(holder: string, ttlMs: number): Promise<number> {
    return Number(await this.redis.eval(HOLD, 2, this.holdKey, this.leasesKey, holder, ttlMs));
  }

  async renewHold(holder: string, ttlMs: number): Promise<boolean> {
    return Number(await this.redis.eval(RENEW_HOLD, 1, this.holdKey, holder, ttlMs)) === 1;
  }

  async releaseHold(holder: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.holdKey, holder);
  }
}

export class SinkHeldError extends SluiceError {
  constructor(stream: string) {
    super(
      'SINK_HELD',
      `ClickHouse writes of stream ${stream} are held by a shadow replay swapping tables in; retrying`,
      { retriable: true },
    );
    this.name = 'SinkHeldError';
  }
}

/** A writer's lease lapsed or could not be renewed in time: its write was aborted and is retried later. */
export class SinkLeaseLostError extends SluiceError {
  constructor(stream: string, why: string) {
    super('SINK_LEASE_LOST', `a ClickHouse write of stream ${stream} lost its lease (${why}); aborted, retrying`, {
      retriable: true,
    });
    this.name = 'SinkLeaseLostError';
  }
}

/** The holder's hold lapsed or could not be confirmed: it must not change any live table. */
export class SinkHoldLostError extends SluiceError {
  constructor(stream: string, why: string) {
    super('SINK_HOLD_LOST', `the hold on the ClickHouse writes of stream ${stream} was lost (${why})`);
    this.name = 'SinkHoldLostError';
  }
}

export interface SinkHoldOptions {
  /** How long a writer's lease lasts without renewal (a writer that died mid-insert blocks a holder this long). */
  leaseTtlMs?: number;
  /** How long the hold lasts without renewal (a holder that died blocks the live stream this long). */
  holdTtlMs?: number;
  clock?: Clock;
}

/**
 * Renewals run every eighth of a TTL, so several may fail (Redis briefly
 * away) before the margin, a quarter of the TTL, is reached; the margin is
 * what a fully received insert has to commit (writer), or what the statement
 * after a confirmation has to run (holder), before the TTL could run out.
 */
const RENEW_FRACTION = 8;
const MARGIN_FRACTION = 4;

/**
 * The longest a single insert attempt may run by default: a quarter of the
 * default 120 s lease. An attempt that starts right after a renewal ends
 * (or is cut) 90 s before the lease could run out even if no renewal
 * arrives after it; one that starts later is cut by the lease's own
 * deadline. Either way nothing is in flight within the margin of expiry.
 */
export const DEFAULT_INSERT_ATTEMPT_MS = 30_000;

/** A running write's lease, as the code below it sees it (the ClickHouse sink reads it to abort its insert). */
interface ActiveLease {
  signal: AbortSignal;
  clock: Clock;
  /** An insert attempt was cut while in flight: the server may still commit it, so the lease must not end at once. */
  cutInFlight: boolean;
}

/**
 * The write's lease travels with the async context rather than as an
 * argument: between the hold and the ClickHouse client sit the runtime's
 * RowSink port, a row filter and telemetry, none of which carry a signal.
 */
const activeLease = new AsyncLocalStorage<ActiveLease>();

/** One insert attempt: `signal` for the client, aborted when the write's lease is lost or after the attempt's time limit. */
export interface InsertAttempt {
  signal: AbortSignal;
  /** Why the attempt was cut (SinkLeaseLostError, or a retriable timeout), if it was; throw that instead of the client's error. */
  cut(): SluiceError | undefined;
  end(): void;
}

/** Starts an insert attempt bounded by `timeoutMs` and, under SinkHold.write, by the write's lease. */
export function insertAttempt(timeoutMs: number = DEFAULT_INSERT_ATTEMPT_MS): InsertAttempt {
  const lease = activeLease.getStore();
  const controller = new AbortController();
  let ended = false;
  const cut = (reason: SluiceError) => {
    if (controller.signal.aborted || ended) return;
    controller.abort(reason);
    if (lease) lease.cutInFlight = true;
  };
  const onLease = () => cut(lease!.signal.reason as SluiceError);
  if (lease?.signal.aborted)
    controller.abort(lease.signal.reason); // lost already: the attempt never starts
  else lease?.signal.addEventListener('abort', onLease, { once: true });
  const timedOut = () =>
    cut(
      new ServiceError('clickhouse', `a ClickHouse insert took longer than ${timeoutMs} ms; aborted, retrying`, {
        retriable: true,
      }),
    );
  // Under a lease, on the lease's clock (simulated time drives it in the simulation); otherwise a
  // process timer that does not keep the process alive for an insert nobody waits for any more.
  const cancel = lease ? lease.clock.setTimeout(timedOut, timeoutMs) : unrefTimeout(timedOut, timeoutMs);
  return {
    signal: controller.signal,
    cut: () => (controller.signal.aborted ? (controller.signal.reason as SluiceError) : undefined),
    end() {
      ended = true;
      cancel();
      lease?.signal.removeEventListener('abort', onLease);
    },
  };
}

function unrefTimeout(fn: () => void, ms: number): Cancel {
  const timer = setTimeout(fn, ms);
  timer.unref();
  return () => clearTimeout(timer);
}

/** A hold taken by `SinkHold.hold`: renewed in the background until released. */
export interface HeldWrites {
  readonly holder: string;
  /** Aborted (with a SinkHoldLostError) once a renewal finds the hold gone, or none succeeded for too long. */
  readonly signal: AbortSignal;
  /** Renews the hold now; throws SinkHoldLostError unless it is still this holder's, held without a gap since `hold`. Call right before changing a live table. */
  confirm(): Promise<void>;
  /** Stops renewing and deletes the hold (if that fails, it lapses by its TTL). Never throws. */
  release(): Promise<void>;
}

export class SinkHold {
  private readonly backend: HoldBackend;
  private readonly stream: string;
  private readonly leaseTtlMs: number;
  private readonly holdTtlMs: number;
  private readonly clock: Clock;

  /** Over a backend; or, for the existing callers, over Redis with the stream's keys under `keyPrefix`. */
  constructor(backend: HoldBackend, stream: string, options?: SinkHoldOptions);
  constructor(redis: Redis, keyPrefix: string, stream: string, options?: SinkHoldOptions);
  constructor(first: HoldBackend | Redis, second: string, third?: string | SinkHoldOptions, fourth?: SinkHoldOptions) {
    const overRedis = typeof third === 'string';
    this.backend = overRedis ? new RedisHoldBackend(first as Redis, second, third) : (first as HoldBackend);
    this.stream = overRedis ? third : second;
    const options = (overRedis ? fourth : third) ?? {};
    this.leaseTtlMs = options.leaseTtlMs ?? 120_000;
    this.holdTtlMs = options.holdTtlMs ?? 60_000;
    this.clock = options.clock ?? systemClock;
  }

  /**
   * Runs one write under a lease; throws a retriable SinkHeldError while a
   * hold is set. The lease is renewed while `run` runs; if it is lost, the
   * signal given to `run` (and to every insert attempt inside it, see
   * `insertAttempt`) aborts with a retriable SinkLeaseLostError.
   */
  async write<T>(run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const token = randomUUID();
    const sentAt = this.clock.now();
    let granted: boolean;
    try {
      granted = await this.backend.enterLease(token, this.leaseTtlMs);
    } catch (err) {
      throw new ServiceError('redis', `cannot take a write lease for stream ${this.stream}: ${describeError(err)}`, {
        retriable: true,
        cause: err,
      });
    }
    if (!granted) throw new SinkHeldError(this.stream);
    const keeper = new Renewal(
      this.clock,
      this.leaseTtlMs,
      sentAt,
      () => this.backend.renewLease(token, this.leaseTtlMs),
      (why) => new SinkLeaseLostError(this.stream, why),
    );
    const lease: ActiveLease = { signal: keeper.signal, clock: this.clock, cutInFlight: false };
    try {
      return await activeLease.run(lease, () => run(keeper.signal));
    } finally {
      keeper.stop();
      // A cut insert the server had received whole still commits: the lease stays for the margin (no
      // holder starts copying meanwhile), then expires. Otherwise it ends now (else with its TTL).
      const ending = lease.cutInFlight
        ? this.backend.renewLease(token, Math.floor(this.leaseTtlMs / MARGIN_FRACTION))
        : this.backend.leaveLease(token);
      await ending.catch(() => undefined);
    }
  }

  /**
   * Sets the hold and waits until every running write finished. Resolves
   * with the hold, renewed in the background until `release`; rejects (with
   * the hold released) when writes are still running after `timeoutMs` or
   * another holder has it.
   */
  async hold(timeoutMs: number): Promise<HeldWrites> {
    const holder = randomUUID();
    const deadline = this.clock.now() + timeoutMs;
    for (;;) {
      const sentAt = this.clock.now();
      const leases = await this.backend.setHold(holder, this.holdTtlMs);
      if (leases === -1)
        throw new SluiceError(
          'SINK_HOLD_TAKEN',
          `another replay holds the writes of stream ${this.stream}; wait for it to finish`,
        );
      if (leases === 0) return this.held(holder, sentAt);
      if (this.clock.now() >= deadline) {
        await this.backend.releaseHold(holder).catch(() => undefined);
        throw new SluiceError(
          'SINK_HOLD_TIMEOUT',
          `live writes of stream ${this.stream} did not finish within ${timeoutMs} ms; nothing was swapped, try again`,
        );
      }
      await this.clock.sleep(50);
    }
  }

  private held(holder: string, sentAt: number): HeldWrites {
    const lost = (why: string) => new SinkHoldLostError(this.stream, why);
    const keeper = new Renewal(
      this.clock,
      this.holdTtlMs,
      sentAt,
      () => this.backend.renewHold(holder, this.holdTtlMs),
      lost,
    );
    return {
      holder,
      signal: keeper.signal,
      confirm: () => keeper.confirm(),
      release: async () => {
        keeper.stop();
        await this.backend.releaseHold(holder).catch(() => undefined);
      },
    };
  }
}

/**
 * Keeps a lease or a hold alive: renews it every TTL/8 and aborts `signal`
 * when a renewal finds it gone, or when no renewal was confirmed for
 * TTL - margin (it may be about to expire). A renewal's validity counts from
 * when it was sent, which is no later than when the server applied it.
 */
class Renewal {
  private readonly controller = new AbortController();
  private readonly renewEveryMs: number;
  private readonly marginMs: number;
  private confirmedAt: number;
  private stopped = false;
  private cancelRenew: Cancel = () => undefined;
  private cancelDeadline: Cancel = () => undefined;

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: number,
    sentAt: number,
    private readonly renewOnce: () => Promise<boolean>,
    private readonly lostError: (why: string) => SluiceError,
  ) {
    this.renewEveryMs = Math.max(1, Math.floor(ttlMs / RENEW_FRACTION));
    this.marginMs = Math.floor(ttlMs / MARGIN_FRACTION);
    this.confirmedAt = sentAt;
    this.armDeadline();
    this.scheduleRenewal();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Renews now; throws unless confirmed. */
  async confirm(): Promise<void> {
    if (this.signal.aborted) throw this.signal.reason;
    const sentAt = this.clock.now();
    let ok: boolean;
    try {
      ok = await this.renewOnce();
    } catch (err) {
      // Unknown whether it still stands: nothing may rely on it.
      this.lose(`cannot be confirmed: ${describeError(err)}`);
      throw this.signal.reason;
    }
    if (this.signal.aborted) throw this.signal.reason;
    if (!ok) {
      this.lose('it expired or was removed');
      throw this.signal.reason;
    }
    // An answer this late leaves less than the margin to act in: not a confirmation.
    if (this.clock.now() - sentAt > this.marginMs) {
      this.lose(`its confirmation took ${this.clock.now() - sentAt} ms`);
      throw this.signal.reason;
    }
    this.confirmed(sentAt);
  }

  stop(): void {
    this.stopped = true;
    this.cancelRenew();
    this.cancelDeadline();
  }

  private confirmed(sentAt: number): void {
    if (sentAt <= this.confirmedAt) return;
    this.confirmedAt = sentAt;
    this.armDeadline();
  }

  private armDeadline(): void {
    this.cancelDeadline();
    const due = this.confirmedAt + this.ttlMs - this.marginMs - this.clock.now();
    this.cancelDeadline = this.clock.setTimeout(
      () => this.lose(`not renewed for ${this.ttlMs - this.marginMs} ms`),
      Math.max(0, due),
    );
  }

  private scheduleRenewal(): void {
    this.cancelRenew = this.clock.setTimeout(() => void this.renew(), this.renewEveryMs);
  }

  private async renew(): Promise<void> {
    if (this.stopped) return;
    const sentAt = this.clock.now();
    let ok: boolean | undefined;
    try {
      ok = await this.renewOnce();
    } catch {
      ok = undefined; // unreachable for now: the deadline decides
    }
    if (this.stopped) return;
    if (ok === false) return this.lose('it expired or was removed');
    if (ok) this.confirmed(sentAt);
    this.scheduleRenewal();
  }

  private lose(why: string): void {
    if (this.signal.aborted) return;
    this.controller.abort(this.lostError(why));
    this.stop();
  }
}
