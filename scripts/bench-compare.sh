#!/usr/bin/env bash
# kvserver side by side with etcd, and with noop-kv (kvserver's HTTP API over a bare map: no
# Raft, no disk), loaded by the same closed-loop generator, `kvctl bench`.
#
# Starts, all on loopback: a 3-member etcd cluster (fsync on, etcd's default), a 3-node kvserver
# cluster (release build, fsync on, kvserver's default), and one noop-kv; waits until each is
# ready; puts each of the 1,000 keys once into each; then, for PUT (mix put=100) and for
# linearizable GET (mix get=100: kvserver readindex, etcd's default linearizable range), at each
# client count, runs kvserver, etcd and noop-kv back to back, so the three see the same minute
# of a shared machine. Every client has one request in flight; values are 100 bytes. Prints one
# table with the ratios kvserver/etcd and kvserver/noop, and stops everything on exit.
#
#   bash scripts/bench-compare.sh
#   BENCH_SECS=10            seconds per cell
#   BENCH_CLIENTS="1 16 64 256"
#   PORT_BASE=7400           kvserver +1..+3, noop-kv +10, etcd clients +21..+23, peers +31..+33
#   SKIP_BUILD=1             use the release binaries already built (in $CARGO_TARGET_DIR/release)
#   KEEP_WORK=1              keep the temp dir (data dirs, server logs, kvctl's stderr)
#   KVSERVER_ARGS="…"        extra flags for every kvserver node
#
# Installs Debian's etcd-server with apt-get if `etcd` is missing (the script talks to etcd over
# HTTP with curl and kvctl, so etcdctl is not needed). On a host with systemd, that package also
# starts a system etcd on 2379/2380; the ports here do not clash with it.
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_SECS=${BENCH_SECS:-10}
BENCH_CLIENTS=${BENCH_CLIENTS:-"1 16 64 256"}
PORT_BASE=${PORT_BASE:-7400}
KEYS=1000
VALUE_SIZE=100
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN="$TARGET_DIR/release"

log() { echo "[compare] $*" >&2; }
die() {
  log "$*"
  exit 1
}

kv_port() { echo $((PORT_BASE + $1)); }
kv_peer_port() { echo $((PORT_BASE + 40 + $1)); }
etcd_client_port() { echo $((PORT_BASE + 20 + $1)); }
etcd_peer_port() { echo $((PORT_BASE + 30 + $1)); }
NOOP_PORT=$((PORT_BASE + 10))

KV_PEERS="" KV_EPS="" ETCD_CLUSTER="" ETCD_EPS=""
for i in 1 2 3; do
  KV_PEERS+="${KV_PEERS:+,}n$i=127.0.0.1:$(kv_peer_port $i)"
  KV_EPS+="${KV_EPS:+,}127.0.0.1:$(kv_port $i)"
  ETCD_CLUSTER+="${ETCD_CLUSTER:+,}e$i=http://127.0.0.1:$(etcd_peer_port $i)"
  ETCD_EPS+="${ETCD_EPS:+,}127.0.0.1:$(etcd_client_port $i)"
done
NOOP_EP="127.0.0.1:$NOOP_PORT"

# --- etcd, and the binaries -------------------------------------------------------------------

if ! command -v etcd >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  log "etcd is missing: installing Debian's etcd-server"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null
  command -v etcd >/dev/null 2>&1 || die "etcd-server is installed but there is no etcd on PATH"
fi
command -v curl >/dev/null 2>&1 || die "curl is needed to poll the servers"

if [ -z "${SKIP_BUILD:-}" ]; then
  log "building kvserver, kvctl and noop-kv (release)"
  cargo build --release -p raftkv-native --bin kvserver --bin kvctl --bin noop-kv
fi
for b in kvserver kvctl noop-kv; do
  [ -x "$BIN/$b" ] || die "no $BIN/$b (build it, or unset SKIP_BUILD)"
done

# --- processes and clean-up ---------------------------------------------------------------------

WORK=$(mktemp -d -t bench-compare.XXXXXX)
PIDS=()

