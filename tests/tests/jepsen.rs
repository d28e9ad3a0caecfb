//! Randomized, seeded Jepsen-style runs of real kvserver clusters (tests/src/jepsen.rs): random
//! clients and a nemesis, then a quiet phase and the checks. A failure prints the seed and the
//! one command that replays the schedule.
//!
//! - `short_randomized_run_passes_every_check`: 3 nodes, 45 s of faults (the test suite's run);
//! - `long_randomized_run_passes_every_check` (ignored): 5 nodes, 30 minutes by default;
//! - `stale_reads_at_followers_are_caught`: reads forced to `stale` and recorded as if they were
//!   linearizable, under partitions: the checkers must report the violation.
//!
//! `RAFTKV_JEPSEN_SEED`, `RAFTKV_JEPSEN_NODES`, `RAFTKV_JEPSEN_SECS`, `RAFTKV_JEPSEN_CLIENTS`,
//! `RAFTKV_JEPSEN_HISTORY` and `RAFTKV_JEPSEN_FAULTS` (e.g. `failpoint,kill`) override the
//! defaults.

use raftkv_tests::jepsen::{self, JepsenConfig};
use raftkv_tests::nemesis::NemesisConfig;

async fn run_and_check(config: Result<JepsenConfig, String>, test: &str) {
    let config = config.unwrap_or_else(|e| panic!("{e}"));
    let replay = config.replay_command(test);
    eprintln!("jepsen: replay with: {replay}");
    let report = match jepsen::run(config).await {
        Ok(r) => r,
        Err(e) => panic!("the run could not complete: {e}\nreplay: {replay}"),
    };
    eprintln!("{}", report.summary());
    assert!(
        report.all_passed(),
        "a check failed (see above)\nreplay: {replay}"
    );
    let answered = report.history.counts().0;
    assert!(
        answered >= 100,
        "too few answered operations: {answered}\nreplay: {replay}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a real cluster under a nemesis: scripts/test.sh runs it in a step of its own, alone"]
async fn short_randomized_run_passes_every_check() {
    run_and_check(
        JepsenConfig::from_env(3, 45),
        "short_randomized_run_passes_every_check",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: 30 minutes by default; run with --ignored (see the README)"]
async fn long_randomized_run_passes_every_check() {
    run_and_check(
        JepsenConfig::from_env(5, 1800),
        "long_randomized_run_passes_every_check",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "as the short run: scripts/test.sh runs it in the same step, after it"]
async fn stale_reads_at_followers_are_caught() {
    let mut config = JepsenConfig::from_env(3, 25).unwrap_or_else(|e| panic!("{e}"));
    config.force_stale = true;
    config.families = 1;
    // Partitions only, whatever RAFTKV_JEPSEN_FAULTS says.
    config.nemesis = NemesisConfig::partitions();
    config.faults = None;
    let replay = config.replay_command("stale_reads_at_followers_are_caught");
    eprintln!("jepsen: replay with: {replay}");
    let report = jepsen::run(config).await.unwrap();
    eprintln!("{}", report.summary());
    let core = report
        .verdicts
        .iter()
        .find(|v| v.name == "linearizability (core)")
        .unwrap();
    let err = core.outcome.as_ref().expect_err(&format!(
        "stale reads recorded as linearizable under partitions passed the check\nreplay: {replay}"
    ));
    // The report names the offending operation: a read (only reads were made stale).
    assert!(
        err.contains("not linearizable") && err.contains("\"op\":\"get\"")
            || err.contains("\"op\":\"mget\""),
        "{err}"
    );
    assert!(
        !report.passed("linearizability (check_history.py)"),
        "check_history.py accepted it\nreplay: {replay}"
    );
    // Everything else still holds: the violation is the reads', not the writes'.
    assert!(report.passed("durability"), "{}", report.summary());
    assert!(report.passed("liveness"), "{}", report.summary());
}
