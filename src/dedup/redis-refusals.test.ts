import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { ServiceError } from '../errors';
import { connectRedisDedupStore } from './redis';

/**
 * Which Redis replies stop a stream and which only pause it, at start-up and at a claim.
 *
 * A fake Redis speaking RESP on a local port, so that a server answering with any error text can be
 * played without touching the shared Redis: INFO says it is ready, EVALSHA answers NOSCRIPT (as after a
 * restart or SCRIPT FLUSH, so ioredis falls back to EVAL), and EVAL answers `evalReply` (an error line
 * starting with '-', or the claim's answer). Anything else (AUTH, CLIENT SETINFO, SELECT) is +OK.
 */
class FakeRedis {
  evalReply = '$1\r\n1\r\n';
  readonly auths: string[][] = [];
  private server?: Server;
  private readonly sockets = new Set<Socket>();

  async start(): Promise<number> {
    this.server = createServer((socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      let buffer = Buffer.alloc(0);
      socket.on('data', (chunk) => {
        buffer = Buffer.concat([buffer, chunk]);
        for (;;) {
          const parsed = parseCommand(buffer);
          if (!parsed) break;
          buffer = buffer.subarray(parsed.used);
          socket.write(this.answer(parsed.args));
        }
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return (this.server!.address() as AddressInfo).port;
  }

  private answer(args: string[]): string {
    const command = (args[0] ?? '').toUpperCase();
    if (command === 'INFO') {
      const info = '# Server\r\nredis_version:7.2.4\r\nloading:0\r\n';
      return `$${Buffer.byteLength(info)}\r\n${info}\r\n`;
    }
    if (command === 'AUTH') this.auths.push(args.slice(1));
    if (command === 'EVALSHA') return '-NOSCRIPT No matching script. Please use EVAL.\r\n';
    if (command === 'EVAL') {
      if (this.evalReply.startsWith('-')) return this.evalReply;
      // The claim's answer: one '1' per id.
      const ids = JSON.parse(args[5] ?? '[]') as unknown[];
      const answer = '1'.repeat(ids.length);
      return `$${answer.length}\r\n${answer}\r\n`;
    }
    return '+OK\r\n';
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** One RESP array of bulk strings from the front of `buffer`, or undefined when it is not all there yet. */
function parseCommand(buffer: Buffer): { args: string[]; used: number } | undefined {
  let at = 0;
  const line = (): string | undefined => {
    const end = buffer.indexOf('\r\n', at);
    if (end < 0) return undefined;
    const text = buffer.subarray(at, end).toString();
    at = end + 2;
    return text;
  };
  const head = line();
  if (head === undefined) return undefined;
  if (!head.startsWith('*')) return { args: head.split(' '), used: at }; // inline command
  const count = Number(head.slice(1));
  const args: string[] = [];
  for (let i = 0; i < count; i++) {
    const size = line();
    if (size === undefined) return undefined;
    const length = Number(size.slice(1));
    if (buffer.length < at + length + 2) return undefined;
    args.push(buffer.subarray(at, at + length).toString());
    at += length + 2;
  }
  return { args, used: at };
}

const error = (text: string) => `-${text}\r\n`;

/**
 * Replies of a Redis that answers but cannot take writes for a while: out of memory (noeviction), a
 * replica during a failover, a failed RDB save, too few replicas, another client's long script, a
 * replica whose link to its primary is down. Redis 7 passes the command's own error up from a script;
 * Redis 6 wraps it in "ERR Error running script".
 */
const TRANSIENT = [
  "OOM command not allowed when used memory > 'maxmemory'.",
  "READONLY You can't write against a read only replica. script: 1f7a, on @user_script:9.",
  "ERR Error running script (call to f_1f7a): @user_script:9: @user_script: 9: -READONLY You can't write against a read only replica.",
  "ERR Error running script (call to f_1f7a): @user_script:9: -OOM command not allowed when used memory > 'maxmemory'.",
  'MISCONF Redis is configured to save RDB snapshots, but it is currently not able to persist on disk.',
  'NOREPLICAS Not enough good replicas to write.',
  'BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.',
  "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
];

describe('the dedup store against Redis error replies', () => {
  let fake: FakeRedis;
  let port: number;

  beforeEach(async () => {
    fake = new FakeRedis();
    port = await fake.start();
  });
  afterEach(async () => {
    await fake.stop();
  });

  const config = (url = `redis://127.0.0.1:${port}`) => ({ redis: { url, keyPrefix: 'refusals:' } });

  /**
   * A Redis that is up but refuses writes for a while (out of memory, read-only during a failover, ...)
   * is an outage: `sluice run` starts, and the stream pauses at its first claim until Redis takes writes
   * again (README: "An outage ... only pauses it"). The start-up check runs the claim, and must not turn
   * such a reply into an exit.
   */
  test.each(TRANSIENT)(
    'a Redis that is up but refuses writes for a while (%s) does not stop the start',
    async (reply) => {
      fake.evalReply = error(reply);
      const started = connectRedisDedupStore(config(), {
        namespace: 'refusals',
        failOpen: false,
        commandTimeoutMs: 2000,
      });
      const outcome = await started.then(
        (s) => {
          s.close();
          return 'started';
        },
        (err: unknown) => (err as Error).message,
      );
      expect(outcome).toBe('started');
    },
  );

  /** If start-up is to fail on such a reply, it must not say Redis is unreachable and to start the local stack. */
  test('an out-of-memory Redis at start-up is not reported as unreachable', async () => {
    fake.evalReply = error("OOM command not allowed when used memory > 'maxmemory'.");
    const err = await connectRedisDedupStore(config(), { namespace: 'refusals', failOpen: false }).then(
      (s) => {
        s.close();
        return undefined;
      },
      (e: unknown) => e as Error,
    );
    if (err === undefined) return; // started: nothing to judge
    expect(err.message).not.toMatch(/unreachable|sluice stack up/);
  });

  /**
   * Whether the claim, once running, rejects retriably when the server answers `reply`: the transient
   * replies must (the partition pauses and resumes), the refusals for good must not (the stream stops).
   */
  async function claimRetriable(reply: string): Promise<boolean> {
    const { store, close } = await connectRedisDedupStore(config(), { namespace: 'refusals', failOpen: false });
    try {
      fake.evalReply = error(reply);
      const err = await store.claim([{ id: 'x', topic: 't', partition: 0, offset: '1' }]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ServiceError);
      return (err as ServiceError).retriable;
    } finally {
      close();
    }
  }

  test.each(TRANSIENT)('a claim answered %s is retriable', async (reply) => {
    expect(await claimRetriable(reply)).toBe(true);
  });

  test.each([
    "NOPERM User sluice has no permissions to run the 'set' command",
    'NOPERM No permissions to access a key',
    "ERR Error running script (call to f_1f7a): @user_script:9: @user_script: 9: The user executing the script can't run this command or subcommand",
    "ERR Error running script (call to f_1f7a): @user_script:9: @user_script: 9: The user executing the script can't access at least one of the keys mentioned in the command",
    "ERR unknown command 'EVAL', with args beginning with: ",
    'ERR Script attempted to access a non local key in a cluster node script: 1f7a, on @user_script:9.',
  ])('a claim answered %s is refused for good', async (reply) => {
    expect(await claimRetriable(reply)).toBe(false);
  });

  /**
   * ioredis takes the password from the URL's query too (redis://host:port/0?password=...), which the
   * Redis it talks to then receives in AUTH; the refusal's message shows the URL with only its userinfo
   * password redacted, so the secret goes to the logs and the terminal.
   */
  test('the refusal message does not show a password given in the URL query', async () => {
    fake.evalReply = error("NOPERM User sluice has no permissions to run the 'evalsha' command");
    const url = `redis://127.0.0.1:${port}/0?password=hunter2-secret`;
    const err = await connectRedisDedupStore(config(url), { namespace: 'refusals', failOpen: false }).then(
      (s) => {
        s.close();
        return undefined;
      },
      (e: unknown) => e as Error,
    );
    expect(fake.auths.flat()).toContain('hunter2-secret'); // ioredis did use it as the password
    expect(err).toBeInstanceOf(ServiceError);
    expect(err!.message).not.toContain('hunter2-secret');
  });
});
