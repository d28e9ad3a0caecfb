#!/usr/bin/env bash
# A local 3-node raftkv cluster: builds kvserver and kvctl (release), starts n1..n3 on
# 127.0.0.1:7001-7003 with data under ./data/cluster/n1..n3 (kept across runs: restart the
# script and the cluster comes back with its data), prints the endpoints and example commands,
# and stops every node on Ctrl-C / SIGTERM. It prints each node's command line, so a node
# killed for a failover demo can be started again by hand.
#   SKIP_BUILD=1       use the binaries already built
#   DATA_DIR=path      where the nodes keep their data (default ./data/cluster)
#   KVSERVER_ARGS="…"  extra arguments for every node (e.g. "--read-policy lease")
#   CERTS=dir          TLS and tokens from `bash scripts/certs.sh dir n1 n2 n3`: peers over
#                      mutual TLS, the client API over https behind dir/tokens
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN="$TARGET_DIR/release"
DATA_DIR=${DATA_DIR:-data/cluster}
# Clients on 7001-7003; peers (Raft) on listeners of their own, 7011-7013.
PEERS="n1=127.0.0.1:7011,n2=127.0.0.1:7012,n3=127.0.0.1:7013"
ENDPOINTS="127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"

if [ -z "${SKIP_BUILD:-}" ]; then
  echo "[cluster] building kvserver and kvctl (release)"
  cargo build --release -p raftkv-native --bin kvserver --bin kvctl
fi

PIDS=()
stop_all() {
  trap - EXIT INT TERM
  if [ "${#PIDS[@]}" -gt 0 ]; then
    echo "[cluster] stopping ${#PIDS[@]} node(s)"
    kill -TERM "${PIDS[@]}" 2>/dev/null || true
    wait "${PIDS[@]}" 2>/dev/null || true
  fi
  exit 0
}
trap stop_all EXIT INT TERM

# With CERTS: each node's TLS files (by id), and what clients need to reach it.
SCHEME=http
CURL=(curl)
CURL_HINT=curl
FOLLOW=-L
KVCTL_TLS=""
tls_args() { :; }
if [ -n "${CERTS:-}" ]; then
  for f in ca.crt tokens admin.token; do
    [ -f "$CERTS/$f" ] || { echo "[cluster] $CERTS/$f is missing: run bash scripts/certs.sh $CERTS n1 n2 n3" >&2; exit 2; }
  done
  SCHEME=https
  ENDPOINTS="https://127.0.0.1:7001,https://127.0.0.1:7002,https://127.0.0.1:7003"
  CURL=(curl --cacert "$CERTS/ca.crt" -H "Authorization: Bearer $(cat "$CERTS/admin.token")")
  CURL_HINT="curl --cacert $CERTS/ca.crt -H \"Authorization: Bearer \$RAFTKV_TOKEN\""
  KVCTL_TLS="--cacert $CERTS/ca.crt"
  # curl drops an Authorization header on a redirect to another port unless told to keep it.
  FOLLOW=--location-trusted
  tls_args() {
    echo "--peer-cert $CERTS/$1.crt --peer-key $CERTS/$1.key --peer-ca $CERTS/ca.crt" \
      "--cert $CERTS/$1.crt --key $CERTS/$1.key --tokens-file $CERTS/tokens"
  }
fi

mkdir -p "$DATA_DIR"
for i in 1 2 3; do
  # shellcheck disable=SC2086,SC2046 # KVSERVER_ARGS and tls_args are lists of words on purpose
  "$BIN/kvserver" --id "n$i" --addr "127.0.0.1:700$i" --peer-addr "127.0.0.1:701$i" --data-dir "$DATA_DIR/n$i" \
    --peers "$PEERS" $(tls_args "n$i") ${KVSERVER_ARGS:-} >"$DATA_DIR/n$i.log" 2>&1 &
  PIDS+=($!)
done

# Wait (bounded) until some node reports a leader.
leader=""
for _ in $(seq 1 100); do
  for i in 1 2 3; do
    if "${CURL[@]}" -fsS "$SCHEME://127.0.0.1:700$i/status" 2>/dev/null | grep -q '"role":"leader"'; then
      leader="n$i (127.0.0.1:700$i)"
      break 2
    fi
  done
  sleep 0.1
done

TOKEN_HINT=""
if [ -n "${CERTS:-}" ]; then
  TOKEN_HINT="export RAFTKV_TOKEN=\$(cat $CERTS/admin.token)   # or --token; $CERTS/tokens has a write and a read one too
  "
fi
cat <<EOF
[cluster] 3 nodes running (logs: $DATA_DIR/n1.log .. n3.log); leader: ${leader:-not elected yet}
  n1  $SCHEME://127.0.0.1:7001
  n2  $SCHEME://127.0.0.1:7002
  n3  $SCHEME://127.0.0.1:7003

Try:
  $TOKEN_HINT$BIN/kvctl --endpoints $ENDPOINTS $KVCTL_TLS status
  $BIN/kvctl --endpoints $ENDPOINTS $KVCTL_TLS put greeting hello
  $BIN/kvctl --endpoints $ENDPOINTS $KVCTL_TLS get greeting --consistency readindex
  $BIN/kvctl --endpoints $ENDPOINTS $KVCTL_TLS bench --concurrency 16 --duration 10
  $CURL_HINT -s $SCHEME://127.0.0.1:7001/status
  $CURL_HINT -s $FOLLOW -X PUT $SCHEME://127.0.0.1:7002/kv/k -d '{"client_id":"me","seq":1,"value":"v"}'
  $CURL_HINT -s $FOLLOW '$SCHEME://127.0.0.1:7003/kv/k?consistency=readindex'

Ctrl-C stops all nodes.
EOF

# Stay in the foreground until told to stop. A node that dies (say, kill -9 to watch a
# failover) does not stop the others; restart it by hand with the line printed below.
for i in 1 2 3; do
  echo "[cluster] n$i: $BIN/kvserver --id n$i --addr 127.0.0.1:700$i --peer-addr 127.0.0.1:701$i --data-dir $DATA_DIR/n$i --peers $PEERS $(tls_args "n$i") ${KVSERVER_ARGS:-}"
done
wait "${PIDS[@]}" || true
echo "[cluster] every node has exited; see $DATA_DIR/*.log"
