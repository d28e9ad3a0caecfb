//! Proof that the simulator's checks can fail: each deliberate protocol break (core's
//! `protocol-breaks` feature) is caught within a bounded number of seeds of a schedule biased to
//! expose it, and the failing seed replays to the same violation and the same trace.
//!
//! Run with `cargo test -p raftkv-core --features protocol-breaks`.

#![cfg(feature = "protocol-breaks")]

use raftkv_core::raft::Config;
use raftkv_core::sim::{
    ChurnProfile, ChurnWeights, FaultProfile, FaultWeights, Invariant, LinkConfig, RunFailure,
    Scenario, TraceMode,
};
use wasm_bindgen_test::wasm_bindgen_test;

/// The most seeds a search may take.
const MAX_SEEDS: u64 = 2_000;

#[cfg(not(target_arch = "wasm32"))]
fn env_seed() -> Option<u64> {
    let v = std::env::var("RAFTKV_SIM_SEED").ok()?;
    match v.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => panic!("RAFTKV_SIM_SEED={v:?} is not a number"),
    }
}
#[cfg(target_arch = "wasm32")]
fn env_seed() -> Option<u64> {
    None
}

fn replay_command(test: &str, seed: u64) -> String {
    format!(
        "RAFTKV_SIM_SEED={seed} cargo test -p raftkv-core --features protocol-breaks \
         --test sim_breaks -- --nocapture {test}"
    )
}

/// A schedule of frequent, short faults on small clusters: many elections, many leaders.
fn churn() -> Scenario {
    Scenario {
        size_weights: [0, 0, 3, 0, 1, 0, 0, 0, 0],
        clients_min: 2,
        clients_max: 3,
        ops_min: 10,
        ops_max: 25,
        faults: FaultProfile {
            fault_end: 3_000,
            gap_min: 30,
            gap_max: 200,
            duration_min: 50,
            duration_max: 400,
            down_min: 5,
            down_max: 300,
            weights: FaultWeights {
                partition: 3,
                one_way: 1,
                isolate: 3,
                kill: 4,
                loss: 1,
                duplicate: 0,
                latency: 1,
                leader: 2,
                lag: 0,
            },
            ..FaultProfile::default()
        },
        trace: TraceMode::Off,
        ..Scenario::default()
    }
}

/// Searches seeds `0..MAX_SEEDS` of `scenario` for a violation (or runs the one seed from
/// RAFTKV_SIM_SEED), checks it is one of `expected`, and that replaying it gives the same
/// violation and trace.
fn expect_caught(test: &str, scenario: &Scenario, expected: &[Invariant]) {
    expect_caught_within(test, scenario, expected, MAX_SEEDS);
}

/// [`expect_caught`] with its own bound on the search.
fn expect_caught_within(test: &str, scenario: &Scenario, expected: &[Invariant], max_seeds: u64) {
    expect_caught_past(test, scenario, expected, &[], max_seeds);
}

/// The seed [`expect_caught_past`] caught the break in must pass without it: the same faults,
/// an honest host.
fn passes_without_the_break(test: &str, scenario: &Scenario, seed: u64) {
    let honest = Scenario {
        configure: |_| {},
        ..scenario.clone()
    };
    if let Err(f) = honest.run(seed) {
        panic!("{test}: seed {seed} fails without the break too:\n{f}");
    }
}

