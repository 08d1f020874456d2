#!/usr/bin/env bash
# The whole test suite, from a fresh clone: dependencies, type check, lint,
# the local stack (started unless it runs), then unit and integration specs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
node bin/sluice.js stack up
npx tsc --noEmit
npx eslint --max-warnings=0 .
npx jest --runInBand "$@"
