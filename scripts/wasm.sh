#!/usr/bin/env bash
# The wasm builds and tests, with cargo and wasm-bindgen's own CLI (scripts/setup.sh installs it
# at the version Cargo.toml pins) instead of wasm-pack: one tool fewer to build on a fresh
# machine (wasm-pack took 4.5 minutes of a fresh CI run's set-up), and the same steps.
#
#   bash scripts/wasm.sh pkg                  # www/pkg: the playground's package (release, ES module)
#   bash scripts/wasm.sh test CRATE           # CRATE's tests under wasm32 in Node
#   bash scripts/wasm.sh test CRATE --chrome  # the same in headless Chromium (chromedriver)
#
# Honours CARGO_TARGET_DIR and CHROMEDRIVER (default /usr/bin/chromedriver).
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}
usage() { echo "usage: bash scripts/wasm.sh pkg | test CRATE [--chrome]" >&2; exit 2; }

case "${1:-}" in
  pkg)
    cargo build --release --target wasm32-unknown-unknown -p raftkv-web --lib
    wasm-bindgen --target web --no-typescript --out-dir www/pkg \
      "$target_dir/wasm32-unknown-unknown/release/raftkv_web.wasm"
    ;;
  test)
    [ -n "${2:-}" ] || usage
    # cargo runs each wasm test binary through wasm-bindgen's runner: Node by default, a
    # browser through chromedriver when WASM_BINDGEN_USE_BROWSER is set (headless unless
    # NO_HEADLESS is).
    export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
    case "${3:-}" in
      "") ;;
      --chrome) export WASM_BINDGEN_USE_BROWSER=1 CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}" ;;
      *) usage ;;
    esac
    cargo test --target wasm32-unknown-unknown -p "$2"
    ;;
  *) usage ;;
esac