/// [`expect_caught_within`], searching on past seeds that break one of `passed_over` (also
/// consequences of the break, but not the one the test is about).
fn expect_caught_past(
    test: &str,
    scenario: &Scenario,
    expected: &[Invariant],
    passed_over: &[Invariant],
    max_seeds: u64,
) -> u64 {
    let seeds: Vec<u64> = match env_seed() {
        Some(s) => vec![s],
        None => (0..max_seeds).collect(),
    };
    let mut ran = 0;
    let mut found: Option<Box<RunFailure>> = None;
    for seed in seeds {
        ran += 1;
        match scenario.run(seed) {
            Err(f) if passed_over.contains(&f.violation.invariant) && env_seed().is_none() => {
                println!(
                    "{test}: seed {seed} broke {}, searching on",
                    f.violation.invariant
                );
            }
            Err(f) => {
                found = Some(f);
                break;
            }
            Ok(_) => {}
        }
    }
    let Some(f) = found else {
        panic!("{test}: no violation in {ran} seeds: the break went unnoticed");
    };
    println!(
        "{test}: caught after {ran} seeds:\n{f}\nreplay: {}",
        replay_command(test, f.seed)
    );
    assert!(
        expected.contains(&f.violation.invariant),
        "{test}: seed {} broke {} but {expected:?} was expected\n{f}",
        f.seed,
        f.violation.invariant
    );
    // The search ran with a reduced trace; the full-trace replay must break the same way.
    assert_eq!(
        f.replayed_identically,
        Some(true),
        "{test}: replay differs\n{f}"
    );
    // And a second full replay gives the same violation and the same trace.
    let full = Scenario {
        trace: TraceMode::Full,
        ..scenario.clone()
    };
    let again = full.run(f.seed).err();
    let again2 = full.run(f.seed).err();
    match (again, again2) {
        (Some(a), Some(b)) => {
            assert_eq!(a.violation, f.violation);
            assert_eq!(a.trace_hash, b.trace_hash);
            assert_eq!(a.trace_hash, f.trace_hash);
            assert!(!a.trace_tail.is_empty());
        }
        _ => panic!("{test}: seed {} passed on replay", f.seed),
    }
    f.seed
}

fn skip_commit_rule(c: &mut Config) {
    c.breaks.skip_current_term_commit_rule = true;
    // One entry per message: an older-term entry can reach a majority before the new leader's
    // own entry does — the window in which counting replicas of old entries is wrong.
    c.max_entries_per_append = 1;
}

/// [`skip_commit_rule`], with snapshots compacting right up to their index. The interleaving
/// that loses an entry is rare (about one seed in ten thousand of this schedule); trailing
/// entries do not make it more or less likely, they only move it to other seeds, and this
/// keeps the search within its bound.
fn skip_commit_rule_compacting_fully(c: &mut Config) {
    skip_commit_rule(c);
    c.snapshot_trailing = 0;
    // One entry per message: a follower that is repaired after an election acknowledges the
    // old-term entries before the new leader's no-op, the window figure 8 needs. (With whole
    // batches the no-op travels with them, and the interleaving almost never happens.)
    c.max_entries_per_append = 1;
}

fn skip_log_check(c: &mut Config) {
    c.breaks.skip_log_completeness_check = true;
}

fn count_own_entry_early(c: &mut Config) {
    c.breaks.count_own_entry_before_durable = true;
}

fn forget_vote(c: &mut Config) {
    c.breaks.forget_to_persist_vote = true;
    // Narrow timeouts make simultaneous candidates (a split vote) common.
    c.election_timeout_min = 150;
    c.election_timeout_max = 165;
}

#[wasm_bindgen_test(unsupported = test)]
fn skipping_the_current_term_commit_rule_is_caught() {
    let scenario = Scenario {
        configure: skip_commit_rule,
        ..churn()
    };
    expect_caught(
        "skipping_the_current_term_commit_rule_is_caught",
        &scenario,
        &[
            Invariant::CommitRule,
            Invariant::LeaderCompleteness,
            Invariant::StateMachineSafety,
        ],
    );
}

