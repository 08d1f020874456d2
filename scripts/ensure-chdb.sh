#!/usr/bin/env bash
# Installs the npm package chdb (a current ClickHouse engine as a library, from the npm registry) into
# node_modules without recording it in package.json: the specs of the project's SQL on a current engine
# need it, deployments do not, and its lockfile entry cannot be complete here (npm ci requires the
# optional packages of every platform, and only Linux's are published to this machine's registry).
# Its addon is built on Node-API (no V8 or libnode symbols), so the one install loads on every Node.js
# the project runs on (20, 22, 24): nothing to rebuild when bin/sluice.js hands over to Node.js 24.
set -euo pipefail
cd "$(dirname "$0")/.."
CHDB_VERSION=3.4.0
if [ "$(node -p "try { require('chdb/package.json').version } catch { '' }")" != "$CHDB_VERSION" ]; then
  echo "[setup] npm install chdb@$CHDB_VERSION (not saved)" >&2
  npm install --no-save --no-audit --no-fund --loglevel=error "chdb@$CHDB_VERSION"
fi
