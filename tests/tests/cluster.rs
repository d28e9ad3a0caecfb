//! Multi-node kvserver clusters (issue 6): replication, redirects, failover, log safety across
//! leader changes, snapshot catch-up, whole-cluster crashes, and an isolated leader. Real
//! processes on loopback ports; node-to-node links go through fault proxies. Every wait polls
//! with a deadline.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use raftkv_tests::wait::poll_until;
use raftkv_tests::{Bench, Cluster, ClusterConfig, KvClient, Reply};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// Generous for slow CI: elections take a few hundred milliseconds.
const LEADER_TIMEOUT: Duration = Duration::from_secs(20);
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(20);

/// Short timers so that failover is quick, with room for two cores running three debug nodes.
fn fast_args() -> Vec<String> {
    ["--election-timeout-ms", "200-400", "--heartbeat-ms", "40"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

async fn start(size: usize, extra: &[&str]) -> Cluster {
    let mut cfg = ClusterConfig::new(size);
    cfg.extra_args = fast_args();
    cfg.extra_args.extend(extra.iter().map(|s| s.to_string()));
    Cluster::start(cfg).await.expect("cluster starts")
}

/// A linearizable read at node `i` (after redirects): `Some(value)`, `None` if absent.
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

/// Waits until a stale read of `key` at node `i` gives `want`.
async fn wait_value(c: &Cluster, i: usize, key: &str, want: Option<&str>) {
    let client = c.client(i);
    let what = format!("{} to hold {key}={want:?}", c.id(i));
    poll_until(&what, CONVERGE_TIMEOUT, || {
        let client = &client;
        async move {
            let got = client.get(key).await?;
            Ok((got.as_deref() == want).then_some(()))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", c.log_of(i)));
}

/// A field of node `i`'s status.
async fn status_u64(c: &Cluster, i: usize, field: &str) -> Result<u64, String> {
    let s = c.client(i).status().await?;
    s[field]
        .as_u64()
        .ok_or_else(|| format!("no {field} in {s}"))
}

/// A writer with one (client_id, seq) sequence. Each write is resent with the same seq until
/// it is acknowledged: an election at the wrong moment answers `unknown_outcome` or
/// `not_leader`, and the dedupe table makes the resend safe (it is applied at most once).
struct Writer {
    client: KvClient,
    seq: u64,
}

impl Writer {
    fn new(c: &Cluster, i: usize) -> Self {
        Writer {
            client: c.client(i),
            seq: 0,
        }
    }

    async fn write(&mut self, method: Method, path: &str, fields: Value) -> Reply {
        self.seq += 1;
        let (client, seq) = (&self.client, self.seq);
        let what = format!("{method} {path} to be acknowledged");
        poll_until(&what, CONVERGE_TIMEOUT, || {
            let (method, fields) = (method.clone(), fields.clone());
            async move {
                let r = client.write_with_seq(method, path, seq, fields).await?;
                if r.ok() {
                    Ok(Some(r))
                } else {
                    Err(format!("{r:?}"))
                }
            }
        })
        .await
        .unwrap()
    }

    async fn put(&mut self, key: &str, value: &str) -> Reply {
        let path = format!("/kv/{key}");
        self.write(Method::PUT, &path, json!({"value": value}))
            .await
    }

    async fn delete(&mut self, key: &str) -> Reply {
        self.write(Method::DELETE, &format!("/kv/{key}"), json!({}))
            .await
    }
}

/// Waits until every running node reports the same last_applied as the highest commit index
/// seen, i.e. the cluster has converged.
async fn wait_converged(c: &mut Cluster) {
    let deadline = tokio::time::Instant::now() + CONVERGE_TIMEOUT;
    loop {
        let st = c.statuses().await;
        let applied: Vec<u64> = st
            .iter()
            .map(|(_, s)| s["last_applied"].as_u64().unwrap_or(0))
            .collect();
        let commit = st
            .iter()
            .map(|(_, s)| s["commit_index"].as_u64().unwrap_or(0))
            .max()
            .unwrap_or(0);
        let running = (0..c.size()).filter(|&i| c.is_running(i)).count();
        if st.len() == running && applied.iter().all(|&a| a == commit) && commit > 0 {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            for i in 0..c.size() {
                eprintln!("==== node {i}\n{}", c.log_of(i));
            }
            panic!("cluster did not converge: {st:?}");
        }
        tokio::time::sleep(raftkv_tests::wait::POLL_INTERVAL).await;
    }
}

/// Raft §5.3 across three real processes: writes acknowledged by the leader reach both
/// followers' state machines and the cluster converges. The seed's
/// `TestCluster_M1_3Nodes_WriteToLeader_ReplicatesToFollowers`.
#[tokio::test]
async fn writes_to_the_leader_reach_every_follower() {
    let mut c = start(3, &[]).await;
    let leader = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    let mut w = Writer::new(&c, leader);
    for i in 0..10 {
        w.put(&format!("k{i}"), &format!("v{i}")).await;
    }
    for f in (0..3).filter(|&f| f != leader) {
        for i in 0..10 {
            wait_value(&c, f, &format!("k{i}"), Some(&format!("v{i}"))).await;
        }
    }
    wait_converged(&mut c).await;
}

/// A follower answers a write (and a readindex read) with 307 to the same URL on the leader,
/// with the leader hint in the body; following it writes at the leader (Raft §8: clients are
/// sent to the leader). The seed's `TestCluster_M1_WriteToFollower_ReturnsRedirect`.
#[tokio::test]
async fn a_write_to_a_follower_is_redirected_to_the_leader() {
    let mut c = start(3, &[]).await;
    let leader = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    let follower = (leader + 1) % 3;
    // The follower must know the leader before it can point at it.
    let leader_addr = poll_until("the follower to know the leader", LEADER_TIMEOUT, || {
        let client = c.client(follower);
        async move {
            let s = client.status().await?;
            Ok(s["leader_addr"].as_str().map(str::to_string))
        }
    })
    .await
    .unwrap();

    // Raw: 307, Location at the leader's same URL, and the documented body.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let resp = http
        .put(format!("http://{}/kv/r?x=1", c.addr(follower)))
        .body(r#"{"client_id":"raw","seq":1,"value":"v"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 307);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(location, format!("http://{leader_addr}/kv/r?x=1"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["ok"], false);
    assert_eq!(body["err_code"], "not_leader");
    assert_eq!(body["leader_id"], c.id(leader));
    assert_eq!(body["leader_addr"], leader_addr.as_str());

    // Following it (with the same body) writes at the leader.
    let r = c.client(follower).put("r", "v").await.unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.redirects.len(), 1, "{r:?}");
    assert_eq!(
        read_index_get(&c, leader, "r").await.unwrap().as_deref(),
        Some("v")
    );
    // Stale reads are served by the follower itself; readindex reads are redirected too.
    wait_value(&c, follower, "r", Some("v")).await;
    let resp = http
        .get(format!(
            "http://{}/kv/r?consistency=readindex",
            c.addr(follower)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 307);
}

/// Raft §5.2 across real processes: kill the leader and another node leads a later term. The
/// seed's `TestCluster_M2_LeaderCrash_NewLeaderElected`.
#[tokio::test]
async fn a_new_leader_is_elected_in_a_later_term_after_the_leader_is_killed() {
    let mut c = start(3, &[]).await;
    let old = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    let old_term = status_u64(&c, old, "term").await.unwrap();
    c.kill(old).unwrap();
    let new = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    assert_ne!(new, old);
    assert!(status_u64(&c, new, "term").await.unwrap() > old_term);
}

/// With 50 ms of delay added to every peer link each way (a cross-region cluster), a leader
/// is elected, writes commit, and a killed leader is replaced while the delay lasts. Checks
/// progress, not speed: the README's latency figures come from the benchmark.
#[tokio::test]
async fn writes_and_an_election_succeed_under_50_ms_of_link_delay() {
    let mut cfg = ClusterConfig::new(3);
    cfg.extra_args = ["--election-timeout-ms", "400-800", "--heartbeat-ms", "50"]
        .map(String::from)
        .to_vec();
    let mut c = Cluster::start(cfg).await.expect("cluster starts");
    for from in 0..3 {
        for to in 0..3 {
            if let Some(p) = c.link(from, to) {
                p.set_delay(Duration::from_millis(50));
            }
        }
    }
    let old = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    let mut w = Writer::new(&c, old);
    for i in 0..5 {
        w.put(&format!("slow{i}"), "1").await;
    }
    c.kill(old).unwrap();
    let new = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    assert_ne!(new, old);
    Writer::new(&c, new).put("after", "2").await;
    let other = (0..3).find(|&i| i != old && i != new).unwrap();
    wait_value(&c, other, "after", Some("2")).await;
    assert!(
        c.link(0, 1)
            .is_some_and(|p| p.state().delay == Duration::from_millis(50))
    );
}

/// After the leader is killed the new leader takes writes, directly and through the surviving
/// follower, and the old leader returns as a follower and catches up (Raft §5.2, §5.3). The
/// seed's `TestCluster_M2_WriteAfterFailover_Succeeds`.
#[tokio::test]
async fn writes_succeed_after_failover_and_the_old_leader_catches_up() {
    let mut c = start(3, &[]).await;
    let old = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    Writer::new(&c, old).put("before", "1").await;
    c.kill(old).unwrap();
    let new = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    Writer::new(&c, new).put("after", "2").await;
    // A write sent to the surviving follower reaches the new leader too.
    let other = (0..3).find(|&i| i != old && i != new).unwrap();
    Writer::new(&c, other).put("via", "3").await;
    // The old leader comes back as a follower and catches up.
    c.restart(old).await.unwrap();
    for (k, v) in [("before", "1"), ("after", "2"), ("via", "3")] {
        wait_value(&c, old, k, Some(v)).await;
    }
}

/// Raft §5.4 (leader completeness) across real processes: over three leader kills, every write
/// acknowledged before a kill is readable (readindex) from the next leader, and every node
/// ends holding them all. The seed's `TestRaft_M3_CommittedEntriesNotLostAfterLeaderChange`
/// (its integration test).
#[tokio::test]
async fn acknowledged_writes_survive_repeated_leader_changes() {
    let mut c = start(3, &[]).await;
    let mut acked = BTreeMap::new();
    for round in 0..3 {
        let leader = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
        let mut w = Writer::new(&c, leader);
        for i in 0..15 {
            let (k, v) = (format!("r{round}-k{i}"), format!("v{i}"));
            w.put(&k, &v).await;
            acked.insert(k, v);
        }
        // Depose the leader (crash), then bring it back as a follower.
        c.kill(leader).unwrap();
        let next = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
        for (k, v) in &acked {
            assert_eq!(
                read_index_get(&c, next, k).await.unwrap().as_deref(),
                Some(v.as_str()),
                "{k} lost after the change to {}",
                c.id(next)
            );
        }
        c.restart(leader).await.unwrap();
    }
    wait_converged(&mut c).await;
    for i in 0..3 {
        for (k, v) in &acked {
            wait_value(&c, i, k, Some(v)).await;
        }
    }
}

/// Kills a follower, writes k0..k99 through the leader and waits until the leader has taken a
/// snapshot past index 20. Returns the follower, the leader's snapshot index and the writer.
async fn leave_a_follower_behind(c: &mut Cluster) -> (usize, u64, Writer) {
    let leader = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    let lagging = (leader + 1) % 3;
    c.kill(lagging).unwrap();
    let mut w = Writer::new(c, leader);
    for i in 0..100 {
        w.put(&format!("k{i}"), &format!("v{i}")).await;
    }
    let snap = poll_until("the leader to snapshot", CONVERGE_TIMEOUT, || {
        let c = &*c;
        async move {
            let s = status_u64(c, leader, "snapshot_index").await?;
            Ok((s > 20).then_some(s))
        }
    })
    .await
    .unwrap();
    (lagging, snap, w)
}

/// Raft §7 (InstallSnapshot) across real processes: a follower that missed entries the leader
/// has compacted away restores the leader's snapshot, then replicates normally. The seed's
/// `TestCluster_M5_LaggingFollowerCatchesUpViaSnapshot`.
#[tokio::test]
async fn lagging_follower_behind_the_compacted_log_catches_up_through_a_snapshot() {
    // No trailing entries: the leader's log starts right after its snapshot, so the lagging node
    // can only catch up through InstallSnapshot, here in many small chunks.
    let mut c = start(
        3,
        &[
            "--snapshot-threshold",
            "20",
            "--snapshot-trailing",
            "0",
            "--snapshot-chunk-bytes",
            "256",
        ],
    )
    .await;
    // The leader compacted its log past what the lagging node has.
    let (lagging, snap, mut w) = leave_a_follower_behind(&mut c).await;
    c.restart(lagging).await.unwrap();
    poll_until(
        "the lagging node to install a snapshot",
        CONVERGE_TIMEOUT,
        || {
            let c = &c;
            async move {
                let s = status_u64(c, lagging, "snapshot_index").await?;
                Ok((s >= snap).then_some(()))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", c.log_of(lagging)));
    // It was the leader's snapshot, not one of its own: it had applied almost nothing.
    assert!(
        c.log_of(lagging)
            .contains("state machine restored from a snapshot"),
        "no snapshot restored; log:\n{}",
        c.log_of(lagging)
    );
    for i in [0, 50, 99] {
        wait_value(&c, lagging, &format!("k{i}"), Some(&format!("v{i}"))).await;
    }
    // It keeps replicating normally afterwards.
    w.put("later", "x").await;
    wait_value(&c, lagging, "later", Some("x")).await;
}

/// Entries as large as a request body allows (the default 1 MiB) replicate: each AppendEntries
/// carries what fits core's byte budget, a larger entry alone, so no message passes the peers'
/// body limit and a follower that missed a run of them catches up (a refused message would be
/// refused on every retry, and it never would).
#[tokio::test]
async fn entries_near_the_largest_value_size_replicate_to_a_lagging_follower() {
    let mut c = start(3, &[]).await;
    let leader = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    let lagging = (leader + 1) % 3;
    c.kill(lagging).unwrap();
    let mut w = Writer::new(&c, leader);
    // The largest value whose JSON body still fits 1 MiB, and one a little smaller.
    let big = "x".repeat((1 << 20) - 64);
    let smaller = "y".repeat(900_000);
    for i in 0..12 {
        let v = if i % 2 == 0 { &big } else { &smaller };
        w.put(&format!("big{i}"), v).await;
    }
    c.restart(lagging).await.unwrap();
    wait_converged(&mut c).await;
    for i in 0..12 {
        let want = if i % 2 == 0 { big.len() } else { smaller.len() };
        let got = c.client(lagging).get(&format!("big{i}")).await.unwrap();
        assert_eq!(
            got.map(|v| v.len()),
            Some(want),
            "big{i} on the lagging node"
        );
    }
}

/// With the default trailing entries (1,000) kept behind each snapshot, a follower 100 entries
/// behind catches up from the log: no snapshot crosses the wire.
#[tokio::test]
async fn lagging_follower_within_trailing_entries_catches_up_without_a_snapshot() {
    let mut c = start(3, &["--snapshot-threshold", "20"]).await;
    let (lagging, _, _) = leave_a_follower_behind(&mut c).await;
    c.restart(lagging).await.unwrap();
    for i in [0, 50, 99] {
        wait_value(&c, lagging, &format!("k{i}"), Some(&format!("v{i}"))).await;
    }
    assert!(
        !c.log_of(lagging)
            .contains("state machine restored from a snapshot"),
        "a snapshot was installed; log:\n{}",
        c.log_of(lagging)
    );
}

#[tokio::test]
async fn whole_cluster_kill9_restart_keeps_acknowledged_writes() {
    let mut c = start(3, &[]).await;
    let leader = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    let mut w = Writer::new(&c, leader);
    for i in 0..30 {
        w.put(&format!("k{i}"), &format!("v{i}")).await;
    }
    w.delete("k7").await;
    for i in 0..3 {
        c.kill(i).unwrap();
    }
    for i in 0..3 {
        c.restart(i).await.unwrap();
    }
    let leader = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    for i in 0..30 {
        let want = (i != 7).then(|| format!("v{i}"));
        assert_eq!(
            read_index_get(&c, leader, &format!("k{i}")).await.unwrap(),
            want,
            "k{i}"
        );
    }
}

#[tokio::test]
async fn isolated_leader_steps_down_and_cannot_commit_or_read() {
    let mut c = start(3, &[]).await;
    let old = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    Writer::new(&c, old).put("base", "1").await;
    c.isolate(old);

    // Writes and linearizable reads at the isolated leader fail (its client port still works).
    let w = c.client(old).put("lost", "x").await.unwrap();
    assert!(!w.ok(), "isolated leader acknowledged a write: {w:?}");
    assert!(
        [503, 307].contains(&w.status),
        "unexpected answer to a write at the isolated leader: {w:?}"
    );
    assert!(read_index_get(&c, old, "base").await.is_err());
    // Check-quorum: it notices it lost its majority and steps down.
    poll_until("the isolated leader to step down", LEADER_TIMEOUT, || {
        let client = c.client(old);
        async move {
            let s = client.status().await?;
            Ok((s["role"] != "leader").then_some(()))
        }
    })
    .await
    .unwrap();

    // The majority elects a new leader that commits.
    let new = poll_until("the majority to elect a leader", LEADER_TIMEOUT, || {
        let c = &c;
        async move {
            for i in (0..3).filter(|&i| i != old) {
                if c.client(i).status().await?["role"] == "leader" {
                    return Ok(Some(i));
                }
            }
            Ok(None)
        }
    })
    .await
    .unwrap();
    Writer::new(&c, new).put("after", "2").await;

    // Healed, everyone converges on the majority's history; the write the isolated leader
    // could not commit is gone everywhere.
    c.heal_all();
    wait_converged(&mut c).await;
    for i in 0..3 {
        wait_value(&c, i, "after", Some("2")).await;
        wait_value(&c, i, "base", Some("1")).await;
        wait_value(&c, i, "lost", None).await;
    }
}

/// Bench-like writers under a kill -9 of the leader: every write answered 200 is readable
/// afterwards from the new leader, with its value.
#[tokio::test]
async fn leader_kill9_under_load_keeps_every_acknowledged_write() {
    let mut c = start(3, &[]).await;
    let leader = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    let addrs: Vec<String> = (0..3).map(|i| c.addr(i).to_string()).collect();
    let acked = Arc::new(Mutex::new(BTreeMap::<String, String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..8 {
        let (addrs, acked, stop) = (addrs.clone(), Arc::clone(&acked), Arc::clone(&stop));
        writers.push(tokio::spawn(async move {
            let mut target = leader;
            let mut n = 0u64;
            let mut errors = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let client = KvClient::new(&addrs[target]);
                let (k, v) = (format!("w{w}-{n}"), format!("v{n}"));
                match client.put(&k, &v).await {
                    Ok(r) if r.ok() => {
                        acked.lock().await.insert(k, v);
                    }
                    // Not acknowledged (unknown outcome, no leader, dead node): try elsewhere.
                    _ => {
                        errors += 1;
                        target = (target + 1) % addrs.len();
                    }
                }
                n += 1;
            }
            errors
        }));
    }
    let count = |acked: &Arc<Mutex<BTreeMap<String, String>>>| {
        let acked = Arc::clone(acked);
        async move { acked.lock().await.len() }
    };
    poll_until("writes before the crash", CONVERGE_TIMEOUT, || {
        let f = count(&acked);
        async move { Ok((f.await >= 200).then_some(())) }
    })
    .await
    .unwrap();
    c.kill(leader).unwrap();
    let before = count(&acked).await;
    poll_until("writes after the crash", CONVERGE_TIMEOUT, || {
        let f = count(&acked);
        async move { Ok((f.await >= before + 200).then_some(())) }
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let new = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    assert_ne!(new, leader);
    let acked = acked.lock().await.clone();
    let client = c.client(new);
    for (k, v) in &acked {
        let r = client
            .request(Method::GET, &format!("/kv/{k}?consistency=readindex"), None)
            .await
            .unwrap();
        assert_eq!(r.status, 200, "acknowledged {k} missing: {r:?}");
        assert_eq!(r.body["value"], v.as_str(), "{k}");
    }
}

/// The node's commit index from its `/status`.
async fn commit_index(c: &Cluster, i: usize) -> Result<u64, String> {
    let s = c.client(i).status().await?;
    s["commit_index"]
        .as_u64()
        .ok_or_else(|| format!("no commit_index in {s}"))
}

/// The acceptance check of the bench itself: `kvctl bench --verify` writes while the leader is
/// killed with SIGKILL, and after the run reads every key back (readindex, from whichever node
/// leads now) and fails if any put it was answered 200 for is missing.
#[tokio::test]
async fn kvctl_bench_verify_under_leader_kill9_loses_no_acknowledged_write() {
    let mut c = start(3, &[]).await;
    let leader = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    let endpoints: Vec<String> = (0..3).map(|i| c.addr(i).to_string()).collect();
    let start_commit = commit_index(&c, leader).await.unwrap();
    let bench = Bench::start(&endpoints, &[]).unwrap();
    let at_kill = poll_until("bench writes before the crash", CONVERGE_TIMEOUT, || {
        let f = commit_index(&c, leader);
        async move { Ok(f.await.ok().filter(|&ci| ci >= start_commit + 200)) }
    })
    .await
    .unwrap();
    c.kill(leader).unwrap();
    let new = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    assert_ne!(new, leader);
    poll_until("bench writes after the crash", CONVERGE_TIMEOUT, || {
        let f = commit_index(&c, new);
        async move { Ok(f.await.ok().filter(|&ci| ci >= at_kill + 200).map(|_| ())) }
    })
    .await
    .unwrap();
    // Ctrl-C: the bench stops, reads everything back and reports.
    let r = bench.finish().await.unwrap();
    eprintln!("{}", r.report);
    // Eight workers with fifty keys each, hundreds of puts on both sides of the crash.
    assert!(r.acked_puts > 100, "{}", r.report);
}

#[tokio::test]
async fn cluster_async_writes_and_readindex_policy() {
    let mut c = start(3, &["--write-mode", "async", "--read-policy", "readindex"]).await;
    let leader = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    let follower = (leader + 1) % 3;
    // Async: 202 with an op id at once (after a redirect from a follower), then the result.
    let r = c.client(follower).put("a", "1").await.unwrap();
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.redirects.len(), 1, "{r:?}");
    let op_id = r.body["op_id"].as_str().unwrap().to_string();
    let result = poll_until("the async op to be ready", CONVERGE_TIMEOUT, || {
        let client = c.client(leader);
        let path = format!("/ops/{op_id}");
        async move {
            let r = client.request(Method::GET, &path, None).await?;
            Ok((r.body["ready"] == true).then_some(r.body))
        }
    })
    .await
    .unwrap();
    assert_eq!(result["result"]["ok"], true, "{result}");
    // The server's policy is readindex: a follower redirects plain reads to the leader, which
    // answers with everything acknowledged so far.
    let r = c
        .client(follower)
        .request(Method::GET, "/kv/a", None)
        .await
        .unwrap();
    assert_eq!((r.status, r.redirects.len()), (200, 1), "{r:?}");
    assert_eq!(r.body["value"], "1");
    // ?consistency=stale overrides the policy: the follower answers itself.
    let r = c
        .client(follower)
        .request(Method::GET, "/kv/a?consistency=stale", None)
        .await
        .unwrap();
    assert!(r.redirects.is_empty(), "{r:?}");
}
