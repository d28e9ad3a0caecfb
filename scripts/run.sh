#!/usr/bin/env bash
# The main job: the browser playground (the real Raft core compiled to wasm) and, beside it, a
# local 3-node kvserver cluster. Ctrl-C stops both.
#   PLAYGROUND_ADDR (default 127.0.0.1:8080) moves the page; scripts/cluster.sh says where the
#   cluster keeps its data and which ports it uses.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "[run] building the playground's wasm package into www/pkg"
bash scripts/wasm.sh pkg
echo "[run] building kvserver, kvctl and playground (release)"
cargo build --release -p raftkv-native --bins

cleanup() {
  trap - EXIT INT TERM
  [ -n "${CLUSTER_PID:-}" ] && kill -TERM "$CLUSTER_PID" 2>/dev/null && wait "$CLUSTER_PID" 2>/dev/null
  exit 0
}
trap cleanup EXIT INT TERM

SKIP_BUILD=1 bash scripts/cluster.sh &
CLUSTER_PID=$!

addr=${PLAYGROUND_ADDR:-127.0.0.1:8080}
echo "[run] playground: http://$addr/"
"${CARGO_TARGET_DIR:-target}/release/playground" --addr "$addr" --dir www
