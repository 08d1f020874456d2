#!/usr/bin/env bash
# The project's ClickHouse SQL checks (test/clickhouse/) on every engine
# version users run, without a server of each: the chdb releases on PyPI
# embed them (3.0.1: 24.8, 3.7.2: 25.8, 4.4.0: 26.9), each installed into a
# venv of its own under .sluice/chdb-py/, and the specs reach it through
# `chdb:///dir?python=...` (src/sink/clickhouse/chdb.ts starts
# chdb_bridge.py in that interpreter). The npm package's engine (26.7, what
# `npm test` uses) runs last, in process. Prints one line per engine; exits
# non-zero if any failed.
#   --stream   also the reference stream end to end on each engine
#              (test/integration/event-counts-clickhouse-current.test.ts; it
#              brings the local stack up for Kafka, Redis and the registry)
# Other arguments go to jest (e.g. -t migrations).
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
scripts/ensure-chdb.sh

# chdb package version on PyPI -> the ClickHouse release it embeds.
MATRIX=("3.0.1 24.8" "3.7.2 25.8" "4.4.0 26.9")

PYTHON=$(command -v python3.11 || command -v python3 || true)
if [ -z "$PYTHON" ]; then
  echo "clickhouse-matrix: needs python3 (3.8+) with venv and pip" >&2
  exit 1
fi

mkdir -p .sluice/chdb-py .sluice/logs
results=()
failed=0
run() { # label, log name, env...
  local label=$1 log=.sluice/logs/clickhouse-matrix-$2.log
  shift 2
  env "$@" npx jest --ci "${SELECT[@]}" "${JEST_ARGS[@]}" >"$log" 2>&1
  local rc=$?
  local engine summary
  engine=$(grep -o 'ClickHouse [0-9][0-9.]* (chdb:' "$log" | head -1 | sed 's/ (chdb://')
  summary=$(grep -E '^Tests:' "$log" | tail -1 | sed 's/^Tests: *//')
  results+=("$(printf '%-22s %-20s %-40s %s' "$label" "${engine:-?}" "${summary:-no result}" "$log")")
  [ $rc -eq 0 ] || failed=1
}
SELECT=(--selectProjects clickhouse)
WHAT='test/clickhouse specs'
if [ "${1:-}" = --stream ]; then
  shift
  SELECT=(--runInBand --selectProjects clickhouse integration --testPathPatterns 'test/clickhouse/|event-counts-clickhouse-current')
  WHAT='test/clickhouse + the stream end to end'
fi
JEST_ARGS=("$@")

for entry in "${MATRIX[@]}"; do
  read -r pkg expected <<<"$entry"
  venv=.sluice/chdb-py/$pkg
  if ! "$venv/bin/python" -c "import chdb, sys; sys.exit(chdb.__version__ != '$pkg')" 2>/dev/null; then
    echo "[matrix] installing chdb==$pkg (ClickHouse $expected) into $venv" >&2
    "$PYTHON" -m venv "$venv" && "$venv/bin/pip" install --quiet --disable-pip-version-check "chdb==$pkg" || {
      results+=("$(printf '%-22s %-20s %s' "pypi chdb $pkg" "ClickHouse $expected" 'install failed')")
      failed=1
      continue
    }
  fi
  echo "[matrix] ClickHouse $expected (PyPI chdb $pkg)" >&2
  run "pypi chdb $pkg" "$expected" SLUICE_CHDB_PYTHON="$venv/bin/python"
done
echo "[matrix] ClickHouse 26.x (npm chdb, in process)" >&2
run "npm chdb $(node -p "require('chdb/package.json').version")" npm SLUICE_CHDB_PYTHON=

echo
printf '%-22s %-20s %-40s %s\n' 'engine from' 'version' "$WHAT" 'log'
printf '%s\n' "${results[@]}"
exit $failed
