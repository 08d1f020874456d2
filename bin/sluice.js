#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx: no build step between a
// clone and a working CLI.
require('tsx/cjs');
require('../src/cli/run.ts');
