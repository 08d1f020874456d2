import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const BIN = resolve(__dirname, '..', '..', 'bin', 'node-handover.js');
const { handOverTarget, MARKER } = require(BIN) as {
  handOverTarget: (
    env: NodeJS.ProcessEnv,
    version: string,
    installed?: (path: string) => boolean,
  ) => string | undefined;
  MARKER: string;
};

const PROJECT_NODE = resolve(__dirname, '..', '..', '.sluice', 'node', 'current', 'bin', 'node');
const installed = () => true;

describe('handOverTarget', () => {
  it("hands an old Node.js over to the project's Node.js when it is installed", () => {
    expect(handOverTarget({}, '20.20.2', installed)).toBe(PROJECT_NODE);
    expect(handOverTarget({}, '22.21.0', installed)).toBe(PROJECT_NODE);
    expect(handOverTarget({}, '20.20.2', () => false)).toBeUndefined();
  });

  it('stays on a Node.js that runs both Kafka clients', () => {
    expect(handOverTarget({}, '22.22.0', installed)).toBeUndefined();
    expect(handOverTarget({}, '24.22.3', installed)).toBeUndefined();
  });

  it('stays when told to, and never hands over twice', () => {
    expect(handOverTarget({ SLUICE_NODE: 'system' }, '20.20.2', installed)).toBeUndefined();
    expect(handOverTarget({ [MARKER]: PROJECT_NODE }, '20.20.2', installed)).toBeUndefined();
  });

  it('hands over when SLUICE_NODE_VERSION asks for another major or version', () => {
    expect(handOverTarget({ SLUICE_NODE_VERSION: '22' }, '24.22.3', installed)).toBe(PROJECT_NODE);
    expect(handOverTarget({ SLUICE_NODE_VERSION: '24' }, '24.1.0', installed)).toBeUndefined();
    expect(handOverTarget({ SLUICE_NODE_VERSION: '24.22.3' }, '24.22.3', installed)).toBeUndefined();
  });

  it('finds the Node.js under SLUICE_STACK_DIR when that is set', () => {
    expect(handOverTarget({ SLUICE_STACK_DIR: '/srv/stack' }, '20.20.2', installed)).toBe(
      '/srv/stack/node/current/bin/node',
    );
  });
});

describe('handOver', () => {
  // A script that hands over to this same Node.js; the child counts the SIGINTs it gets.
  const script = join(mkdtempSync(join(tmpdir(), 'sluice-handover-')), 'cli.js');
  writeFileSync(
    script,
    `const { handOver, MARKER, stopWhenOrphaned } = require(${JSON.stringify(BIN)});
if (!process.env[MARKER]) return handOver(process.execPath);
stopWhenOrphaned(process.env, 100);
console.log('child=' + process.pid + ' marker=' + (process.env[MARKER] ? 'inherited' : 'cleared'));
if (process.argv[2] === 'wait') process.on('SIGTERM', () => { require('fs').writeFileSync(process.argv[3], 'stopped'); process.exit(0); });
let sigints = 0;
process.on('SIGINT', () => { sigints++; setTimeout(() => { console.log('sigints=' + sigints); process.exit(7); }, 300); });
if (process.argv[2] === 'term') process.kill(process.pid, 'SIGTERM');
console.log('ready');
setInterval(() => undefined, 1000);
`,
  );

  function run(args: string[]) {
    // In a process group of its own, as a terminal's foreground job is.
    const child = spawn(process.execPath, [script, ...args], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
      child.on('exit', (code, signal) => done({ code, signal })),
    );
    return { child, exited, output: () => output };
  }

  it("delivers a Ctrl-C to the child once and exits with the child's code", async () => {
    const { child, exited, output } = run([]);
    while (!output().includes('ready')) await new Promise((r) => setTimeout(r, 20));
    process.kill(-child.pid!, 'SIGINT');
    expect(await exited).toEqual({ code: 7, signal: null });
    expect(output()).toContain('sigints=1');
  });

  it('does not pass the hand-over on: what the child starts (the stack starts its registry detached) outlives it', async () => {
    const { exited, output } = run(['term']);
    await exited;
    expect(output()).toContain('marker=cleared');
  });

  it('ends by the signal that ended the child', async () => {
    const { exited } = run(['term']);
    expect(await exited).toEqual({ code: null, signal: 'SIGTERM' });
  });

  it('stops the child as a SIGTERM would when the process that handed over is SIGKILLed', async () => {
    const marker = join(mkdtempSync(join(tmpdir(), 'sluice-orphan-')), 'stopped');
    const { child, exited, output } = run(['wait', marker]);
    while (!output().includes('ready')) await new Promise((r) => setTimeout(r, 20));
    const childPid = Number(/child=(\d+)/.exec(output())![1]);
    child.kill('SIGKILL');
    await exited;
    const deadline = Date.now() + 5000;
    while (!existsSync(marker) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(readFileSync(marker, 'utf8')).toBe('stopped');
    const alive = () => {
      try {
        process.kill(childPid, 0);
        return true;
      } catch {
        return false;
      }
    };
    while (alive() && Date.now() < deadline + 2000) await new Promise((r) => setTimeout(r, 50));
    expect(alive()).toBe(false);
  });
});
