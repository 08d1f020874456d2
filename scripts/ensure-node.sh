#!/usr/bin/env bash
# Prints the Node.js binary the project runs on, installing it first when needed.
#
# The project runs on Node.js 24 LTS and 22 from 22.22 (@platformatic/kafka needs 22.22). When the
# machine's node is older, Node.js 24 is installed from the npm registry (the package node-<os>-<cpu>,
# which is the official binary) into .sluice/node/<version>, or $SLUICE_STACK_DIR/node when that is
# set, and .sluice/node/current points at it: bin/sluice.js hands over to that binary. The npm
# registry is the one source: `npm pack` checks the tarball against the registry's sha512 integrity
# before writing it, so no checksum of our own is needed.
#
#   SLUICE_NODE_VERSION=22|24|<x.y.z>  install that one even when the machine's node would do
#   SLUICE_NODE=system                 install nothing; print the machine's node
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

# The one place the versions are pinned; a major asked for by SLUICE_NODE_VERSION maps to these.
NODE_24=24.22.3
NODE_22=22.23.5

system_node="$(command -v node || true)"
wanted="${SLUICE_NODE_VERSION:-}"

# A relative SLUICE_STACK_DIR is relative to the caller's directory, as it is for `sluice stack`.
dir="${SLUICE_STACK_DIR:-$root/.sluice}"
case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac
dir="$dir/node"

if [ "${SLUICE_NODE:-}" = system ]; then
  [ -n "$system_node" ] || { echo "[setup] no node on PATH" >&2; exit 1; }
  echo "$system_node"
  exit 0
fi

# The machine's node does unless it is older than 22.22 or not what SLUICE_NODE_VERSION asks for:
# the rule bin/sluice.js hands over by (bin/node-handover.js).
if [ -n "$system_node" ] && "$system_node" -e '
    const { needsProjectNode } = require(process.argv[1]);
    process.exit(needsProjectNode(process.env, process.versions.node) ? 1 : 0)' "$root/bin/node-handover.js"; then
  echo "$system_node"
  exit 0
fi
wanted="${wanted:-24}"
case "$wanted" in
  24) version=$NODE_24 ;;
  22) version=$NODE_22 ;;
  *.*.*) version=$wanted ;;
  *)
    echo "[setup] SLUICE_NODE_VERSION=$wanted: expected 22, 24 or an exact version like $NODE_24" >&2
    exit 1
    ;;
esac

node="$dir/$version/bin/node"
if [ ! -x "$node" ]; then
  case "$(uname -s)" in Linux) os=linux ;; Darwin) os=darwin ;; *) os="$(uname -s)" ;; esac
  case "$(uname -m)" in x86_64 | amd64) cpu=x64 ;; aarch64 | arm64) cpu=arm64 ;; *) cpu="$(uname -m)" ;; esac
  echo "[setup] Node.js $version from the npm registry (node-$os-$cpu) into $dir/$version" >&2
  mkdir -p "$dir"
  tmp="$(mktemp -d "$dir/.install.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-$os-$cpu@$version" >/dev/null)
  tar -xzf "$tmp"/node-*.tgz -C "$tmp"
  "$tmp/package/bin/node" --version >/dev/null
  # Renamed into place whole, so a run that stops half-way leaves nothing that looks installed.
  rm -rf "${dir:?}/$version"
  mv "$tmp/package" "$dir/$version"
fi
if [ "$(readlink "$dir/current" 2>/dev/null)" != "$version" ]; then
  ln -sfn "$version" "$dir/current"
fi
echo "$node"
