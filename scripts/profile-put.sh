#!/usr/bin/env bash
# Counts the instructions a single kvserver node spends per PUT under a 16-client load, with
# valgrind's callgrind (instruction counts repeat run to run, whatever else the machine does),
# and prints the top functions by their own cost and by inclusive cost.
#   bash scripts/profile-put.sh [KVSERVER_BINARY]   (default: a release build with line tables)
# Needs valgrind (Debian: apt-get install valgrind). docs/performance.md has the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-4000}
PORT=${PORT:-7391}
if [ $# -ge 1 ]; then
  SERVER=$1
else
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/profile} CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
  cargo build -q --release -p raftkv-native --bin kvserver --bin kvctl
  SERVER=$CARGO_TARGET_DIR/release/kvserver
fi
KVCTL=${KVCTL:-$(dirname "$SERVER")/kvctl}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
  "$SERVER" --id n1 --addr "127.0.0.1:$PORT" --data-dir "$work/data" >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do curl -sf "127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
# Warm up (sessions, pages), then count only the measured run.
"$KVCTL" --endpoints "127.0.0.1:$PORT" bench --mix put=100 --concurrency 16 --count 500 >/dev/null
callgrind_control -z "$pid" >/dev/null
"$KVCTL" --endpoints "127.0.0.1:$PORT" bench --mix put=100 --concurrency 16 --count "$COUNT" | grep '^ops'
callgrind_control -d "$pid" >/dev/null
kill -TERM "$pid"; wait "$pid" || true
out=${OUT:-callgrind.put.out}
mv "$(ls "$work"/cg.out.* | head -1)" "$out"
echo "profile: $out (callgrind_annotate --tree=caller $out shows who calls what)"
total=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "instructions: $total in all, $((total / COUNT)) per put"
echo "--- top by own cost"
callgrind_annotate --threshold=100 "$out" 2>/dev/null | sed -n '/file:function/,$p' | sed -n '3,400p' \
  | grep -v 'clone.S\|start_thread\|thread_start\|lifecycle.rs\|tokio-1\|backtrace' | head -15 | cut -c1-160 || true
echo "--- top by inclusive cost (our code)"
callgrind_annotate --inclusive=yes --threshold=100 "$out" 2>/dev/null | sed -n '/file:function/,$p' \
  | grep 'raftkv' | head -15 | cut -c1-160 || true
