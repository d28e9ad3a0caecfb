#!/usr/bin/env bash
# The big-state figures of the README, for a state of KEYS keys with VALUE_SIZE-byte values
# (default 1,000,000 × 256 bytes) on a local 3-node cluster with the disk engine:
#   1. an empty follower catches up through a streamed snapshot: time, and the peak RSS of the
#      leader and the follower during the transfer above their RSS just before it;
#   2. the snapshot's size on disk;
#   3. restart to serving: a follower killed with SIGKILL and started again, until it answers a
#      linearizable (readindex) read of the last key loaded; the same with the memory engine,
#      for contrast, when MEMORY=1.
#   bash scripts/bench_big_state.sh            (builds release binaries first)
#   KEYS=1000000 VALUE_SIZE=256 PORT_BASE=7201 CHUNK_BYTES=1048576 MEMORY=1 WRAP_3=... KEEP_WORK=1
set -euo pipefail
cd "$(dirname "$0")/.."

KEYS=${KEYS:-1000000}
VALUE_SIZE=${VALUE_SIZE:-256}
PORT_BASE=${PORT_BASE:-7201}
CHUNK_BYTES=${CHUNK_BYTES:-1048576}
MEMORY=${MEMORY:-1}
BIN=${BIN:-target/release}
WORK=$(mktemp -d)
echo "work dir: $WORK"
declare -A PID
# WRAP_3="heaptrack -o /tmp/n3": a command to start the empty follower under (a profiler).
declare -A WRAP=([3]="${WRAP_3:-}")

cargo build --release -q -p raftkv-native --bin kvserver --bin kvctl

stop_all() {
  for p in "${PID[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  # A node under WRAP_3 is the wrapper's child: find it by its data dir.
  pkill -9 -f -- "--data-dir $WORK/" 2>/dev/null || true
  wait 2>/dev/null || true
}
# KEEP_WORK=1 keeps the data dirs and logs.
trap 'stop_all; [ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$WORK"' EXIT INT TERM

addr() { echo "127.0.0.1:$((PORT_BASE + $1))"; }
peer_addr() { echo "127.0.0.1:$((PORT_BASE + 100 + $1))"; }
PEERS="n1=$(peer_addr 1),n2=$(peer_addr 2),n3=$(peer_addr 3)"

# start_node I ENGINE: starts node nI with the given engine (data in $WORK/nI).
start_node() {
  # shellcheck disable=SC2086 # WRAP is a command and its words
  ${WRAP[$1]:-} "$BIN/kvserver" --id "n$1" --addr "$(addr "$1")" --peer-addr "$(peer_addr "$1")" --data-dir "$WORK/n$1" --peers "$PEERS" \
    --engine "$2" --snapshot-threshold 200 --snapshot-trailing 20 \
    --snapshot-chunk-bytes "$CHUNK_BYTES" >>"$WORK/n$1.log" 2>&1 &
  PID[$1]=$!
}

status() { curl -fsS "http://$(addr "$1")/status" 2>/dev/null || true; }
field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read() or '{}').get('$1', ''))"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$(now) - $1:.2f}')"; }

# wait_for DESC CMD...: polls CMD every 20 ms for up to 600 s.
wait_for() {
  local desc=$1
  shift
  for _ in $(seq 1 30000); do
    if "$@"; then return 0; fi
    sleep 0.02
  done
  echo "timed out waiting for $desc (logs in $WORK)" >&2
  exit 1
}
leads() { [ "$(status "$1" | field role)" = leader ]; }
applied_at_least() { [ "$(status "$1" | field last_applied)" -ge "$2" ] 2>/dev/null; }
last_key() { printf 'key-%07d' $((KEYS - 1)); }
serves() {
  curl -fsS "http://$(addr "$1")/kv/$(last_key)?consistency=readindex" >/dev/null 2>&1
}

