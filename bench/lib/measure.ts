/**
 * Measuring child processes: each measured program runs under GNU
 * `/usr/bin/time -v`, which reports its peak RSS and CPU time after it exits
 * (children included), so every program is measured the same way whatever
 * its language. CPU of the shared services (Kafka, Redis, ClickHouse) is
 * read from /proc before and after, because part of a job's work happens
 * there (Redis round trips, ClickHouse inserts).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';

export interface ChildResult {
  code: number | null;
  /** Wall seconds from spawn to exit. */
  seconds: number;
  peakRssMb: number;
  cpuSeconds: number;
  stdout: string;
  stderr: string;
}

export interface RunChildOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Kill the child (SIGTERM, then SIGKILL) after this long. */
  timeoutMs: number;
  /** Standard output goes to /dev/null instead of being kept (kcat's records). */
  discardStdout?: boolean;
  /** Called with the measured program's pid once it is known (for RSS sampling). */
  onPid?: (pid: number) => void;
}

const TIME_FILE_PREFIX = '/tmp/sluice-bench-time-';

export async function runMeasured(command: string, args: string[], options: RunChildOptions): Promise<ChildResult> {
  const timeFile = `${TIME_FILE_PREFIX}${process.pid}-${Date.now()}.txt`;
  const started = process.hrtime.bigint();
  const child = spawn('/usr/bin/time', ['-v', '-o', timeFile, command, ...args], {
    // A `sluice` measured here runs on this Node.js, not a child it hands over to (bin/node-handover.js).
    env: { SLUICE_NODE: 'system', ...(options.env ?? process.env) },
    cwd: options.cwd,
    stdio: ['ignore', options.discardStdout ? 'ignore' : 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  // Keep only the tail of stderr: a failing job's last lines say why.
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
  if (options.onPid) {
    const poll = setInterval(() => {
      const pid = childPidOf(child.pid);
      if (pid !== undefined) {
        clearInterval(poll);
        options.onPid!(pid);
      }
    }, 50);
    child.once('exit', () => clearInterval(poll));
  }
  const killer = setTimeout(() => {
    child.kill('SIGTERM');
    const pid = childPidOf(child.pid);
    if (pid) process.kill(pid, 'SIGTERM');
    setTimeout(() => {
      const p = childPidOf(child.pid);
      if (p) process.kill(p, 'SIGKILL');
    }, 10_000).unref();
  }, options.timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(killer);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const report = existsSync(timeFile) ? readFileSync(timeFile, 'utf8') : '';
  rmSync(timeFile, { force: true });
  const field = (name: string) => Number(new RegExp(`${name}: ([0-9.]+)`).exec(report)?.[1] ?? NaN);
  return {
    code,
    seconds,
    peakRssMb: Math.round(field('Maximum resident set size \\(kbytes\\)') / 1024),
    cpuSeconds: round(field('User time \\(seconds\\)') + field('System time \\(seconds\\)'), 2),
    stdout,
    stderr,
  };
}

/** The pid of the program `/usr/bin/time` started (its only child). */
function childPidOf(timePid: number | undefined): number | undefined {
  if (!timePid) return undefined;
  try {
    const children = readFileSync(`/proc/${timePid}/task/${timePid}/children`, 'utf8').trim();
    return children ? Number(children.split(/\s+/)[0]) : undefined;
  } catch {
    return undefined;
  }
}

/** Resident memory of a live process in MB (undefined once it has exited). */
export function rssMb(pid: number): number | undefined {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Math.round(Number(kb) / 1024) : undefined;
  } catch {
    return undefined;
  }
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** utime + stime of a process (and its waited-for children) in seconds. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime, stime, cutime, cstime are 14-17 (1-based).
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12]) + Number(rest[13]) + Number(rest[14])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/** CPU seconds each shared service used between `start()` and the returned function's call. */
export function serviceCpu(pids: Record<string, number>): () => Record<string, number> {
  const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, processCpuSeconds(pid)]));
  return () =>
    Object.fromEntries(
      Object.entries(pids).map(([name, pid]) => [name, round(processCpuSeconds(pid) - before[name]!, 2)]),
    );
}

export const round = (n: number, digits = 3) => Number(n.toFixed(digits));
