#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx: no build step between a
// clone and a working CLI. On a Node.js older than the project's, it first
// hands over to the project's own (bin/node-handover.js).
const { handOverTarget, handOver, stopWhenOrphaned } = require('./node-handover');
const node = handOverTarget(process.env, process.versions.node);
if (node) {
  handOver(node);
} else {
  stopWhenOrphaned();
  require('tsx/cjs');
  require('../src/cli/run.ts');
}
