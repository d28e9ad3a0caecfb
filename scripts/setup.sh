#!/usr/bin/env bash
# Installs what raftkv needs on a fresh machine, skipping what is already present.
# Idempotent: safe (and fast) to run before every build or test.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

# The wasm-bindgen CLI must match the `=`-pinned crate in Cargo.toml exactly.
WASM_BINDGEN_VERSION=$(sed -n 's/^wasm-bindgen = { version = "=\([0-9.]*\)".*/\1/p' Cargo.toml)
[ -n "$WASM_BINDGEN_VERSION" ] || { echo "could not read the wasm-bindgen pin from Cargo.toml" >&2; exit 1; }

rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target add wasm32-unknown-unknown
rustup component add rustfmt clippy >/dev/null 2>&1 || true

if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 2 minutes)"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest (about 3 minutes)"
  cargo install cargo-nextest --locked
fi
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  log "installing Debian's chromium and chromium-driver"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi
# Python packages of the integration tests (tests/metrics_parse.py, ...): one venv under
# target/py, with exactly the pins of one requirements file. A new package goes in that file,
# not here; it is reinstalled only when the file changed since the last install.
PY_VENV=target/py
PY_REQUIREMENTS=scripts/requirements-test.txt
# schemathesis (tests/tests/openapi_schemathesis.rs) needs Python 3.11 or newer.
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "python3 is $(python3 --version 2>&1); the test venv needs Python 3.11 or newer (schemathesis)" >&2
  exit 1
fi
if [ ! -x "$PY_VENV/bin/python" ]; then
  log "creating the Python venv of the tests in $PY_VENV"
  if ! python3 -m venv "$PY_VENV" 2>/dev/null; then
    # Debian's python3 leaves the venv module (ensurepip) to a package of its own.
    rm -rf "$PY_VENV"
    export DEBIAN_FRONTEND=noninteractive
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$PY_VENV"
  fi
fi
if ! cmp -s "$PY_REQUIREMENTS" "$PY_VENV/requirements.installed"; then
  log "installing $PY_REQUIREMENTS into $PY_VENV"
  "$PY_VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$PY_REQUIREMENTS"
  cp "$PY_REQUIREMENTS" "$PY_VENV/requirements.installed"
fi

log "ready: $(wasm-bindgen --version), $(cargo nextest --version | head -1), $(chromium --version 2>/dev/null | head -1), $("$PY_VENV/bin/python" --version)"
