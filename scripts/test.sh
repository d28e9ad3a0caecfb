#!/usr/bin/env bash
# Runs every check and test of raftkv: formatting, lints (native and wasm32), the native test
# suite, the protocol-break tests, simulator histories through an independent (Python)
# checker, core and web under wasm (Node, Chromium), and the page end to end. Installs what
# is missing first (scripts/setup.sh), so it works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step's header carries the seconds since the start, so a CI log shows where time goes.
step() { printf '\n=== [%4ds] %s\n' "$SECONDS" "$*"; }

step "set-up"
bash scripts/setup.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy (native, all targets, all features)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "clippy (wasm32: core and web)"
cargo clippy -p raftkv-core -p raftkv-web --target wasm32-unknown-unknown -- -D warnings

step "the workspace's tests (cargo nextest), then its doctests"
# The integration tests' harness builds kvserver and kvctl on first use; building them here
# first, with the same command, makes that a no-op inside every test process.
cargo build -p raftkv-native --bins
# nextest runs each test in a process of its own, the binaries side by side (.config/nextest.toml).
cargo nextest run --workspace
cargo test --workspace --doc

step "Jepsen-style runs of real clusters: the short run, and the proof that stale reads are caught"
# One at a time (each is a real cluster under a nemesis); --nocapture prints each run's figures.
# A failure prints its seed and the command that replays it.
cargo test -p raftkv-tests --test jepsen -- --ignored --nocapture --test-threads=1 \
  short_randomized_run_passes_every_check stale_reads_at_followers_are_caught

step "protocol breaks: the simulator must catch each deliberate violation"
cargo test -p raftkv-core --features protocol-breaks --lib --test sim_breaks --test raft_election --test raft_replication --test raft_lease --test raft_membership

step "protocol breaks: the peer stream's and the disk log's checks must catch their deliberate breaks"
cargo test -p raftkv-native --features protocol-breaks --test transport_breaks --test storage_breaks

step "failpoints: an injected I/O error stops kvserver cleanly, losing no acknowledged write"
cargo test -p raftkv-native --features failpoints --lib failpoints
cargo test -p raftkv-native --features failpoints --test failpoints
# The proof that the lossy disk catches a log that skips its fsync (a whole-cluster power cut).
cargo test -p raftkv-tests --test power_loss -- --ignored

step "simulator histories through an independent checker (scripts/check_history.py)"
python3 -m unittest scripts/test_check_history.py
hist_dir=$(mktemp -d)
for seed in $(seq 1 20); do
  RAFTKV_SIM_SEED=$seed RAFTKV_SIM_HISTORY="$hist_dir/seed-$seed.jsonl" \
    cargo test -q -p raftkv-core --test sim randomized_seeds_stay_safe_and_live >/dev/null
done
python3 scripts/check_history.py "$hist_dir"/*.jsonl
rm -rf "$hist_dir"

step "core's tests under wasm32 in Node (scripts/wasm.sh)"
bash scripts/wasm.sh test raftkv-core

step "web bindings under wasm32: Node, then headless Chromium"
bash scripts/wasm.sh test raftkv-web
bash scripts/wasm.sh test raftkv-web --chrome

step "the playground page end to end in headless Chromium"
bash tests/e2e/run.sh

printf '\nall checks passed in %ds\n' "$SECONDS"