/// The consequence of the same break — a committed entry lost — caught without the commit rule
/// check. Rarer (figure 8 needs three leaders in a precise order), so it searches longer:
/// run it with `--ignored`.
#[wasm_bindgen_test(unsupported = test)]
#[ignore = "searches up to 10,000 seeds for a rare interleaving (about 30 s in release)"]
fn skipping_the_current_term_commit_rule_loses_committed_entries() {
    let mut scenario = Scenario {
        configure: skip_commit_rule_compacting_fully,
        check_commit_rule: false,
        size_weights: [0, 0, 1, 0, 0, 0, 0, 0, 0],
        clients_min: 3,
        clients_max: 4,
        ops_min: 20,
        ops_max: 60,
        // Writes durable at once: a leader that counts itself late makes the window rarer.
        disk_latency_chance: 0.0,
        ..churn()
    };
    // Leaders cut off while clients still reach them pile up entries of their own term that
    // nobody else has; slow links stretch the window in which a later leader has copied such
    // entries to a majority but not yet its own.
    scenario.workload.think_min = 1;
    scenario.workload.think_max = 20;
    scenario.faults.weights = FaultWeights {
        partition: 2,
        one_way: 0,
        isolate: 5,
        kill: 3,
        loss: 1,
        duplicate: 0,
        latency: 0,
        leader: 0,
        lag: 0,
    };
    scenario.node_link = LinkConfig {
        latency_min: 5,
        latency_max: 30,
        ..LinkConfig::default()
    };
    expect_caught_within(
        "skipping_the_current_term_commit_rule_loses_committed_entries",
        &scenario,
        &[Invariant::LeaderCompleteness, Invariant::StateMachineSafety],
        10_000,
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn skipping_the_log_completeness_check_is_caught() {
    let scenario = Scenario {
        configure: skip_log_check,
        ..churn()
    };
    expect_caught(
        "skipping_the_log_completeness_check_is_caught",
        &scenario,
        &[Invariant::LeaderCompleteness, Invariant::StateMachineSafety],
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn forgetting_to_persist_the_vote_is_caught() {
    let mut scenario = Scenario {
        configure: forget_vote,
        ..churn()
    };
    // Quick kills and restarts during elections, with uneven latency so a late vote request
    // reaches a voter after it restarted.
    scenario.faults.weights = FaultWeights {
        partition: 0,
        one_way: 0,
        isolate: 1,
        kill: 6,
        loss: 2,
        duplicate: 0,
        latency: 0,
        leader: 0,
        lag: 0,
    };
    scenario.faults.down_min = 1;
    scenario.faults.down_max = 20;
    scenario.node_link = LinkConfig {
        latency_min: 1,
        latency_max: 40,
        ..LinkConfig::default()
    };
    expect_caught(
        "forgetting_to_persist_the_vote_is_caught",
        &scenario,
        // Two leaders in one term; or what they leave behind when one of them is gone before
        // the checker sees both: a follower that skipped to its commit point appends the other
        // leader's entries of that term after its own (the log-matching check fails).
        &[Invariant::ElectionSafety, Invariant::LogMatching],
    );
}

/// The leader counts its own new entry toward the quorum before its host reports it durable
/// (Raft thesis §10.2.1 allows sending before the fsync, not counting before it). With writes
/// that take longer than a round trip, a follower's answer commits the entry while it exists
/// on one other node only; the leader is killed before its write lands, and a node without
/// the entry wins the next election.
#[wasm_bindgen_test(unsupported = test)]
fn counting_the_leaders_own_entry_before_it_is_durable_is_caught() {
    let mut scenario = Scenario {
        configure: count_own_entry_early,
        disk_latency_chance: 1.0,
        disk_latency_max: 150,
        ..churn()
    };
    scenario.size_weights = [0, 0, 1, 0, 0, 0, 0, 0, 0];
    scenario.faults.weights = FaultWeights {
        partition: 0,
        one_way: 0,
        isolate: 1,
        kill: 2,
        loss: 1,
        duplicate: 0,
        latency: 0,
        leader: 6,
        lag: 0,
    };
    scenario.faults.down_min = 1;
    scenario.faults.down_max = 40;
    expect_caught(
        "counting_the_leaders_own_entry_before_it_is_durable_is_caught",
        &scenario,
        &[
            // A leader that crashes before its entry was durable comes back without it, and
            // may hold another entry at the same index and term (seed 20 since the clients
            // register their sessions).
            Invariant::LogMatching,
            Invariant::LeaderCompleteness,
            Invariant::StateMachineSafety,
            Invariant::Linearizability,
            Invariant::NodeError,
        ],
    );
}

fn conf_change_early(c: &mut Config) {
    c.breaks.conf_change_before_term_commit = true;
}

/// Ongaro's single-server change bug (2015): a new leader changes the configuration before an
/// entry of its term committed, computing the change from the configuration in force while a
/// change of an earlier term waits in its log; the two changes together move two voters, and
/// the old and new configurations' quorums need not overlap. The schedule: small clusters
/// that grow and shrink one voter at a time, every new leader asked for a change of one voter
/// at once, and leaders killed or cut off soon after, so that changes are often still in
/// flight when the next leader takes over.
#[wasm_bindgen_test(unsupported = test)]
fn changing_the_configuration_before_the_terms_first_commit_is_caught() {
    let mut scenario = Scenario {
        configure: conf_change_early,
        size_weights: [0, 0, 2, 2, 1, 0, 0, 0, 0],
        churn: ChurnProfile {
            chance: 1.0,
            gap_min: 30,
            gap_max: 150,
            weights: ChurnWeights {
                add_learner: 3,
                add_voter: 3,
                promote: 3,
                remove_voter: 4,
                remove_leader: 1,
                remove_learner: 0,
                replace: 0,
                transfer: 1,
            },
            patience: 1_000,
            on_election: 1.0,
        },
        ..churn()
    };
    scenario.faults.weights = FaultWeights {
        partition: 3,
        one_way: 1,
        isolate: 2,
        kill: 2,
        loss: 1,
        duplicate: 0,
        latency: 1,
        leader: 6,
        lag: 0,
    };
    expect_caught(
        "changing_the_configuration_before_the_terms_first_commit_is_caught",
        &scenario,
        &[
            Invariant::ElectionSafety,
            Invariant::LogMatching,
            Invariant::LeaderCompleteness,
            Invariant::StateMachineSafety,
            Invariant::Linearizability,
            Invariant::CommittedReads,
            // Changes piled up by new leaders can leave no quorum able to elect anyone: seed 8
            // (since the clients register their sessions) ends leaderless with 16 nodes, and
            // passes without the break.
            Invariant::Liveness,
        ],
    );
}

fn lease_without_margin(c: &mut Config) {
    c.breaks.lease_without_drift_margin = true;
}

/// Lease reads only, on 3 nodes whose clocks run up to `drift_ppm` off, and faults
/// that mostly cut the leader off while clients still reach it: the deposed leader answers
/// lease reads until its lease ends by its own clock, while the others, on faster clocks,
/// have elected a leader that takes writes.
fn lease_scenario(configure: fn(&mut Config), drift_ppm: i32) -> Scenario {
    let mut s = Scenario {
        configure,
        size_weights: [0, 0, 1, 0, 0, 0, 0, 0, 0],
        clients_min: 3,
        clients_max: 4,
        ops_min: 20,
        ops_max: 40,
        stale_read_chance: 0.0,
        lease_read_chance: 1.0,
        drift_chance: 1.0,
        drift_max_ppm: drift_ppm,
        churn: ChurnProfile {
            chance: 0.0,
            ..ChurnProfile::default()
        },
        ..churn()
    };
    s.workload.think_min = 1;
    s.workload.think_max = 30;
    s.workload.follower_reads = 0.0;
    // Clients give up on a cut-off leader fast, so some reach the new one while the old
    // one's lease still runs.
    s.client.request_timeout = 40;
    s.faults.weights = FaultWeights {
        partition: 2,
        one_way: 0,
        isolate: 0,
        kill: 0,
        loss: 0,
        duplicate: 0,
        latency: 0,
        leader: 8,
        lag: 0,
    };
    s.faults.duration_min = 300;
    s
}

/// Leases that last the whole election timeout, with no room for clocks that disagree: a
/// leader whose clock runs slow still serves lease reads after the others, on fast clocks,
/// elected a new leader and committed writes (the linearizability check fails).
#[wasm_bindgen_test(unsupported = test)]
#[ignore = "the random schedule served 61,911 lease reads in 2,000 seeds without a stale one once \
            the log-matching bug it used to hit first (seed 1938) was fixed; the directed \
            a_lease_without_the_drift_margin_serves_a_deposed_leaders_stale_read catches the break"]
fn lease_reads_without_the_drift_margin_are_caught_under_drift() {
    expect_caught(
        "lease_reads_without_the_drift_margin_are_caught_under_drift",
        &lease_scenario(lease_without_margin, 400_000),
        &[Invariant::Linearizability],
    );
}

/// The same schedule with the margin kept and clocks within ±5% (the default sweep's drift,
/// well inside `lease_drift_margin`): no lease read is ever stale.
#[wasm_bindgen_test(unsupported = test)]
fn lease_reads_with_drift_inside_the_margin_stay_linearizable() {
    let scenario = lease_scenario(|_| {}, 50_000);
    let seeds = match env_seed() {
        Some(s) => s..s + 1,
        None => 0..LEASE_CLEAN_SEEDS,
    };
    let mut lease_reads = 0;
    for seed in seeds {
        match scenario.run(seed) {
            Ok(r) => lease_reads += r.stats.lease_reads,
            Err(f) => panic!(
                "{f}\nreplay: {}",
                replay_command(
                    "lease_reads_with_drift_inside_the_margin_stay_linearizable",
                    seed
                )
            ),
        }
    }
    assert!(lease_reads > 0, "no read was served on a lease");
}

/// Seeds the clean lease test runs.
const LEASE_CLEAN_SEEDS: u64 = 300;

/// The deposed-leader schedule, directed: the leader's clock runs `leader_ppm` off and the
/// others' `others_ppm`; it is cut off from the other nodes (clients still reach it), the
/// others elect a leader and commit a write, then a lease read goes to the old leader. Returns
/// the history, or `None` when the schedule did not play out (no new leader in time, say).
fn deposed_leader_lease_read(
    seed: u64,
    breaks: bool,
    leader_ppm: i32,
    others_ppm: i32,
) -> Option<raftkv_core::sim::History> {
    use raftkv_core::sim::{ClientOp, Cluster, SimConfig};
    let mut cfg = SimConfig::new(seed, 3);
    cfg.clients = 2;
    cfg.raft.breaks.lease_without_drift_margin = breaks;
    let mut c = Cluster::new(cfg).ok()?;
    c.run_while_not(5_000, |c| c.leader().is_some()).ok()?;
    let old = c.leader()?;
    for i in 0..3 {
        let ppm = if i == old { leader_ppm } else { others_ppm };
        c.set_clock_drift(i, ppm).ok()?;
    }
    let put = |v: &str| ClientOp::Put {
        key: "k".into(),
        value: v.into(),
    };
    c.set_client_target(0, old);
    c.submit(0, put("v1"));
    let t = c.now() + 5_000;
    c.run_while_not(t, |c| c.clients_done()).ok()?;
    c.isolate(old).ok()?;
    let t = c.now() + 5_000;
    if !c
        .run_while_not(t, |c| c.leader().is_some_and(|l| l != old))
        .ok()?
    {
        return None;
    }
    let new = c.leader()?;
    c.set_client_target(0, new);
    c.submit(0, put("v2"));
    let t = c.now() + 5_000;
    c.run_while_not(t, |c| c.clients_done()).ok()?;
    c.run_for(1).ok()?;
    c.set_client_target(1, old);
    c.submit(
        1,
        ClientOp::Get {
            key: "k".into(),
            policy: raftkv_core::ReadPolicy::Lease,
        },
    );
    let t = c.now() + 10_000;
    c.run_while_not(t, |c| c.clients_done()).ok()?;
    Some(c.history().clone())
}

/// Directed form of the lease break: the old leader's clock runs 40% slow and the others'
/// 40% fast, far beyond the 30 ms margin. Without the margin the old leader still holds its
/// lease when a lease read reaches it after the new leader committed a write, and the
/// linearizability check fails within a bounded number of seeds; with the margin, under
/// drift inside it (±5%), the same schedule never serves a stale read.
#[wasm_bindgen_test(unsupported = test)]
fn a_lease_without_the_drift_margin_serves_a_deposed_leaders_stale_read() {
    use raftkv_core::sim::linearizability;
    let mut caught = None;
    for seed in 0..200 {
        let Some(h) = deposed_leader_lease_read(seed, true, -400_000, 400_000) else {
            continue;
        };
        if linearizability::check(&h).is_err() {
            caught = Some(seed);
            break;
        }
    }
    let Some(seed) = caught else {
        panic!("the lease break went unnoticed in 200 seeds of the directed schedule");
    };
    println!("lease break caught at directed seed {seed}");
    for seed in 0..50 {
        if let Some(h) = deposed_leader_lease_read(seed, false, -50_000, 50_000) {
            assert!(
                linearizability::check(&h).is_ok(),
                "seed {seed}: a stale lease read with drift inside the margin:\n{}",
                h.to_jsonl()
            );
        }
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn session_expiry_by_local_clock_is_caught() {
    // Every seed expires sessions by a short ttl; nodes apply the same index at different
    // times of their own clocks, so their session tables part.
    let scenario = Scenario {
        session_expiry_by_local_clock: true,
        session_weights: [0, 1, 0, 0],
        trace: TraceMode::Off,
        ..Scenario::default()
    };
    expect_caught(
        "session_expiry_by_local_clock_is_caught",
        &scenario,
        &[
            Invariant::SessionExpiry,
            Invariant::Linearizability,
            Invariant::CommittedReads,
        ],
    );
}

/// The receiver takes snapshot chunks at any offset ahead of its bytes (and trusts the
/// checksum to nobody): with small chunks on a lossy, duplicating, reordering network it
/// installs a snapshot with bytes missing or out of place.
fn snapshot_chunk_any_offset(c: &mut Config) {
    c.breaks.snapshot_chunk_any_offset = true;
    c.snapshot_chunk_size = 64;
    c.snapshot_window = 3;
}

/// A scenario that snapshots every few entries and loses, duplicates and delays messages
/// often, so lagging and restarted followers need snapshots that cross in many chunks.
fn snapshot_chunks(configure: fn(&mut Config)) -> Scenario {
    let mut s = Scenario {
        size_weights: [0, 0, 6, 0, 2, 0, 0, 0, 0],
        clients_min: 2,
        clients_max: 3,
        ops_min: 20,
        ops_max: 40,
        snapshot_weights: [0, 1],
        snapshot_threshold_min: 1,
        snapshot_threshold_max: 4,
        faults: FaultProfile {
            weights: FaultWeights {
                partition: 1,
                one_way: 1,
                isolate: 2,
                kill: 3,
                loss: 3,
                duplicate: 3,
                latency: 2,
                leader: 1,
                lag: 4,
            },
            ..FaultProfile::default()
        },
        trace: TraceMode::Off,
        configure,
        ..Scenario::default()
    };
    s.faults.down_min = 1;
    s
}

#[wasm_bindgen_test(unsupported = test)]
fn taking_snapshot_chunks_at_any_offset_is_caught() {
    expect_caught(
        "taking_snapshot_chunks_at_any_offset_is_caught",
        &snapshot_chunks(snapshot_chunk_any_offset),
        &[
            Invariant::NodeError,
            Invariant::StateMachineSafety,
            Invariant::CommittedReads,
            Invariant::Linearizability,
        ],
    );
}

/// The host completes a received snapshot while the install of an earlier one is still being
/// persisted (a slow disk pipelines Readys): that install then finds a different snapshot in
/// the store, and the node stops with an error instead of installing either.
fn snapshot_over_unfinished_install(c: &mut Config) {
    c.breaks.snapshot_over_unfinished_install = true;
    c.max_entries_per_append = 2;
}

#[wasm_bindgen_test(unsupported = test)]
fn completing_a_snapshot_over_an_unfinished_install_is_caught() {
    expect_caught(
        "completing_a_snapshot_over_an_unfinished_install_is_caught",
        &Scenario {
            // Every seed's writes take time, so Readys that install are in flight a while.
            disk_latency_chance: 1.0,
            disk_latency_max: 40,
            // The interleaving is rare (one seed in a few hundred): the search keeps the seeds
            // it was tuned on, without the storage faults that stop and restart nodes.
            fsync_failure_chance: 0.0,
            corrupt_read_chance: 0.0,
            ..snapshot_chunks(snapshot_over_unfinished_install)
        },
        &[Invariant::NodeError],
    );
}

/// The same scenario with the protocol as it is: no seed of the search breaks.
#[wasm_bindgen_test(unsupported = test)]
fn snapshot_chunks_on_a_lossy_network_stay_safe() {
    fn small_chunks(c: &mut Config) {
        c.snapshot_chunk_size = 64;
        c.snapshot_window = 3;
    }
    let scenario = snapshot_chunks(small_chunks);
    for seed in 0..200 {
        if let Err(f) = scenario.run(seed) {
            panic!(
                "seed {seed}: {f}\nreplay: {}",
                replay_command("snapshot_chunks_on_a_lossy_network_stay_safe", seed)
            );
        }
    }
}

fn ack_before_fsync(c: &mut Config) {
    c.breaks.ack_before_fsync = true;
}

/// Every message leaves before its Ready's writes are durable: a follower acknowledges
/// entries it has not written yet, the leader commits on that acknowledgement, and a crash
/// takes the entries back from the follower (kill -9 of a real process keeps the page cache
/// and would not show this; the simulator's disk drops what was not synced). With the leader
/// killed too, a node without the committed entries can win the next election.
#[wasm_bindgen_test(unsupported = test)]
fn acknowledging_before_the_fsync_is_caught() {
    let mut scenario = Scenario {
        configure: ack_before_fsync,
        disk_latency_chance: 1.0,
        disk_latency_max: 150,
        ..churn()
    };
    scenario.size_weights = [0, 0, 1, 0, 0, 0, 0, 0, 0];
    scenario.faults.weights = FaultWeights {
        partition: 0,
        one_way: 0,
        isolate: 1,
        kill: 6,
        loss: 1,
        duplicate: 0,
        latency: 0,
        leader: 4,
        lag: 0,
    };
    scenario.faults.down_min = 1;
    scenario.faults.down_max = 40;
    expect_caught_past(
        "acknowledging_before_the_fsync_is_caught",
        &scenario,
        // A committed entry missing from a later leader (or what follows from it).
        &[
            Invariant::ElectionSafety,
            Invariant::LogMatching,
            Invariant::LeaderCompleteness,
            Invariant::StateMachineSafety,
            Invariant::Linearizability,
            Invariant::NodeError,
        ],
        // Also caught, but not the loss itself: a follower that lost what it acknowledged is
        // one the leader believes caught up (liveness), or holds a session table its peers do
        // not at the same index (session expiry).
        &[Invariant::Liveness, Invariant::SessionExpiry],
        MAX_SEEDS,
    );
}

fn continue_after_fsync_error(c: &mut Config) {
    c.breaks.continue_after_fsync_error = true;
}

/// A host that ignores a failed sync and goes on ("fsyncgate": retry the fsync, it succeeds,
/// the dropped pages are gone) sends the acknowledgements and votes that waited for a write
/// the disk lost; the next restart reads a log without them. Syncs fail often here, on slow
/// disks, with many kills. The honest host stops at the error, and the seed the break fails
/// passes with it.
#[wasm_bindgen_test(unsupported = test)]
fn continuing_after_a_failed_fsync_is_caught() {
    let mut scenario = Scenario {
        configure: continue_after_fsync_error,
        disk_latency_chance: 1.0,
        disk_latency_max: 50,
        fsync_failure_chance: 1.0,
        fsync_failure_rate: 0.05,
        corrupt_read_chance: 0.0,
        ..churn()
    };
    scenario.size_weights = [0, 0, 1, 0, 0, 0, 0, 0, 0];
    scenario.faults.weights = FaultWeights {
        partition: 0,
        one_way: 0,
        isolate: 1,
        kill: 6,
        loss: 1,
        duplicate: 0,
        latency: 0,
        leader: 4,
        lag: 0,
    };
    scenario.faults.down_min = 1;
    scenario.faults.down_max = 40;
    let test = "continuing_after_a_failed_fsync_is_caught";
    let seed = expect_caught_past(
        test,
        &scenario,
        // A committed entry or a vote missing after a restart (or what follows from it).
        &[
            Invariant::ElectionSafety,
            Invariant::LogMatching,
            Invariant::LeaderCompleteness,
            Invariant::StateMachineSafety,
            Invariant::Linearizability,
            Invariant::CommittedReads,
            Invariant::NodeError,
        ],
        // Also consequences, as for ack_before_fsync: a follower that lost what it
        // acknowledged stalls its leader, or holds another session table at an index.
        &[Invariant::Liveness, Invariant::SessionExpiry],
        MAX_SEEDS,
    );
    passes_without_the_break(test, &scenario, seed);
}

fn ignore_log_checksum(c: &mut Config) {
    c.breaks.ignore_log_checksum = true;
}

/// A restart that reads its log without the checksums takes a damaged record for a real
/// one: a synced entry comes back with another term (the flipped bit is in the term's last
/// digit). Every seed here has corrupt reads on a fixed three-node cluster with many kills;
/// the honest restart refuses (or cuts a damaged last record), and the seed passes with it.
#[wasm_bindgen_test(unsupported = test)]
fn ignoring_the_log_checksum_is_caught() {
    let mut scenario = Scenario {
        configure: ignore_log_checksum,
        disk_latency_chance: 1.0,
        disk_latency_max: 50,
        fsync_failure_chance: 0.0,
        corrupt_read_chance: 1.0,
        ..churn()
    };
    scenario.size_weights = [0, 0, 1, 0, 0, 0, 0, 0, 0];
    scenario.churn.chance = 0.0;
    let test = "ignoring_the_log_checksum_is_caught";
    let seed = expect_caught_past(
        test,
        &scenario,
        // A replica whose log holds an entry no leader wrote.
        &[
            Invariant::LogMatching,
            Invariant::LeaderCompleteness,
            Invariant::StateMachineSafety,
            Invariant::ElectionSafety,
            Invariant::NodeError,
        ],
        &[],
        MAX_SEEDS,
    );
    passes_without_the_break(test, &scenario, seed);
}
