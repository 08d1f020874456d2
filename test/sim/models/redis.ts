import type { Redis } from 'ioredis';
import type { SeededRandom } from '../../../src/generator';
import type { Owner, Scheduler } from '../scheduler';

/**
 * An in-memory model of the Redis the runtime relies on, behind the part of
 * the ioredis client that the dedup store and the window-state store call,
 * so those stores run unchanged against it.
 *
 * What it models, because the runtime's correctness depends on it:
 * - keys expire after their TTL (simulated time);
 * - `crash()` loses the writes of up to the last second, as AOF `everysec`
 *   does, and always a suffix of them (Redis applies and persists writes in
 *   order); the restarted server reports a new `run_id`;
 * - while down, every command fails, as ioredis without an offline queue.
 *
 * The dedup claim is a Lua script in the real store; here the same named
 * command is implemented in TypeScript (claimScript below). A spec runs both
 * on the same claims and compares the answers (redis-model.test.ts).
 */

type Value =
  | { kind: 'string'; value: string; expiresAt?: number }
  | { kind: 'hash'; value: Map<string, string>; expiresAt?: number };

/** One write, with what undoes it. */
interface Write {
  at: number;
  undo: () => void;
}

const RTT = 1;

export class SimRedis {
  private readonly data = new Map<string, Value>();
  private journal: Write[] = [];
  private runs = 1;
  up = true;
  /** Commands served, for the report. */
  commands = 0;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly random: SeededRandom,
  ) {}

  get runId(): string {
    return this.runs.toString(16).padStart(40, '0');
  }

  /** The server dies, losing the writes since a random point of the last `lossMs`; it is down until `restart`. */
  crash(lossMs = 1000): number {
    const cut = this.scheduler.now() - Math.floor(this.random.next() * lossMs);
    let lost = 0;
    while (this.journal.length > 0 && this.journal[this.journal.length - 1]!.at > cut) {
      this.journal.pop()!.undo();
      lost += 1;
    }
    this.up = false;
    return lost;
  }

  restart(): void {
    this.up = true;
    this.runs += 1;
    this.journal = [];
  }

  /** Writes older than a second are durable: the journal only needs what a crash can lose. */
  private record(undo: () => void): void {
    const now = this.scheduler.now();
    this.journal.push({ at: now, undo });
    if (this.journal.length > 10_000 || (this.journal[0] && this.journal[0].at < now - 2000)) {
      this.journal = this.journal.filter((w) => w.at >= now - 2000);
    }
  }

  private live(key: string): Value | undefined {
    const v = this.data.get(key);
    if (v?.expiresAt !== undefined && v.expiresAt <= this.scheduler.now()) {
      this.data.delete(key);
      return undefined;
    }
    return v;
  }

  /** Replaces a key's value, journaling the old one. */
  private put(key: string, next: Value | undefined): void {
    const old = this.data.get(key);
    const copy = old && (old.kind === 'hash' ? { ...old, value: new Map(old.value) } : { ...old });
    if (next) this.data.set(key, next);
    else this.data.delete(key);
    this.record(() => {
      if (copy) this.data.set(key, copy);
      else this.data.delete(key);
    });
  }

  private hash(key: string): Map<string, string> | undefined {
    const v = this.live(key);
    if (v && v.kind !== 'hash') throw new Error(`WRONGTYPE ${key}`);
    return v?.value;
  }

  /** The commands the stores use, by name. */
  run(command: string, args: (string | number)[]): unknown {
    this.commands += 1;
    const [key] = args as string[];
    switch (command) {
      case 'get': {
        const v = this.live(key!);
        return v?.kind === 'string' ? v.value : null;
      }
      case 'hset': {
        const fields = new Map(this.hash(key!) ?? []);
        for (let i = 1; i < args.length; i += 2) fields.set(String(args[i]), String(args[i + 1]));
        this.put(key!, { kind: 'hash', value: fields });
        return 1;
      }
      case 'hget':
        return this.hash(key!)?.get(String(args[1])) ?? null;
      case 'hkeys':
        return [...(this.hash(key!)?.keys() ?? [])];
      case 'hdel': {
        const fields = new Map(this.hash(key!) ?? []);
        let n = 0;
        for (const f of args.slice(1)) if (fields.delete(String(f))) n += 1;
        this.put(key!, fields.size > 0 ? { kind: 'hash', value: fields } : undefined);
        return n;
      }
      case 'info':
        return `# Server\r\nredis_version:7.0.15\r\nrun_id:${this.runId}\r\n`;
      case 'sluiceDedupClaim':
        return this.claimScript(args);
      default:
        throw new Error(`the Redis model has no command ${command}`);
    }
  }

  /**
   * The dedup store's claim script: for each id (a JSON array, as are the claimants), claim prefix + id
   * for its claimant if free, else '1' only if the mark is that claimant's; the answers as one string.
   */
  private claimScript(args: (string | number)[]): string {
    const [, ttl, prefix, ids, claimants] = args.map(String);
    const ttlMs = Number(ttl) * 1000;
    const who = JSON.parse(claimants!) as string[];
    return (JSON.parse(ids!) as string[])
      .map((id, i) => {
        const key = prefix! + id;
        const mark = this.live(key);
        if (!mark) {
          this.put(key, { kind: 'string', value: who[i]!, expiresAt: this.scheduler.now() + ttlMs });
          return '1';
        }
        return mark.kind === 'string' && mark.value === who[i] ? '1' : '0';
      })
      .join('');
  }

  /** Every value, for checks. */
  keys(prefix = ''): string[] {
    return [...this.data.keys()].filter((k) => k.startsWith(prefix) && this.live(k));
  }

  /** An ioredis-shaped client for one process: its requests die with it, and fail while the server is down. */
  client(owner: Owner): Redis {
    const send = (command: string, args: (string | number)[]) =>
      new Promise<unknown>((resolve, reject) => {
        this.scheduler.at(owner, RTT, () => {
          if (!this.up) return reject(new Error('Connection is closed.'));
          try {
            resolve(this.run(command, args));
          } catch (err) {
            reject(err);
          }
        });
      });
    const pipeline = () => {
      const queued: [string, (string | number)[]][] = [];
      const p = {
        hset: (key: string, field: string, value: string) => (queued.push(['hset', [key, field, value]]), p),
        hget: (key: string, field: string) => (queued.push(['hget', [key, field]]), p),
        hkeys: (key: string) => (queued.push(['hkeys', [key]]), p),
        hdel: (key: string, ...fields: string[]) => (queued.push(['hdel', [key, ...fields]]), p),
        info: (section: string) => (queued.push(['info', [section]]), p),
        exec: () =>
          new Promise<[Error | null, unknown][]>((resolve, reject) => {
            // One round trip; the server runs the commands in order, none of another client's in between.
            this.scheduler.at(owner, RTT, () => {
              if (!this.up) return reject(new Error('Connection is closed.'));
              resolve(
                queued.map(([c, a]) => {
                  try {
                    return [null, this.run(c, a)];
                  } catch (err) {
                    return [err as Error, null];
                  }
                }),
              );
            });
          }),
      };
      return p;
    };
    const client = {
      defineCommand: () => undefined,
      sluiceDedupClaim: (...args: (string | number)[]) => send('sluiceDedupClaim', args),
      get: (key: string) => send('get', [key]),
      hget: (key: string, field: string) => send('hget', [key, field]),
      info: (section: string) => send('info', [section]),
      pipeline,
      on: () => client,
      disconnect: () => undefined,
    };
    return client as unknown as Redis;
  }
}
