//! Membership changes of real kvserver processes (issue 12), each under `kvctl bench --verify`
//! load and each ending with the bench's read-back finding every acknowledged put: growing
//! 3 → 5 with nodes started with `--join`, replacing a voter, removing the leader, a removed
//! node restarted with its old data, and a node restarted with a wrong `--peers`. Changes go
//! through `kvctl member`, mostly sent to a follower so that its redirect is followed. Every
//! wait polls with a deadline.

use std::process::Stdio;
use std::time::Duration;

use raftkv_tests::wait::poll_until;
use raftkv_tests::{Bench, Cluster, ClusterConfig};
use reqwest::Method;
use serde_json::Value;

/// Generous for slow CI: an election takes a few hundred milliseconds, a change one commit.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The election timeout's upper bound the clusters run with (below), in milliseconds. Not
/// the shortest the suite uses elsewhere: these clusters grow to five processes, and a loaded
/// machine should not depose a leader (or time out its read rounds) by itself.
const ELECTION_MAX_MS: u64 = 600;

/// Three nodes with short timers and `extra` arguments (nodes added later get them too),
/// links through proxies.
async fn start3(extra: &[&str]) -> Cluster {
    let mut cfg = ClusterConfig::new(3);
    cfg.extra_args = ["--election-timeout-ms", "300-600", "--heartbeat-ms", "50"]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
    Cluster::start(cfg).await.expect("cluster starts")
}

fn endpoints(c: &Cluster, nodes: &[usize]) -> Vec<String> {
    nodes.iter().map(|&i| c.addr(i).to_string()).collect()
}

/// `kvctl --json --endpoints <via> member <args>`: the JSON answer, or kvctl's output.
async fn member(c: &Cluster, via: &[usize], args: &[&str]) -> Result<Value, String> {
    let kvctl = raftkv_tests::bin::kvctl()?;
    let out = tokio::process::Command::new(kvctl)
        .args(["--json", "--timeout-ms", "15000", "--endpoints"])
        .arg(endpoints(c, via).join(","))
        .arg("member")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("running kvctl: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!("kvctl member {args:?}: {stderr} {stdout}"));
    }
    serde_json::from_str(&stdout).map_err(|e| format!("kvctl member {args:?}: {e}: {stdout}"))
}

/// A change through kvctl, retried while the leader refuses it for now: a learner not caught
/// up yet (the bench keeps the log growing), another change still under way, or too few
/// voters heard from lately (a slow machine).
async fn member_until_done(c: &Cluster, via: &[usize], args: &[&str]) -> Value {
    let what = format!("kvctl member {args:?} to succeed");
    let done = poll_until(&what, TIMEOUT, || async move {
        match member(c, via, args).await {
            Ok(v) => Ok(Some(Ok(v))),
            Err(e)
                if ["not_caught_up", "change_in_progress", "no_quorum"]
                    .iter()
                    .any(|code| e.contains(code)) =>
            {
                Err(e)
            }
            Err(e) => Ok(Some(Err(e))),
        }
    })
    .await;
    match done {
        Ok(Ok(v)) => v,
        Ok(Err(e)) | Err(e) => panic!("{e}"),
    }
}

/// `GET /cluster` at node `i`, following its redirect to the leader.
async fn cluster_view(c: &Cluster, i: usize, query: &str) -> Result<Value, String> {
    let r = c
        .client(i)
        .request(Method::GET, &format!("/cluster{query}"), None)
        .await?;
    if r.status == 200 {
        Ok(r.body)
    } else {
        Err(format!(
            "GET /cluster at {}: {} {}",
            c.id(i),
            r.status,
            r.body
        ))
    }
}

