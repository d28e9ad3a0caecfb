//! Power loss (issue 16 point 5): every node's data dir is on its own `raftkv-lossyfs` mount,
//! and a node's "power cut" is kill -9 of its process and then a cut of its filesystem, which
//! throws away everything it wrote but did not fsync (kill -9 alone keeps the page cache, so
//! it cannot catch a missing fsync). After each cut every acknowledged write must still be
//! readable, linearizably through the leader and on every cut node once it has rejoined.
//!
//! The proof that this catches a missing fsync is `a_log_that_skips_its_fsync_loses_acknowledged_writes_to_a_power_cut`:
//! a failpoints build of kvserver whose log skips its fdatasync but reports success
//! (`FAILPOINTS=log-skip-fsync=return`), and a whole-cluster cut, must lose acknowledged
//! writes. It is `#[ignore]`d because it builds a second kvserver; run it with
//! `cargo test -p raftkv-tests --test power_loss -- --ignored`.
//!
//! Needs /dev/fuse and root (the filesystem mounts in this process). docs/power-loss.md has the
//! model and what it cannot catch.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use raftkv_lossyfs::LossyFs;
use raftkv_tests::wait::poll_until;
use raftkv_tests::{Cluster, ClusterConfig};
use reqwest::Method;
use tempfile::TempDir;

const NODES: usize = 3;
/// Generous for slow CI: elections take a few hundred milliseconds.
const LEADER_TIMEOUT: Duration = Duration::from_secs(20);
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(20);
/// Writes acknowledged before each cut: overwrites of the same keys, so a lost write shows as
/// an old value as well as a missing key.
const KEYS: usize = 20;

/// One lossy disk per node: each node's data dir is `data/` on its own mount.
struct Disks {
    /// Declared before the mounts' dirs so they unmount before their dirs are deleted.
    mounts: Vec<LossyFs>,
    _dirs: Vec<TempDir>,
}

impl Disks {
    fn mount(n: usize) -> Disks {
        let mut mounts = Vec::new();
        let mut dirs = Vec::new();
        for _ in 0..n {
            let dir = tempfile::Builder::new()
                .prefix("raftkv-lossyfs-")
                .tempdir()
                .expect("temp dir for a mount");
            mounts.push(LossyFs::mount(dir.path()).expect("mount lossyfs (needs /dev/fuse, root)"));
            dirs.push(dir);
        }
        Disks {
            mounts,
            _dirs: dirs,
        }
    }

    fn data_dirs(&self) -> Vec<PathBuf> {
        self.mounts.iter().map(|m| m.path().join("data")).collect()
    }
}

/// Which nodes one cycle cuts.
#[derive(Clone, Copy, Debug)]
enum Cut {
    AFollower,
    TheLeader,
    LeaderAndAFollower,
    Everyone,
}

/// What a run saw.
#[derive(Debug, Default)]
struct Outcome {
    /// Writes acknowledged over the whole run.
    acknowledged: usize,
    /// Acknowledged writes a linearizable read did not return after a cut:
    /// (cycle, key, acknowledged value, value read).
    lost: Vec<(usize, String, String, Option<String>)>,
    /// Nodes that refused to restart after a cut because their disk was inconsistent:
    /// (cycle, node, the error). The run stops at the first.
    refused: Vec<(usize, String, String)>,
    /// Files and directories the cuts reverted, and inodes they lost, summed.
    files_reverted: usize,
    dirs_reverted: usize,
    inodes_lost: usize,
    /// How long the run took.
    elapsed: Duration,
}

