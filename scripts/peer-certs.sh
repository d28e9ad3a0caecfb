#!/usr/bin/env bash
# Makes a CA and one certificate per node for kvserver's peer mutual TLS, with openssl:
#   bash scripts/peer-certs.sh DIR n1 n2 n3
# writes DIR/ca.crt (and DIR/ca.key: keep it off the nodes), and DIR/<id>.crt, DIR/<id>.key
# for each node id. Each certificate names its node id as a DNS subject alternative name,
# which kvserver requires (a peer's certificate must name the node it claims to be), plus
# localhost and 127.0.0.1. Start each node with
#   --peer-cert DIR/<id>.crt --peer-key DIR/<id>.key --peer-ca DIR/ca.crt
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 DIR ID [ID...]" >&2
  exit 2
fi
dir=$1
shift
mkdir -p "$dir"
umask 077
if [ ! -f "$dir/ca.key" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=raftkv peer CA" -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
fi
for id in "$@"; do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$id" \
    -keyout "$dir/$id.key" -out "$dir/$id.csr" 2>/dev/null
  printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' "$id" \
    >"$dir/$id.ext"
  openssl x509 -req -in "$dir/$id.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 825 -extfile "$dir/$id.ext" -out "$dir/$id.crt" 2>/dev/null
  rm -f "$dir/$id.csr" "$dir/$id.ext"
  echo "$dir/$id.crt"
done