/// The ids in a list field of a cluster view.
fn ids(v: &Value, field: &str) -> Vec<String> {
    v[field]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// A number in node `i`'s `/status`.
async fn status_u64(c: &Cluster, i: usize, field: &str) -> Result<u64, String> {
    let s = c.client(i).status().await?;
    s[field]
        .as_u64()
        .ok_or_else(|| format!("no {field} in {s}"))
}

/// Waits until node `i` has applied `index`.
async fn wait_applied(c: &Cluster, i: usize, index: u64) {
    let what = format!("{} to apply {index}", c.id(i));
    poll_until(&what, TIMEOUT, || async move {
        Ok((status_u64(c, i, "last_applied").await? >= index).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", c.log_of(i)));
}

/// Waits until node `i` (a leader) has committed `more` entries beyond what it had: the bench
/// is writing through it.
async fn wait_commits(c: &Cluster, i: usize, more: u64) {
    let from = status_u64(c, i, "commit_index").await.unwrap();
    let what = format!("{} to commit {more} more entries", c.id(i));
    poll_until(&what, TIMEOUT, || async move {
        Ok((status_u64(c, i, "commit_index").await? >= from + more).then_some(()))
    })
    .await
    .unwrap();
}

/// Waits until the leader reports learner `id` within `lag` entries of its log.
async fn wait_caught_up(c: &Cluster, via: usize, id: &str, lag: u64) {
    let what = format!("{id} to catch up within {lag} entries");
    poll_until(&what, TIMEOUT, || async move {
        let v = cluster_view(c, via, "").await?;
        let m = v["members"].as_array().and_then(|ms| {
            ms.iter()
                .find(|m| m["id"] == id && m["match_index"].as_u64() > Some(0))
        });
        Ok(m.and_then(|m| m["lag"].as_u64()).filter(|&l| l <= lag))
    })
    .await
    .unwrap();
}

/// Three nodes under a verifying bench that has already written through the leader: the
/// cluster, the leader's position and the bench. The bench's endpoints are the three founding
/// members; kvctl follows redirects to whichever member leads.
async fn loaded_cluster(extra: &[&str]) -> (Cluster, usize, Bench) {
    let mut c = start3(extra).await;
    let leader = c.wait_for_leader(TIMEOUT).await.unwrap();
    let bench = Bench::start(&endpoints(&c, &[0, 1, 2]), &[]).unwrap();
    wait_commits(&c, leader, 100).await;
    (c, leader, bench)
}

/// Stops the bench: its read-back must find every acknowledged put, of which there were many.
async fn finish(bench: Bench) {
    let r = bench.finish().await.unwrap();
    assert!(r.acked_puts > 100, "{}", r.report);
}

/// 3 → 5: two nodes started with `--join` are added as learners, catch up (through a snapshot:
/// the leader compacts its log often) and are promoted; every member then applies what the
/// leader commits. One of them restarts without `--join` from the configuration its data dir
/// stored, and catches up again.
#[tokio::test]
async fn growing_three_to_five_under_load_loses_no_acknowledged_write() {
    let compact = ["--snapshot-threshold", "50", "--snapshot-trailing", "0"];
    let (mut c, leader, bench) = loaded_cluster(&compact).await;
    let follower = (leader + 1) % 3;
    for _ in 0..2 {
        let i = c.add_node().await.unwrap();
        let (id, addr) = (c.id(i).to_string(), c.peer_addr(i).to_string());
        let v = member(&c, &[follower], &["add-learner", &id, &addr])
            .await
            .unwrap();
        assert!(ids(&v, "learners").contains(&id), "{v}");
        assert!(!ids(&v, "voters").contains(&id), "{v}");
        wait_caught_up(&c, follower, &id, 50).await;
        let v = member_until_done(&c, &[follower], &["promote", &id]).await;
        assert!(ids(&v, "voters").contains(&id), "{v}");
    }
    for i in [3, 4] {
        // A follower acknowledges a snapshot once its bytes are durable, before its state
        // machine has installed them (seconds on a loaded machine): the log line comes later.
        let what = format!("{} to restore its state machine from a snapshot", c.id(i));
        let c = &c;
        let restored = poll_until(&what, TIMEOUT, || async move {
            let log = c.log_of(i);
            Ok(log
                .contains("state machine restored from a snapshot")
                .then_some(()))
        })
        .await;
        assert!(restored.is_ok(), "{restored:?}; log:\n{}", c.log_of(i));
    }
    let v = cluster_view(&c, follower, "").await.unwrap();
    assert_eq!(ids(&v, "voters"), ["n1", "n2", "n3", "n4", "n5"], "{v}");
    assert!(ids(&v, "learners").is_empty(), "{v}");
    let commit = status_u64(&c, leader, "commit_index").await.unwrap();
    for i in 0..5 {
        wait_applied(&c, i, commit).await;
    }

    c.kill(4).unwrap();
    c.set_arg(4, "--join", None);
    c.restart(4).await.unwrap();
    let commit = status_u64(&c, leader, "commit_index").await.unwrap();
    wait_applied(&c, 4, commit).await;
    let local = cluster_view(&c, 4, "?local=true").await.unwrap();
    assert_eq!(ids(&local, "voters").len(), 5, "{local}");

    finish(bench).await;
}

/// A follower is replaced by a node started with `--join`, in one joint change: the answer is
/// the configuration after the joint one was left; the old node is stopped and the cluster
/// goes on with the new one, which holds the log.
#[tokio::test]
async fn replacing_a_voter_under_load_loses_no_acknowledged_write() {
    let (mut c, leader, bench) = loaded_cluster(&[]).await;
    let (old, other) = ((leader + 1) % 3, (leader + 2) % 3);
    let new = c.add_node().await.unwrap();
    let (old_id, new_id, addr) = (
        c.id(old).to_string(),
        c.id(new).to_string(),
        c.peer_addr(new).to_string(),
    );
    let v = member_until_done(&c, &[other], &["replace", &old_id, &new_id, &addr]).await;
    let mut want = vec![c.id(leader).to_string(), c.id(other).to_string(), new_id];
    want.sort();
    assert_eq!(ids(&v, "voters"), want, "{v}");
    assert_eq!(v["joint"], false, "{v}");
    assert!(ids(&v, "outgoing").is_empty(), "{v}");

    c.stop(old, TIMEOUT).await.unwrap();
    wait_commits(&c, leader, 100).await;
    let commit = status_u64(&c, leader, "commit_index").await.unwrap();
    wait_applied(&c, new, commit).await;
    finish(bench).await;
}

/// The leader removes itself: it answers once the change took effect, steps down and hands
/// over, another member leads a later term without it, and the bench never loses a write.
#[tokio::test]
async fn removing_the_leader_under_load_hands_over_and_loses_no_acknowledged_write() {
    let (mut c, old, bench) = loaded_cluster(&[]).await;
    let old_id = c.id(old).to_string();
    let old_term = status_u64(&c, old, "term").await.unwrap();
    let follower = (old + 1) % 3;
    let v = member_until_done(&c, &[follower], &["remove", &old_id]).await;
    assert!(!ids(&v, "voters").contains(&old_id), "{v}");
    assert_eq!(ids(&v, "voters").len(), 2, "{v}");

    let new = c.wait_for_leader(TIMEOUT).await.unwrap();
    assert_ne!(new, old);
    assert!(status_u64(&c, new, "term").await.unwrap() > old_term);
    let v = cluster_view(&c, follower, "").await.unwrap();
    assert!(!ids(&v, "voters").contains(&old_id), "{v}");
    c.stop(old, TIMEOUT).await.unwrap();
    wait_commits(&c, new, 100).await;
    finish(bench).await;
}

/// A follower cut off from the others is removed, so it never learns of its removal; restarted
/// with its old data dir and `--peers`, links healed, it still believes it votes and campaigns,
/// but cannot disrupt: the members drop its messages, so the leader and its term stay the same
/// while it runs through several election timeouts.
#[tokio::test]
async fn a_removed_node_restarted_with_its_old_data_cannot_disrupt() {
    let (mut c, leader, bench) = loaded_cluster(&[]).await;
    let (removed, other) = ((leader + 1) % 3, (leader + 2) % 3);
    let removed_id = c.id(removed).to_string();
    c.isolate(removed);
    let v = member_until_done(&c, &[other], &["remove", &removed_id]).await;
    assert!(!ids(&v, "voters").contains(&removed_id), "{v}");
    c.kill(removed).unwrap();
    c.heal_all();
    let term = status_u64(&c, leader, "term").await.unwrap();

    c.restart(removed).await.unwrap();
    let local = cluster_view(&c, removed, "?local=true").await.unwrap();
    assert!(ids(&local, "voters").contains(&removed_id), "{local}");
    poll_until("the removed node to campaign", TIMEOUT, || {
        let client = c.client(removed);
        async move {
            let s = client.status().await?;
            Ok((s["role"] == "pre_candidate").then_some(()))
        }
    })
    .await
    .unwrap();
    // Its election timer has fired (and been reset) several times: it had every chance.
    let runs = 5 * ELECTION_MAX_MS;
    poll_until(
        "the removed node to run through its timeouts",
        TIMEOUT,
        || {
            let client = c.client(removed);
            async move {
                let s = client.status().await?;
                assert_ne!(s["role"], "leader", "the removed node leads: {s}");
                Ok((s["election_timer_start"].as_u64() >= Some(runs)).then_some(()))
            }
        },
    )
    .await
    .unwrap();
    for i in [leader, other] {
        let s = c.client(i).status().await.unwrap();
        assert_eq!(s["term"], term, "{} changed term: {s}", c.id(i));
        assert_eq!(s["leader_id"], c.id(leader), "{s}");
    }
    let v = cluster_view(&c, other, "").await.unwrap();
    assert!(!ids(&v, "voters").contains(&removed_id), "{v}");
    assert_eq!(v["leader_id"], c.id(leader), "{v}");
    wait_commits(&c, leader, 100).await;
    finish(bench).await;
}

/// A follower restarted with a wrong `--peers` starts from the configuration its data dir
/// stored: it logs the mismatch, rejoins its cluster and applies what the leader commits.
#[tokio::test]
async fn a_restarted_node_uses_its_stored_configuration_over_a_wrong_peers() {
    let (mut c, leader, bench) = loaded_cluster(&[]).await;
    let f = (leader + 1) % 3;
    c.stop(f, TIMEOUT).await.unwrap();
    let wrong = format!("{}={},n9=127.0.0.1:9", c.id(f), c.peer_addr(f));
    c.set_arg(f, "--peers", Some(&wrong));
    c.restart(f).await.unwrap();
    let log = c.log_of(f);
    assert!(
        log.contains("differs from the stored configuration"),
        "no mismatch warning; log:\n{log}"
    );
    wait_commits(&c, leader, 100).await;
    let commit = status_u64(&c, leader, "commit_index").await.unwrap();
    wait_applied(&c, f, commit).await;
    let local = cluster_view(&c, f, "?local=true").await.unwrap();
    assert_eq!(ids(&local, "voters"), ["n1", "n2", "n3"], "{local}");
    assert!(local["leader_id"].is_string(), "{local}");
    finish(bench).await;
}
