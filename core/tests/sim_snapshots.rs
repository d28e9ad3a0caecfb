//! A snapshot-heavy variant of the randomized suite: tiny snapshot thresholds, busy clients,
//! and many lagging followers and restarts, so InstallSnapshot races with appends, elections
//! and crashes far more often than in the default suite.
//!
//! `cargo test -p raftkv-core --test sim_snapshots` runs 200 seeds (50 in wasm);
//! `RAFTKV_SIM_SEEDS=n` runs more, `RAFTKV_SIM_SEED=s` one.

use raftkv_core::sim::{FaultProfile, FaultWeights, Scenario, TraceMode};
use wasm_bindgen_test::wasm_bindgen_test;

#[cfg(not(target_arch = "wasm32"))]
const DEFAULT_SEEDS: u64 = 200;
#[cfg(target_arch = "wasm32")]
const DEFAULT_SEEDS: u64 = 50;

#[cfg(not(target_arch = "wasm32"))]
fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok().filter(|v| !v.is_empty())?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
    )
}
#[cfg(target_arch = "wasm32")]
fn env_u64(_: &str) -> Option<u64> {
    None
}

fn small_appends(c: &mut raftkv_core::raft::Config) {
    c.max_entries_per_append = 2;
}

/// Snapshots every 1..=4 entries, 2–4 clients doing 20–50 quick operations, and faults that
/// mostly keep followers away or kill nodes.
fn snapshot_heavy() -> Scenario {
    let mut s = Scenario {
        size_weights: [1, 1, 6, 1, 4, 0, 1, 0, 0],
        clients_min: 2,
        clients_max: 4,
        ops_min: 20,
        ops_max: 50,
        snapshot_weights: [0, 1],
        snapshot_threshold_min: 1,
        snapshot_threshold_max: 4,
        faults: FaultProfile {
            gap_min: 50,
            gap_max: 300,
            down_min: 20,
            down_max: 1_200,
            weights: FaultWeights {
                partition: 2,
                one_way: 1,
                isolate: 1,
                kill: 4,
                loss: 1,
                duplicate: 1,
                latency: 1,
                leader: 2,
                lag: 5,
            },
            ..FaultProfile::default()
        },
        trace: TraceMode::Off,
        configure: small_appends,
        ..Scenario::default()
    };
    s.faults.weights.duplicate = 3;
    s.faults.weights.loss = 3;
    s.faults.down_min = 1;
    s.workload.think_min = 1;
    s.workload.think_max = 60;
    s
}

#[wasm_bindgen_test(unsupported = test)]
fn snapshot_heavy_seeds_stay_safe_and_live() {
    let scenario = snapshot_heavy();
    let seeds: Vec<u64> = match env_u64("RAFTKV_SIM_SEED") {
        Some(s) => vec![s],
        None => (0..env_u64("RAFTKV_SIM_SEEDS").unwrap_or(DEFAULT_SEEDS)).collect(),
    };
    let (mut taken, mut installed, mut loaded, mut ops) = (0u64, 0u64, 0u64, 0u64);
    // The storage faults of the default mix: lost and torn writes, failed syncs, corrupt last
    // records cut off, starts refused for a rotten synced record.
    let (mut lost, mut torn, mut fsync_failures) = (0u64, 0u64, 0u64);
    let (mut tails_cut, mut refused) = (0u64, 0u64);
    for &seed in &seeds {
        let r = match scenario.run(seed) {
            Ok(r) => r,
            Err(f) => panic!(
                "snapshot-heavy seed failed: {f}\nreplay with:\n    RAFTKV_SIM_SEED={seed} \
                 cargo test -p raftkv-core --test sim_snapshots -- --nocapture"
            ),
        };
        assert_eq!(
            r.ops_ok + r.stats.session_refusals,
            r.ops_planned,
            "seed {seed}: every operation is answered (or refused as from an expired session)"
        );
        ops += r.ops_ok;
        taken += r.stats.snapshots_taken;
        installed += r.stats.snapshots_installed;
        loaded += r.stats.snapshots_loaded;
        lost += r.stats.writes_lost;
        torn += r.stats.writes_torn;
        fsync_failures += r.stats.fsync_failures;
        tails_cut += r.stats.corrupt_tails_cut;
        refused += r.stats.corrupt_starts_refused;
    }
    println!(
        "{} snapshot-heavy seeds: {ops} operations; snapshots {taken} taken, {installed} \
         installed from a leader, {loaded} loaded on restart; writes {lost} lost to a kill \
         ({torn} torn), {fsync_failures} failed syncs, corrupt reads: {tails_cut} last records \
         cut, {refused} starts refused",
        seeds.len()
    );
    if seeds.len() > 1 {
        assert!(taken > 0 && installed > 0 && loaded > 0);
        assert!(
            installed * 2 > seeds.len() as u64,
            "lagging followers install snapshots often: {installed}"
        );
    }
}
