#!/usr/bin/env bash
# Compares two builds of kvserver/kvctl side by side in one session: for each client count it
# starts a fresh local 3-node cluster of build A, runs `kvctl bench` against it, stops it, then
# does the same with build B, and repeats the pair ROUNDS times, so both builds see the same
# (noisy, shared) machine minute by minute. Prints one line per run and a summary of medians.
#   bash scripts/bench_pair.sh OLD_BIN_DIR NEW_BIN_DIR
# where each BIN_DIR holds release `kvserver` and `kvctl` (e.g. target/release).
#   CLIENTS="1 16 64"  DURATION=10  ROUNDS=2  PORT_BASE=7101
# ARGS_A / ARGS_B: extra kvserver flags for each side, e.g. to compare the engines of one build:
#   ARGS_A="--engine memory" ARGS_B="--engine disk" bash scripts/bench_pair.sh target/release target/release
set -euo pipefail
cd "$(dirname "$0")/.."

A=${1:?usage: bench_pair.sh OLD_BIN_DIR NEW_BIN_DIR}
B=${2:?usage: bench_pair.sh OLD_BIN_DIR NEW_BIN_DIR}
CLIENTS=${CLIENTS:-"1 16 64"}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-2}
PORT_BASE=${PORT_BASE:-7101}
ARGS_A=${ARGS_A:-}
ARGS_B=${ARGS_B:-}
WORK=$(mktemp -d)
PIDS=()

stop_cluster() {
  if [ "${#PIDS[@]}" -gt 0 ]; then
    kill -TERM "${PIDS[@]}" 2>/dev/null || true
    wait "${PIDS[@]}" 2>/dev/null || true
  fi
  PIDS=()
}
trap 'stop_cluster; rm -rf "$WORK"' EXIT INT TERM

# Starts build $1's cluster with data under $2 and extra flags $3; returns once a node leads
# (bounded wait).
start_cluster() {
  local bin=$1 dir=$2 extra=$3 peers="" endpoints=""
  for i in 1 2 3; do
    peers+="${peers:+,}n$i=127.0.0.1:$((PORT_BASE + 100 + i))"
  done
  for i in 1 2 3; do
    "$bin/kvserver" --id "n$i" --addr "127.0.0.1:$((PORT_BASE + i))" --peer-addr "127.0.0.1:$((PORT_BASE + 100 + i))" --data-dir "$dir/n$i" \
      --peers "$peers" $extra >"$dir/n$i.log" 2>&1 &
    PIDS+=($!)
  done
  for _ in $(seq 1 200); do
    for i in 1 2 3; do
      if curl -fsS "http://127.0.0.1:$((PORT_BASE + i))/status" 2>/dev/null | grep -q '"role":"leader"'; then
        return 0
      fi
    done
    sleep 0.05
  done
  echo "no leader in 10 s; logs in $dir" >&2
  return 1
}

endpoints() {
  local e=""
  for i in 1 2 3; do e+="${e:+,}127.0.0.1:$((PORT_BASE + i))"; done
  echo "$e"
}

results="$WORK/results"
: >"$results"
for c in $CLIENTS; do
  for round in $(seq 1 "$ROUNDS"); do
    for side in A B; do
      bin=$A extra=$ARGS_A
      [ "$side" = B ] && bin=$B extra=$ARGS_B
      dir="$WORK/$side-$c-$round"
      mkdir -p "$dir"
      # shellcheck disable=SC2086 # extra flags are words on purpose
      start_cluster "$bin" "$dir" "$extra"
      out=$("$bin/kvctl" --endpoints "$(endpoints)" bench --concurrency "$c" \
        --duration "$DURATION" --mix put=80,get=15,cas=5 --keys 1000 --value-size 100 2>/dev/null)
      stop_cluster
      ops=$(echo "$out" | sed -n 's/.*= \([0-9.]*\) ops\/s.*/\1/p')
      lat=$(echo "$out" | sed -n 's/^latency (ms): //p')
      errs=$(echo "$out" | sed -n 's/.* \([0-9]*\) errors).*/\1/p')
      echo "$side clients=$c round=$round ops/s=$ops errors=$errs latency: $lat"
      echo "$side $c $ops" >>"$results"
    done
  done
done

echo "median ops/s (A = $A $ARGS_A, B = $B $ARGS_B):"
for c in $CLIENTS; do
  for side in A B; do
    med=$(awk -v s="$side" -v c="$c" '$1 == s && $2 == c {print $3}' "$results" | sort -n |
      awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}')
    printf '  clients=%-3s %s %s\n' "$c" "$side" "$med"
  done
done
