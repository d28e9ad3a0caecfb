#!/usr/bin/env bash
# Certificates and tokens for a local cluster with client TLS, with openssl:
#   bash scripts/certs.sh DIR n1 n2 n3
# writes, beside what scripts/peer-certs.sh makes (DIR/ca.crt, DIR/ca.key: keep it off the
# nodes, and DIR/<id>.crt, DIR/<id>.key per node, valid for the node id, localhost and
# 127.0.0.1, for both serverAuth and clientAuth: one certificate serves the node's peers and
# its clients, and is its client certificate when it --joins),
#   DIR/kvctl.crt, DIR/kvctl.key  a client certificate for kvctl (for servers with --client-ca)
#   DIR/tokens                    one random token per role: ops admin, app write, dashboard read
#                                 (kept if it exists)
#   DIR/admin.token               the admin token alone (for --join-token-file, RAFTKV_TOKEN)
# Start each node with
#   --cert DIR/<id>.crt --key DIR/<id>.key [--client-ca DIR/ca.crt] --tokens-file DIR/tokens
# and use kvctl with
#   --endpoints https://127.0.0.1:7001 --cacert DIR/ca.crt [--cert DIR/kvctl.crt --key DIR/kvctl.key]
#   and --token TOKEN or RAFTKV_TOKEN=TOKEN.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 DIR ID [ID...]" >&2
  exit 2
fi
dir=$1
bash "$(dirname "$0")/peer-certs.sh" "$@"
umask 077
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=kvctl" \
  -keyout "$dir/kvctl.key" -out "$dir/kvctl.csr" 2>/dev/null
printf 'subjectAltName=DNS:kvctl\nextendedKeyUsage=clientAuth\n' >"$dir/kvctl.ext"
openssl x509 -req -in "$dir/kvctl.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
  -days 825 -extfile "$dir/kvctl.ext" -out "$dir/kvctl.crt" 2>/dev/null
rm -f "$dir/kvctl.csr" "$dir/kvctl.ext"
echo "$dir/kvctl.crt"
if [ ! -f "$dir/tokens" ]; then
  {
    echo "# TOKEN NAME ROLE (roles: read, write, admin); see docs/client-auth.md"
    echo "$(openssl rand -hex 24) ops admin"
    echo "$(openssl rand -hex 24) app write"
    echo "$(openssl rand -hex 24) dashboard read"
  } >"$dir/tokens"
fi
awk '$2 == "ops" { print $1 }' "$dir/tokens" >"$dir/admin.token"
echo "$dir/tokens"