start_node 1 disk
start_node 2 disk
wait_for "a leader" bash -c "curl -fsS http://$(addr 1)/status 2>/dev/null | grep -q '\"role\":\"leader\"' || curl -fsS http://$(addr 2)/status 2>/dev/null | grep -q '\"role\":\"leader\"'"
leader=1
leads 1 || leader=2
echo "loading $KEYS keys of $VALUE_SIZE bytes through n$leader"
python3 scripts/load_keys.py --endpoint "$(addr $leader)" --keys "$KEYS" --value-size "$VALUE_SIZE"
commit=$(status $leader | field commit_index)
wait_for "a snapshot at the leader" bash -c "[ \"\$(curl -fsS http://$(addr $leader)/status | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"snapshot_index\"])')\" -gt 0 ]"
# The leader writes snapshots on a thread of its own as the load goes on: let the last one
# finish, so the transfer below neither competes with it nor counts its temp file.
wait_for "the leader's snapshot write to finish" bash -c "[ ! -e $WORK/n$leader/snapshot.write.tmp ]"
snap_bytes=$(du -cb "$WORK/n$leader"/snapshot 2>/dev/null | tail -1 | cut -f1)
echo "snapshot on disk at n$leader: $snap_bytes bytes ($(du -sh "$WORK/n$leader" | cut -f1) data dir)"

# 1. An empty follower catches up through the snapshot.
leader_before=$(rss_kib "${PID[$leader]}")
t0=$(now)
start_node 3 disk
wait_for "n3 to answer" bash -c "curl -fsS http://$(addr 3)/healthz >/dev/null 2>&1"
follower_before=$(rss_kib "${PID[3]}")
leader_peak=$leader_before
follower_peak=$follower_before
sample_peaks() {
  local l f
  l=$(rss_kib "${PID[$leader]}")
  f=$(rss_kib "${PID[3]}")
  [ "$l" -gt "$leader_peak" ] && leader_peak=$l
  [ "$f" -gt "$follower_peak" ] && follower_peak=$f
  return 0
}
# sample_until DESC CMD...: samples the peaks every 50 ms until CMD holds (600 s at most).
sample_until() {
  local desc=$1
  shift
  until "$@"; do
    sample_peaks
    if [ "$(elapsed "$t0" | cut -d. -f1)" -gt 600 ]; then echo "n3 did not $desc in 600 s" >&2; exit 1; fi
    sleep 0.05
  done
}
installed() { [ "$(status 3 | field snapshot_index)" -gt 0 ] 2>/dev/null; }
# Two phases: the snapshot's transfer and install, then the log after the snapshot's index
# (entries of about 1,000 keys each here, sent back to back).
sample_until install installed
install_done=$(elapsed "$t0")
leader_install_peak=$leader_peak
follower_install_peak=$follower_peak
sample_until "catch up" applied_at_least 3 "$commit"
catch_up=$(elapsed "$t0")
# The peak includes the second after catching up (the entries queued behind the install).
for _ in $(seq 1 20); do
  sample_peaks
  sleep 0.05
done
echo "empty follower installed the snapshot in $install_done s, caught up to index $commit in $catch_up s"
echo "peak RSS until installed: leader +$(((leader_install_peak - leader_before) / 1024)) MiB, follower +$(((follower_install_peak - follower_before) / 1024)) MiB"
echo "peak RSS until caught up (and 1 s after): leader +$(((leader_peak - leader_before) / 1024)) MiB (before $((leader_before / 1024)) MiB), follower +$(((follower_peak - follower_before) / 1024)) MiB (before $((follower_before / 1024)) MiB)"

# 3. Restart to serving (disk engine): kill -9 a follower, start it again.
victim=1
[ "$leader" = 1 ] && victim=2
kill -9 "${PID[$victim]}"
wait "${PID[$victim]}" 2>/dev/null || true
t0=$(now)
start_node "$victim" disk
wait_for "n$victim to serve" serves "$victim"
echo "disk engine: restart of n$victim to serving a readindex read: $(elapsed "$t0") s"

if [ "$MEMORY" = 1 ]; then
  # The memory engine rebuilds its state from the stored snapshot and the log at every start:
  # n3 killed again and started on the same data dir with --engine memory. (Not a wiped data
  # dir: a member that lost what it acknowledged is outside Raft's model, and its leader,
  # which counts those entries as held, never sends them again.)
  kill -9 "${PID[3]}"
  wait "${PID[3]}" 2>/dev/null || true
  t0=$(now)
  start_node 3 memory
  wait_for "n3 (memory) to serve" serves 3
  echo "memory engine: restart of n3 to serving a readindex read: $(elapsed "$t0") s"
fi
