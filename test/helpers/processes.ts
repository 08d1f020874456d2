import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { sleep } from '../../src/clock';

/** A `sluice` child process (a real processor), with its output kept for failure messages. */
export interface Child {
  process: ChildProcess;
  output: string[];
  exited: Promise<number | null>;
}

export function spawnSluice(args: string[], env: NodeJS.ProcessEnv): Child {
  const child = spawn(process.execPath, [join(__dirname, '..', '..', 'bin', 'sluice.js'), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  child.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { process: child, output, exited };
}

/** Polls `check` until true or the deadline; the message names what was awaited. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}
