#!/usr/bin/env bash
# End-to-end test of the browser playground, from a fresh clone:
# installs playwright-core (no browser download: Debian's /usr/bin/chromium is used), builds the
# wasm package into www/pkg and the `playground` server, then runs the test in headless Chromium.
#
#   tests/e2e/run.sh
#
# Honours CARGO_TARGET_DIR, CHROMIUM (browser path) and PLAYGROUND_BIN.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

cd "$here"
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi

cd "$root"
bash scripts/wasm.sh pkg
# kvserver and kvctl for live.test.js (the playground's --dev-cluster runs the kvserver beside it).
cargo build -p raftkv-native --bin playground --bin kvserver --bin kvctl
export PLAYGROUND_BIN="${PLAYGROUND_BIN:-$CARGO_TARGET_DIR/debug/playground}"

cd "$here"
node --test playground.test.js members.test.js robust.test.js layout.test.js inspect.test.js network.test.js rewind.test.js events.test.js live.test.js
