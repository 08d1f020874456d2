import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { StackError } from '../errors';
import { sleep } from '../clock';

/**
 * Background processes of the local stack: started detached with their output
 * in a log file and their pid in a pid file, so a later `sluice stack down`
 * (from another process) can find and stop them.
 */
export interface ServicePaths {
  pidFile: string;
  logFile: string;
}

export function servicePaths(stackDir: string, name: string): ServicePaths {
  mkdirSync(join(stackDir, 'run'), { recursive: true });
  mkdirSync(join(stackDir, 'logs'), { recursive: true });
  return { pidFile: join(stackDir, 'run', `${name}.pid`), logFile: join(stackDir, 'logs', `${name}.log`) };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid recorded for a service, if that process is still running. */
export function runningPid(paths: ServicePaths): number | undefined {
  if (!existsSync(paths.pidFile)) return undefined;
  const pid = Number(readFileSync(paths.pidFile, 'utf8').trim());
  if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) return pid;
  rmSync(paths.pidFile, { force: true });
  return undefined;
}

export function startDetached(
  paths: ServicePaths,
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): number {
  const out = openSync(paths.logFile, 'a');
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    detached: true,
    stdio: ['ignore', out, out],
  });
  if (child.pid === undefined) throw new StackError(`could not start ${command}: spawn failed`);
  child.unref();
  writeFileSync(paths.pidFile, String(child.pid));
  return child.pid;
}

/** SIGTERM, then SIGKILL after a grace period; resolves once the process is gone. */
export async function stopProcess(paths: ServicePaths, graceMs = 20_000): Promise<boolean> {
  const pid = runningPid(paths);
  if (pid === undefined) return false;
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig); // the whole process group: wrappers take their children along
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        /* already gone */
      }
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(200);
  if (isAlive(pid)) signal('SIGKILL');
  while (isAlive(pid)) await sleep(100);
  rmSync(paths.pidFile, { force: true });
  return true;
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function portInUse(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Polls `check` until it returns true. Fails early if the process died, and
 * quotes the end of its log so the reason is on screen.
 */
export async function waitHealthy(
  name: string,
  paths: ServicePaths,
  pid: number,
  check: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    if (!isAlive(pid)) {
      rmSync(paths.pidFile, { force: true });
      throw new StackError(`${name} exited during start-up: ${lastLogLine(paths.logFile)} (log: ${paths.logFile})`);
    }
    await sleep(300);
  }
  throw new StackError(`${name} did not become healthy within ${timeoutMs / 1000}s (log: ${paths.logFile})`);
}

export function lastLogLine(logFile: string): string {
  if (!existsSync(logFile)) return 'no output';
  const lines = readFileSync(logFile, 'utf8').trim().split('\n').filter(Boolean);
  const interesting = lines.filter((l) => /error|exception|fail|fatal|cannot|denied|in use/i.test(l));
  return (interesting.at(-1) ?? lines.at(-1) ?? 'no output').slice(0, 300);
}

/** Refuses to start a service on a port that something else already holds. */
export async function assertPortFree(name: string, port: number, setting: string): Promise<void> {
  if (await portInUse(port)) {
    throw new StackError(
      `port ${port} for ${name} is already in use by another process: stop it or choose another port with ${setting}`,
    );
  }
}
