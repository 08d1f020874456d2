#!/usr/bin/env bash
# The whole test suite, from a fresh clone: dependencies (Node.js 24 too where the machine's is
# older than 22.22), type check, lint, formatting, the local stack (started unless it runs), then
# the specs on each leg of the Node.js × Kafka client matrix. `npm test -- <jest args>` runs one
# jest with those args instead, on the first leg's Node.js and client.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
scripts/ensure-chdb.sh
system_node="$(command -v node)"
project_node="$(scripts/ensure-node.sh)"
node bin/sluice.js stack up
npx tsc --noEmit
# A breaking change to an Avro schema fails here, before any service is involved.
node bin/sluice.js schemas check
npx eslint --max-warnings=0 .
npx prettier --check --log-level=warn .

# Legs are <node>:<client>: node 'project' is what scripts/ensure-node.sh prints (Node.js 24, or the
# machine's when that is 22.22 or later), 'system' the machine's; client is kafka.client. The first
# leg runs every project; the others only those the client changes (unit, integration, faults): the
# simulation and the chdb specs use no Kafka client. SLUICE_TEST_MATRIX picks legs, e.g.
# SLUICE_TEST_MATRIX='project:kafkajs' runs everything on Node.js 24 with kafkajs alone.
matrix="${SLUICE_TEST_MATRIX:-project:platformatic system:kafkajs}"

runs_platformatic() {
  "$1" -e 'process.exit(require("./bin/node-handover").recentEnough(process.versions.node) ? 0 : 1)'
}

# One jest process on the leg's Node.js: `node` and `npx` on PATH are that one too, and the specs'
# `sluice` processes stay on it (jest.config.ts sets SLUICE_NODE=system).
# @platformatic/kafka is an ES module: jest's module sandbox loads one only with vm modules enabled.
jest_on() {
  local node="$1" client="$2" node_options="${NODE_OPTIONS:-}"
  shift 2
  [ "$client" = platformatic ] && node_options="$node_options --experimental-vm-modules"
  PATH="$(dirname "$node"):$PATH" SLUICE_KAFKA_CLIENT="$client" NODE_OPTIONS="$node_options" \
    "$node" node_modules/jest/bin/jest.js --runInBand "$@"
}

legs=()
for leg in $matrix; do
  case "$leg" in
    project:kafkajs | project:platformatic) node="$project_node" ;;
    system:kafkajs | system:platformatic) node="$system_node" ;;
    *)
      echo "SLUICE_TEST_MATRIX: '$leg' is not <project|system>:<kafkajs|platformatic>" >&2
      exit 2
      ;;
  esac
  client="${leg#*:}"
  if [ "$client" = platformatic ] && ! runs_platformatic "$node"; then
    # Only when SLUICE_NODE=system kept an older Node.js: ensure-node.sh installs one otherwise.
    echo "== skipped: kafka.client=platformatic needs Node.js 22.22 or later, and $node is $("$node" --version) ==" >&2
    continue
  fi
  legs+=("$node|$client")
done
[ "${#legs[@]}" -gt 0 ] || { echo "no leg of the test matrix can run" >&2; exit 1; }

if [ "$#" -gt 0 ]; then
  IFS="|" read -r node client <<<"${legs[0]}"
  echo "== node $("$node" --version), kafka.client=$client =="
  jest_on "$node" "$client" "$@"
  exit
fi

# Each group of projects in a jest process of its own. In one in-band process the heap earlier
# suites leave behind slows what follows under the collector's work: the simulation took 1043 s
# after the fault suite and 550–630 s after the unit specs, against about 100 s alone.
failed=()
summary=()
first=1
for leg in "${legs[@]}"; do
  IFS="|" read -r node client <<<"$leg"
  name="node $("$node" --version), kafka.client=$client"
  echo "== $name =="
  if [ "$first" = 1 ]; then
    groups=("unit clickhouse" "sim" "integration faults")
  else
    groups=("unit" "integration faults")
  fi
  first=0
  for projects in "${groups[@]}"; do
    started=$SECONDS
    # shellcheck disable=SC2086 # the project names are separate arguments
    if jest_on "$node" "$client" --selectProjects $projects; then status=ok; else status=FAILED; fi
    line="$name: $projects: $status in $((SECONDS - started)) s"
    echo "[test] $line"
    summary+=("$line")
    [ "$status" = ok ] || failed+=("$line")
  done
done
echo "== summary =="
printf '%s\n' "${summary[@]}"
[ "${#failed[@]}" -eq 0 ]