# TERM to every server, then KILL whatever is still up after 10 s (a kvserver leader hands its
# leadership over before exiting, which a cluster going down as a whole does not need to wait
# for indefinitely).
stop_all() {
  [ "${#PIDS[@]}" -gt 0 ] || return 0
  kill -TERM "${PIDS[@]}" 2>/dev/null || true
  local deadline=$((SECONDS + 10)) pid
  for pid in "${PIDS[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  wait "${PIDS[@]}" 2>/dev/null || true
  PIDS=()
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_all
  if [ -n "${KEEP_WORK:-}" ] || [ "$rc" -ne 0 ]; then
    log "logs and data kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_kvserver_node I: node nI of the 3-node kvserver cluster, release build, fsync on
# (kvserver's default), data under $WORK/kvserver/nI. Every kvserver start goes through here,
# so a change to how a node is started (new flags) is made in this one place.
start_kvserver_node() {
  local i=$1 dir="$WORK/kvserver"
  mkdir -p "$dir"
  # shellcheck disable=SC2086 # KVSERVER_ARGS is a list of words on purpose
  "$BIN/kvserver" --id "n$i" --addr "127.0.0.1:$(kv_port "$i")" \
    --peer-addr "127.0.0.1:$(kv_peer_port "$i")" --data-dir "$dir/n$i" \
    --peers "$KV_PEERS" ${KVSERVER_ARGS:-} >"$dir/n$i.log" 2>&1 &
  PIDS+=($!)
}

# start_etcd_member I: member eI of the 3-member etcd cluster, data under $WORK/etcd/eI, with
# etcd's defaults otherwise (fsync on, heartbeat 100 ms, election 1 s).
start_etcd_member() {
  local i=$1 dir="$WORK/etcd" client peer
  client="http://127.0.0.1:$(etcd_client_port "$i")"
  peer="http://127.0.0.1:$(etcd_peer_port "$i")"
  mkdir -p "$dir"
  etcd --name "e$i" --data-dir "$dir/e$i" \
    --listen-client-urls "$client" --advertise-client-urls "$client" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "$ETCD_CLUSTER" --initial-cluster-state new \
    --initial-cluster-token "bench-compare-$$" \
    --logger zap --log-outputs stderr --log-level warn >"$dir/e$i.log" 2>&1 &
  PIDS+=($!)
}

start_noop() {
  "$BIN/noop-kv" --addr "$NOOP_EP" >"$WORK/noop-kv.log" 2>&1 &
  PIDS+=($!)
}

# wait_for WHAT SECS CHECK...: runs CHECK every 0.1 s until it succeeds; fails after SECS, or
# at once if a server died (say, its port was taken), pointing at the logs.
wait_for() {
  local what=$1 secs=$2 deadline pid
  shift 2
  deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    for pid in "${PIDS[@]}"; do
      kill -0 "$pid" 2>/dev/null || die "a server exited while waiting for $what; see $WORK"
    done
    [ "$SECONDS" -lt "$deadline" ] || die "$what not ready after ${secs}s; see $WORK"
    sleep 0.1
  done
}

# Ready: every member says it is healthy, which etcd only does once it has a leader.
etcd_ready() {
  local i
  for i in 1 2 3; do
    curl -fsS --max-time 1 "http://127.0.0.1:$(etcd_client_port "$i")/health" |
      grep -q '"health":"true"' || return 1
  done
}

# Ready: every node is healthy and knows the leader's address (so a client at any of them is
# redirected rather than told to wait).
kvserver_ready() {
  local i
  for i in 1 2 3; do
    curl -fsS --max-time 1 "http://127.0.0.1:$(kv_port "$i")/healthz" >/dev/null || return 1
    curl -fsS --max-time 1 "http://127.0.0.1:$(kv_port "$i")/status" |
      grep -q '"leader_addr":"[^"]' || return 1
  done
}

noop_ready() { curl -fsS --max-time 1 "http://$NOOP_EP/healthz" >/dev/null; }

log "work dir $WORK"
for i in 1 2 3; do start_etcd_member "$i"; done
for i in 1 2 3; do start_kvserver_node "$i"; done
start_noop
wait_for "etcd" 30 etcd_ready
wait_for "kvserver" 30 kvserver_ready
wait_for "noop-kv" 10 noop_ready
log "etcd, kvserver and noop-kv are ready"

# --- load -----------------------------------------------------------------------------------

# The endpoints and --target of a row's target.
endpoints_of() {
  case $1 in
    kvserver) echo "$KV_EPS" ;;
    etcd) echo "$ETCD_EPS" ;;
    noop) echo "$NOOP_EP" ;;
  esac
}
kvctl_target_of() { if [ "$1" = etcd ]; then echo etcd; else echo kvserver; fi; }

