#!/usr/bin/env bash
# The main job: the browser playground (the real Raft core compiled to wasm) and, beside it, a
# local 3-node kvserver cluster. Ctrl-C stops both.
#   bash scripts/run.sh          the cluster of scripts/cluster.sh (data/cluster), run on its own
#   bash scripts/run.sh --live   the playground starts and owns the 3 nodes itself
#                                (playground --dev-cluster, data under data/live), and the page's
#                                Live mode can watch them, send them requests, kill, restart, cut
#                                and heal them (docs/playground.md, "Live mode"). Dev only.
#   PLAYGROUND_ADDR (default 127.0.0.1:8080) moves the page; scripts/cluster.sh says where the
#   cluster keeps its data and which ports it uses (--live: the same client and peer ports, and
#   the links' proxies on 7022-7028).
set -euo pipefail
cd "$(dirname "$0")/.."

LIVE=""
case "${1:-}" in
  "") ;;
  --live) LIVE=1 ;;
  *) echo "usage: bash scripts/run.sh [--live]" >&2; exit 2 ;;
esac

bash scripts/setup.sh

echo "[run] building the playground's wasm package into www/pkg"
bash scripts/wasm.sh pkg
echo "[run] building kvserver, kvctl and playground (release)"
cargo build --release -p raftkv-native --bins

BIN="${CARGO_TARGET_DIR:-target}/release"
addr=${PLAYGROUND_ADDR:-127.0.0.1:8080}

if [ -n "$LIVE" ]; then
  echo "[run] playground with its own dev cluster: http://$addr/  (switch the page to Live)"
  echo "[run] kvctl: $BIN/kvctl --endpoints 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003 status"
  exec "$BIN/playground" --addr "$addr" --dir www --dev-cluster --kvserver "$BIN/kvserver" \
    --data-dir "${DATA_DIR:-data/live}"
fi

cleanup() {
  trap - EXIT INT TERM
  [ -n "${CLUSTER_PID:-}" ] && kill -TERM "$CLUSTER_PID" 2>/dev/null && wait "$CLUSTER_PID" 2>/dev/null
  exit 0
}
trap cleanup EXIT INT TERM

SKIP_BUILD=1 bash scripts/cluster.sh &
CLUSTER_PID=$!

echo "[run] playground: http://$addr/"
"$BIN/playground" --addr "$addr" --dir www
