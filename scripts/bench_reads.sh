#!/usr/bin/env bash
# Read throughput by consistency level, side by side in one run: for each round, a fresh local
# 3-node cluster (release kvserver, fsync on), a prefill of KEYS keys, then CLIENTS concurrent
# gets for DURATION seconds at each of readindex, lease and stale.
#   bash scripts/bench_reads.sh            # ROUNDS=3 CLIENTS=64 DURATION=10 KEYS=1000
# Builds kvserver and kvctl (release) unless SKIP_BUILD=1. Prints one kvctl bench summary per
# run; compare rows of one session (a shared machine drifts between sessions).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-64}
DURATION=${DURATION:-10}
KEYS=${KEYS:-1000}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN="$TARGET_DIR/release"
EPS="127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103"
PEERS="n1=127.0.0.1:7201,n2=127.0.0.1:7202,n3=127.0.0.1:7203"

if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release -p raftkv-native --bin kvserver --bin kvctl
fi

PIDS=()
DATA=""
stop() {
  if [ "${#PIDS[@]}" -gt 0 ]; then
    kill -TERM "${PIDS[@]}" 2>/dev/null || true
    wait "${PIDS[@]}" 2>/dev/null || true
  fi
  PIDS=()
  [ -n "$DATA" ] && rm -rf "$DATA"
  DATA=""
}
trap stop EXIT

for round in $(seq 1 "$ROUNDS"); do
  DATA=$(mktemp -d)
  for i in 1 2 3; do
    "$BIN/kvserver" --id "n$i" --addr "127.0.0.1:710$i" --peer-addr "127.0.0.1:720$i" --data-dir "$DATA/n$i" \
      --peers "$PEERS" >"$DATA/n$i.log" 2>&1 &
    PIDS+=($!)
  done
  # The prefill waits for a leader (kvctl retries until one answers).
  "$BIN/kvctl" --endpoints "$EPS" bench --concurrency 16 --count 3000 --mix put=1 \
    --keys "$KEYS" >/dev/null
  for c in readindex lease stale; do
    printf 'round %s %-9s ' "$round" "$c"
    "$BIN/kvctl" --endpoints "$EPS" bench --concurrency "$CLIENTS" --duration "$DURATION" \
      --mix get=1 --keys "$KEYS" --consistency "$c" 2>/dev/null | grep -E '^(ops|latency)' | tr '\n' ' '
    echo
  done
  stop
done