# json_num KEY < JSON: the number after "KEY": in kvctl bench's one-line --json report (each
# key read here occurs once in it).
json_num() { sed -n "s/.*\"$1\":\([-0-9.eE+]*\).*/\1/p"; }

for t in kvserver etcd noop; do
  # Not timed: a put of every key, so that every get finds a value.
  out=$("$BIN/kvctl" --endpoints "$(endpoints_of "$t")" bench --target "$(kvctl_target_of "$t")" \
    --preload --count 0 --mix put=1 --concurrency 16 --keys "$KEYS" \
    --value-size "$VALUE_SIZE" 2>>"$WORK/kvctl.log") || die "preloading $t failed; see $WORK/kvctl.log"
  log "$t $(grep '^preload' <<<"$out")"
done

RESULTS="$WORK/results"
: >"$RESULTS"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for op in put get; do
  if [ "$op" = put ]; then mix=(--mix put=100); else mix=(--mix get=100 --consistency readindex); fi
  for c in $BENCH_CLIENTS; do
    for t in kvserver etcd noop; do
      log "$op, $c clients, $t"
      if out=$("$BIN/kvctl" --endpoints "$(endpoints_of "$t")" --json bench \
        --target "$(kvctl_target_of $t)" "${mix[@]}" --concurrency "$c" \
        --duration "$BENCH_SECS" --keys "$KEYS" --value-size "$VALUE_SIZE" \
        2>>"$WORK/kvctl.log"); then
        ops=$(json_num ops_per_sec <<<"$out")
        p50=$(json_num p50 <<<"$out")
        p99=$(json_num p99 <<<"$out")
        errs=$(json_num errors <<<"$out")
        echo "$t $op $c ${ops:-?} ${p50:-?} ${p99:-?} ${errs:-?}" >>"$RESULTS"
      else
        log "kvctl bench failed for $t $op $c (see $WORK/kvctl.log)"
        echo "$t $op $c failed - - -" >>"$RESULTS"
      fi
    done
  done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the table ----------------------------------------------------------------------------------

echo
echo "kvserver vs etcd $(etcd --version 2>/dev/null | sed -n 's/^etcd Version: //p') vs noop-kv," \
  "$(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores," \
  "load average ${LOAD_START// /\/} at the start, ${LOAD_END// /\/} at the end;" \
  "${BENCH_SECS} s per cell, $KEYS keys, $VALUE_SIZE B values, one request in flight per client"
echo
# Rows come in groups of kvserver, etcd, noop for one op and client count; the ratios of
# throughput stand on the kvserver row of each group.
awk '
  function num(x) { return x ~ /^[0-9.]+$/ }
  function ratio(a, b) { return (num(a) && num(b) && b > 0) ? sprintf("%.2f", a / b) : "-" }
  function fmt(x, f) { return num(x) ? sprintf(f, x) : x }
  BEGIN {
    printf "| %-8s | %-3s | %7s | %9s | %7s | %7s | %6s | %13s | %13s |\n", \
      "target", "op", "clients", "ops/s", "p50 ms", "p99 ms", "errors", "kvserver/etcd", "kvserver/noop"
    print "|----------|-----|--------:|----------:|--------:|--------:|-------:|--------------:|--------------:|"
  }
  { t[NR] = $1; op[NR] = $2; c[NR] = $3; ops[NR] = $4; p50[NR] = $5; p99[NR] = $6; e[NR] = $7
    g = $2 " " $3; v[g, $1] = $4 }
  END {
    for (i = 1; i <= NR; i++) {
      g = op[i] " " c[i]; re = "-"; rn = "-"
      if (t[i] == "kvserver") { re = ratio(v[g, "kvserver"], v[g, "etcd"]); rn = ratio(v[g, "kvserver"], v[g, "noop"]) }
      printf "| %-8s | %-3s | %7s | %9s | %7s | %7s | %6s | %13s | %13s |\n", \
        t[i], op[i], c[i], fmt(ops[i], "%.0f"), fmt(p50[i], "%.2f"), fmt(p99[i], "%.2f"), e[i], re, rn
    }
  }' "$RESULTS"
echo
echo "get: linearizable (kvserver --consistency readindex; etcd range with serializable=false)."