fn fast_args() -> Vec<String> {
    ["--election-timeout-ms", "200-400", "--heartbeat-ms", "40"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// A linearizable read of `key` through node `i` (redirected to the leader).
async fn read_index_get(c: &Cluster, i: usize, key: &str) -> Result<Option<String>, String> {
    let r = c
        .client(i)
        .request(
            Method::GET,
            &format!("/kv/{key}?consistency=readindex"),
            None,
        )
        .await?;
    match r.status {
        200 => Ok(r.body["value"].as_str().map(str::to_string)),
        404 => Ok(None),
        s => Err(format!(
            "readindex GET {key} at {}: {s} {}",
            c.id(i),
            r.body
        )),
    }
}

/// Writes `key=value` through the leader until one attempt is acknowledged. Every attempt
/// writes the same value, so a retry of an ambiguous failure changes nothing.
async fn put_acknowledged(c: &mut Cluster, key: &str, value: &str) -> Result<(), String> {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    loop {
        let leader = c.wait_for_leader(LEADER_TIMEOUT).await?;
        match c.client(leader).put(key, value).await {
            Ok(r) if r.ok() => return Ok(()),
            Ok(r) if Instant::now() >= deadline => {
                return Err(format!("PUT {key}: {} {}", r.status, r.body));
            }
            Err(e) if Instant::now() >= deadline => return Err(format!("PUT {key}: {e}")),
            _ => tokio::time::sleep(raftkv_tests::wait::POLL_INTERVAL).await,
        }
    }
}

/// Runs `plan`, one cycle per entry: write [`KEYS`] acknowledged writes, power-cut the
/// cycle's nodes (kill -9, then the filesystem), restart them, and read every acknowledged
/// write back. Returns what it saw; panics only on harness failures (a node that does not
/// restart, no leader, a cut node that never catches up while no write was lost).
async fn run(bin: Option<PathBuf>, env: Vec<(String, String)>, plan: &[Cut]) -> Outcome {
    let started = Instant::now();
    let mut disks = Disks::mount(NODES);
    let mut cfg = ClusterConfig::new(NODES);
    cfg.proxies = false;
    cfg.extra_args = fast_args();
    cfg.bin = bin;
    cfg.env = env;
    cfg.data_dirs = disks.data_dirs();
    let mut c = Cluster::start(cfg).await.expect("cluster starts");
    eprintln!("cluster started in {:?}", started.elapsed());
    let mut out = Outcome::default();
    // The value each key was last acknowledged with.
    let mut acked: BTreeMap<String, String> = BTreeMap::new();

    for (cycle, cut) in plan.iter().enumerate() {
        let t = Instant::now();
        for k in 0..KEYS {
            let (key, value) = (format!("k{k}"), format!("c{cycle}-v{k}"));
            put_acknowledged(&mut c, &key, &value)
                .await
                .unwrap_or_else(|e| panic!("cycle {cycle}: {e}"));
            acked.insert(key, value);
            out.acknowledged += 1;
        }
        eprintln!("cycle {cycle}: {KEYS} writes in {:?}", t.elapsed());
        let t = Instant::now();
        let leader = c.wait_for_leader(LEADER_TIMEOUT).await.expect("a leader");
        let follower = (leader + 1) % NODES;
        let victims: Vec<usize> = match cut {
            Cut::AFollower => vec![follower],
            Cut::TheLeader => vec![leader],
            Cut::LeaderAndAFollower => vec![leader, follower],
            Cut::Everyone => (0..NODES).collect(),
        };
        // Every victim dies before any disk is cut: the process must not see its own cut.
        for &v in &victims {
            c.kill(v).expect("kill -9");
        }
        for &v in &victims {
            let r = disks.mounts[v].power_cut().expect("power cut");
            eprintln!("cycle {cycle} ({cut:?}): cut {}: {r:?}", c.id(v));
            out.files_reverted += r.files_reverted;
            out.dirs_reverted += r.dirs_reverted;
            out.inodes_lost += r.inodes_lost;
        }
        let mut refused = false;
        for &v in &victims {
            match c.restart(v).await {
                Ok(()) => {}
                // A node that finds its own disk inconsistent (its state machine ahead of
                // what is left of its log) refuses to start: the loss caught by kvserver's
                // own check rather than by the reads below.
                Err(e) if e.contains("corrupt state") => {
                    let line = e
                        .lines()
                        .find(|l| l.contains("corrupt state"))
                        .unwrap_or("");
                    eprintln!("cycle {cycle}: {} REFUSED to start: {line}", c.id(v));
                    out.refused
                        .push((cycle, c.id(v).to_string(), line.to_string()));
                    refused = true;
                }
                Err(e) => panic!("cycle {cycle}: {} restarts: {e}", c.id(v)),
            }
        }
        if refused {
            break;
        }
        c.wait_for_leader(LEADER_TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("cycle {cycle}: {e}"));
        eprintln!("cycle {cycle}: cut and restarted in {:?}", t.elapsed());
        let t = Instant::now();

        // Linearizable reads of every acknowledged write.
        let mut lost_now = 0;
        for (key, value) in &acked {
            let read = poll_until(&format!("a read of {key}"), CONVERGE_TIMEOUT, || async {
                read_index_get(&c, victims[0], key).await.map(Some)
            })
            .await
            .unwrap_or_else(|e| panic!("cycle {cycle}: {e}"));
            if read.as_deref() != Some(value) {
                eprintln!("cycle {cycle}: LOST {key}: acknowledged {value:?}, read {read:?}");
                out.lost
                    .push((cycle, key.clone(), value.clone(), read.clone()));
                lost_now += 1;
            }
        }
        eprintln!("cycle {cycle}: read back in {:?}", t.elapsed());
        if lost_now > 0 {
            // The cluster agrees on some other history; a cut node catching up to the
            // acknowledged one cannot be expected.
            continue;
        }
        // Every cut node rejoins and holds every acknowledged write itself.
        for &v in &victims {
            let client = c.client(v);
            for (key, value) in &acked {
                poll_until(
                    &format!("{} to hold {key}={value}", c.id(v)),
                    CONVERGE_TIMEOUT,
                    || async {
                        Ok((client.get(key).await?.as_deref() == Some(value.as_str()))
                            .then_some(()))
                    },
                )
                .await
                .unwrap_or_else(|e| panic!("cycle {cycle}: {e}"));
            }
        }
    }
    drop(c);
    out.elapsed = started.elapsed();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_power_cuts_of_a_follower_the_leader_a_majority_and_everyone() {
    let plan = [
        Cut::AFollower,
        Cut::TheLeader,
        Cut::LeaderAndAFollower,
        Cut::Everyone,
    ];
    let out = run(None, Vec::new(), &plan).await;
    eprintln!("power loss run: {out:?}");
    assert!(
        out.lost.is_empty() && out.refused.is_empty(),
        "acknowledged writes lost to a power cut: {:?}; nodes refusing to start: {:?}",
        out.lost,
        out.refused
    );
    assert_eq!(out.acknowledged, KEYS * plan.len());
    // The cuts did throw data away: otherwise this test would pass with fsync-free disks.
    assert!(
        out.files_reverted > 0,
        "no cut reverted anything: the lossy filesystem lost nothing, {out:?}"
    );
}

/// The proof: with the log's fsync skipped (and reported done), a whole-cluster power cut
/// loses acknowledged writes, and the run reports them: as acknowledged writes the cluster no
/// longer returns, or as a node refusing to start because its state machine is ahead of its
/// log (it applied, and durably committed, entries its log no longer has). Needs the failpoints build.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "builds kvserver-failpoints; run with --ignored"]
async fn a_log_that_skips_its_fsync_loses_acknowledged_writes_to_a_power_cut() {
    let bin = raftkv_tests::bin::kvserver_failpoints().expect("kvserver-failpoints builds");
    let env = vec![(
        "FAILPOINTS".to_string(),
        "log-skip-fsync=return".to_string(),
    )];
    let out = run(Some(bin), env, &[Cut::Everyone]).await;
    eprintln!("proof run: {out:?}");
    // Which of the two shows depends on whether the state machine made one of its periodic
    // durable commits before the cut: then a node finds its engine ahead of its log.
    assert!(
        !out.lost.is_empty() || !out.refused.is_empty(),
        "a log that never fsyncs lost nothing to a whole-cluster power cut: {out:?}"
    );
}
