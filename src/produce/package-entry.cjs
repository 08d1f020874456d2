// The package's `sluice/produce` entry (package.json `exports`): Sluice runs
// its TypeScript sources through tsx, with no build step, so a service that
// requires the SDK from plain JavaScript gets the same sources, compiled on load.
/* global require, module */
/* eslint-disable @typescript-eslint/no-require-imports -- CommonJS by design: it loads before any TypeScript can */
require('tsx/cjs');
module.exports = require('./index.ts');
