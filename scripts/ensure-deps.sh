#!/usr/bin/env bash
# Installs the npm dependencies when node_modules is missing or older than the
# lockfile, and the project's Node.js when the machine's is too old for it
# (scripts/ensure-node.sh), so the README's commands work on a fresh clone.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[setup] npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
scripts/ensure-node.sh >/dev/null
