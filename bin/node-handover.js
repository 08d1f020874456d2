// Re-runs the CLI on the project's Node.js (scripts/ensure-node.sh installs it) when this one is
// older than the project needs: `npx sluice` and `node bin/sluice.js` start on the machine's node.
// Plain CommonJS that loads on any Node.js the CLI may start on, before TypeScript can.
/* global module, setInterval, clearInterval */
const { spawn } = require('node:child_process');
const { existsSync } = require('node:fs');
const { join, resolve } = require('node:path');

/** Set in the child: a process started on the chosen Node.js never hands over again. */
const MARKER = 'SLUICE_NODE_HANDED_OVER';

/** Node.js 22.22 or later runs both Kafka clients (src/kafka/client.ts nodeRunsPlatformatic). */
function recentEnough(version) {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 22 || (major === 22 && minor >= 22);
}

/**
 * True when a process on Node.js `version` belongs on the project's Node.js instead: it is older
 * than 22.22, or SLUICE_NODE_VERSION asks for another major (or exact version). The one rule both
 * this hand-over and scripts/ensure-node.sh (whether to install) follow.
 */
function needsProjectNode(env, version) {
  const wanted = env.SLUICE_NODE_VERSION;
  const matches = !wanted || wanted === version || wanted === version.split('.')[0];
  return !(recentEnough(version) && matches);
}

/**
 * The node binary to re-run on, or undefined to stay on this one: stay when told to
 * (SLUICE_NODE=system), when already handed over, when this Node.js does, or when the project's
 * Node.js is not installed.
 */
function handOverTarget(env, version, installed = existsSync) {
  if (env.SLUICE_NODE === 'system' || env[MARKER] || !needsProjectNode(env, version)) return undefined;
  // Where scripts/ensure-node.sh installs it: the stack's directory, as `sluice stack` finds it.
  const dir = env.SLUICE_STACK_DIR ? resolve(env.SLUICE_STACK_DIR) : join(__dirname, '..', '.sluice');
  const node = join(dir, 'node', 'current', 'bin', 'node');
  return installed(node) ? node : undefined;
}

/**
 * Runs this process's command line on `node` and ends as it ends. The child gets a session of its
 * own, so a Ctrl-C reaches it once, forwarded from here: a second SIGINT would cut short the flush
 * the first one started (the CLI's signal handlers are `once`).
 */
function handOver(node) {
  const child = spawn(node, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    detached: true,
    env: { ...process.env, [MARKER]: node },
  });
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) process.on(signal, () => child.kill(signal));
  child.on('error', (err) => {
    console.error(`sluice: could not start ${node} (${err.message}); SLUICE_NODE=system runs on ${process.execPath}`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    if (signal === null) process.exit(code ?? 1);
    for (const s of signals) process.removeAllListeners(s);
    process.kill(process.pid, signal);
  });
}

/**
 * In the handed-over child: when the process that handed over is gone (SIGKILLed: it could forward
 * nothing), stop as a SIGTERM would, flushing and committing. In a session of its own the child misses
 * what kills the wrapper's process group, and would otherwise run on as a member nobody knows of.
 */
function stopWhenOrphaned(env = process.env, intervalMs = 1000) {
  if (!env[MARKER]) return;
  // Only this process was handed over. Processes it starts must not stop when it ends: the stack's
  // registry is started detached to outlive `sluice stack up`, and stopped within a second with the marker.
  delete env[MARKER];
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    process.kill(process.pid, 'SIGTERM');
  }, intervalMs);
  timer.unref();
}

module.exports = { MARKER, recentEnough, needsProjectNode, handOverTarget, handOver, stopWhenOrphaned };
