//! Leadership transfer, lease reads and planned restarts (issue 12) across three real kvserver
//! processes: `POST /cluster/transfer-leader`, SIGTERM on a follower and on the leader, and a
//! leader restart under writes. Every wait polls with a deadline.
//!
//! The tests marked `#[ignore = "needs core's leadership transfer ..."]` (or lease) exercise
//! behaviour that core implements in `core/src/raft/transfer.rs` and `lease.rs`, stubs on this
//! branch (and kvserver reaches `Node::transfer_leader` only once core's `Host` has a wrapper
//! for it, see `driver::transfer_leader`). Run them after the merge with
//! `cargo test -p raftkv-tests --test leader_transfer -- --include-ignored`, then drop the
//! `ignore`s.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use raftkv_tests::bench::{Bench, VERIFY_UNDER_FAULTS};
use raftkv_tests::wait::poll_until;
use raftkv_tests::{Cluster, ClusterConfig};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

const LEADER_TIMEOUT: Duration = Duration::from_secs(20);
const EXIT_TIMEOUT: Duration = Duration::from_secs(15);

/// Short timers so that failover is quick, with room for two cores running three debug nodes.
const FAST: [&str; 4] = ["--election-timeout-ms", "200-400", "--heartbeat-ms", "40"];
/// Long election timers: no follower campaigns sooner than a second after the last heartbeat,
/// so a new leader within that second was handed the leadership.
const SLOW: [&str; 4] = [
    "--election-timeout-ms",
    "1000-2000",
    "--heartbeat-ms",
    "100",
];
const SLOW_ELECTION_MIN: Duration = Duration::from_millis(1000);

async fn start(args: &[&str]) -> Cluster {
    let mut cfg = ClusterConfig::new(3);
    cfg.extra_args = args.iter().map(|s| s.to_string()).collect();
    Cluster::start(cfg).await.expect("cluster starts")
}

/// Node `i`'s status field `field`.
async fn status_field(c: &Cluster, i: usize, field: &str) -> Result<Value, String> {
    Ok(c.client(i).status().await?[field].clone())
}

/// Node `i`'s commit index.
async fn commit_index(c: &Cluster, i: usize) -> Result<u64, String> {
    let v = status_field(c, i, "commit_index").await?;
    v.as_u64().ok_or_else(|| format!("commit_index {v}"))
}

/// The term node `i` is in.
async fn term(c: &Cluster, i: usize) -> u64 {
    status_field(c, i, "term")
        .await
        .unwrap()
        .as_u64()
        .expect("term")
}

/// Puts `key` at node `i` (following redirects), until it is acknowledged.
async fn put(c: &Cluster, i: usize, key: &str, value: &str) -> Value {
    let client = c.client(i);
    let what = format!("put {key} to be acknowledged");
    poll_until(&what, LEADER_TIMEOUT, || {
        let client = &client;
        async move {
            let r = client.put(key, value).await?;
            Ok(r.ok().then_some(r.body))
        }
    })
    .await
    .unwrap()
}

/// `POST /cluster/transfer-leader` at node `i` with `body`, following the redirect.
async fn transfer(c: &Cluster, i: usize, body: Value) -> raftkv_tests::Reply {
    c.client(i)
        .request(Method::POST, "/cluster/transfer-leader", Some(body))
        .await
        .unwrap()
}

#[tokio::test]
async fn sigterm_on_a_follower_exits_0_promptly_and_the_leader_leads_on() {
    let mut c = start(&FAST).await;
    let leader = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    put(&c, leader, "a", "1").await;
    let follower = (leader + 1) % 3;
    let started = Instant::now();
    let status = c.stop(follower, EXIT_TIMEOUT).await.unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    // Nothing to hand over: it drains and goes.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(c.wait_for_leader(LEADER_TIMEOUT).await.unwrap(), leader);
    put(&c, leader, "b", "2").await;
}

/// Passes with core's stubs too (the leader then cannot hand over, drains, exits, and the others
/// elect a leader after their election timeout); with the real core it hands over first.
#[tokio::test]
async fn sigterm_on_the_leader_exits_0_and_the_others_lead_on() {
    let mut c = start(&FAST).await;
    let leader = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    put(&c, leader, "a", "1").await;
    let status = c.stop(leader, EXIT_TIMEOUT).await.unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let new = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    assert_ne!(new, leader);
    put(&c, new, "b", "2").await;
    assert_eq!(c.client(new).get("a").await.unwrap().as_deref(), Some("1"));
}

#[tokio::test]
#[ignore = "needs core's leadership transfer (core/src/raft/transfer.rs) and Feed::transfer_leader"]
async fn transfer_leader_hands_leadership_to_the_named_voter_then_to_the_one_core_picks() {
    let mut c = start(&FAST).await;
    let leader = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    put(&c, leader, "a", "1").await;
    let (target, other) = ((leader + 1) % 3, (leader + 2) % 3);
    let before = term(&c, leader).await;
    // Sent to the third node: redirected to the leader, which answers once it knows the new
    // leader.
    let r = transfer(&c, other, json!({"to": c.id(target)})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.redirects.len(), 1, "{r:?}");
    assert_eq!(
        (&r.body["to"], &r.body["leader_id"]),
        (&json!(c.id(target)), &json!(c.id(target)))
    );
    assert_eq!(c.wait_for_leader(LEADER_TIMEOUT).await.unwrap(), target);
    // One campaign, at once (TimeoutNow skips pre-vote): exactly one term later.
    assert_eq!(term(&c, target).await, before + 1);
    put(&c, target, "b", "2").await;
    let r = c
        .client(other)
        .request(Method::GET, "/kv/a?consistency=readindex", None)
        .await
        .unwrap();
    assert_eq!((r.status, &r.body["value"]), (200, &json!("1")), "{r:?}");

    // No target: core picks a voter other than the leader.
    let r = transfer(&c, target, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let next = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    assert_ne!(next, target);
    assert_eq!(r.body["leader_id"], c.id(next));

    // A target outside the configuration is refused, and nothing moves.
    let r = transfer(&c, next, json!({"to": "n9"})).await;
    assert_eq!(
        (r.status, &r.body["err_code"]),
        (409, &json!("not_voter")),
        "{r:?}"
    );
    assert_eq!(c.wait_for_leader(LEADER_TIMEOUT).await.unwrap(), next);
}

#[tokio::test]
#[ignore = "needs core's leadership transfer (core/src/raft/transfer.rs) and Feed::transfer_leader"]
async fn sigterm_on_the_leader_hands_over_before_any_follower_could_time_out() {
    let mut c = start(&SLOW).await;
    let leader = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    put(&c, leader, "a", "1").await;
    let before = term(&c, leader).await;
    c.terminate(leader).unwrap();
    let sent = Instant::now();
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let new = poll_until("another node to lead", LEADER_TIMEOUT, || {
        let (c, others) = (&c, &others);
        async move {
            for &i in others {
                if status_field(c, i, "role").await? == "leader" {
                    return Ok(Some(i));
                }
            }
            Ok(None)
        }
    })
    .await
    .unwrap();
    let gap = sent.elapsed();
    // Without a hand-over no follower campaigns within an election timeout of the last
    // heartbeat, which the leader sent at the earliest when it got the signal.
    assert!(gap < SLOW_ELECTION_MIN, "a new leader only after {gap:?}");
    assert_eq!(term(&c, new).await, before + 1);
    let status = c.wait_exit(leader, EXIT_TIMEOUT).await.unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(
        c.log_of(leader).contains("handed leadership over"),
        "{}",
        c.log_of(leader)
    );
    put(&c, new, "b", "2").await;
}

/// What a writer saw that the goal rules out: anything but an acknowledgement, a `transferring`
/// or `not_leader` answer (redirects followed), or a connection that was refused (so the
/// request never arrived).
#[derive(Default)]
struct Seen {
    acked: Vec<(String, String)>,
    bad: Vec<String>,
}

/// Puts distinct keys, each retried with the same (client_id, seq) until acknowledged, against
/// `addrs` from `first`; stops when `stop` is set. Connections are not reused, so a refused
/// connection is told apart from one that broke mid-request.
async fn writer(
    w: usize,
    addrs: Vec<String>,
    first: usize,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .unwrap();
    let mut at = first;
    let mut seq = 0;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let (key, value) = (format!("w{w}-{seq}"), format!("v{seq}"));
        let body = json!({"client_id": format!("writer-{w}"), "seq": seq, "value": value});
        let mut url = format!("http://{}/kv/{key}", addrs[at]);
        loop {
            match http.put(&url).json(&body).send().await {
                Ok(r) if r.status() == StatusCode::TEMPORARY_REDIRECT => {
                    match r.headers().get("location").and_then(|l| l.to_str().ok()) {
                        Some(l) => url = l.to_string(),
                        None => seen
                            .lock()
                            .await
                            .bad
                            .push(format!("307 without Location: {url}")),
                    }
                }
                Ok(r) if r.status() == StatusCode::OK => {
                    seen.lock().await.acked.push((key.clone(), value.clone()));
                    break;
                }
                Ok(r) => {
                    let status = r.status();
                    let reply: Value = r.json().await.unwrap_or(Value::Null);
                    let code = reply["err_code"].as_str().unwrap_or_default();
                    if !(status == StatusCode::SERVICE_UNAVAILABLE
                        && matches!(code, "transferring" | "not_leader"))
                    {
                        seen.lock()
                            .await
                            .bad
                            .push(format!("{url}: {status} {reply}"));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    at = (at + 1) % addrs.len();
                    url = format!("http://{}/kv/{key}", addrs[at]);
                }
                Err(e) => {
                    if !e.is_connect() {
                        seen.lock().await.bad.push(format!("{url}: {e}"));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    at = (at + 1) % addrs.len();
                    url = format!("http://{}/kv/{key}", addrs[at]);
                }
            }
        }
    }
}

#[tokio::test]
#[ignore = "needs core's leadership transfer (core/src/raft/transfer.rs) and Feed::transfer_leader"]
async fn a_planned_leader_restart_fails_no_write_of_a_client_that_retries_transferring() {
    let mut c = start(&FAST).await;
    let leader = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    let before = term(&c, leader).await;
    let addrs: Vec<String> = (0..3).map(|i| c.addr(i).to_string()).collect();
    let (stop, seen) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(Mutex::new(Seen::default())),
    );
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (addrs, stop, seen) = (addrs.clone(), Arc::clone(&stop), Arc::clone(&seen));
            tokio::spawn(writer(w, addrs, leader, stop, seen))
        })
        .collect();
    let acked = |n: usize| {
        let seen = Arc::clone(&seen);
        move || {
            let seen = Arc::clone(&seen);
            async move { Ok((seen.lock().await.acked.len() >= n).then_some(())) }
        }
    };
    poll_until("writes before the restart", LEADER_TIMEOUT, acked(100))
        .await
        .unwrap();
    let status = c.stop(leader, EXIT_TIMEOUT).await.unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let n = seen.lock().await.acked.len();
    poll_until("writes while it is down", LEADER_TIMEOUT, acked(n + 100))
        .await
        .unwrap();
    c.restart(leader).await.unwrap();
    let n = seen.lock().await.acked.len();
    poll_until("writes after it is back", LEADER_TIMEOUT, acked(n + 100))
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let seen = seen.lock().await;
    assert!(
        seen.bad.is_empty(),
        "{} bad answers: {:#?}",
        seen.bad.len(),
        seen.bad
    );
    // The hand-over was the only election: the restarted node rejoined without one.
    let new = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    assert_ne!(new, leader);
    assert_eq!(term(&c, new).await, before + 1);
    let client = c.client(new);
    for (k, v) in &seen.acked {
        let r = client
            .request(Method::GET, &format!("/kv/{k}?consistency=readindex"), None)
            .await
            .unwrap();
        assert_eq!((r.status, &r.body["value"]), (200, &json!(v)), "{k}: {r:?}");
    }
}

/// Meaningful with the real core (with the stubs the leader exits without handing over and
/// kvctl rides out the election on its retries, so this passes too, just without testing the
/// hand-over).
#[tokio::test]
async fn kvctl_bench_verify_through_a_leader_restart_by_sigterm_has_no_errors() {
    let mut c = start(&FAST).await;
    let leader = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    let endpoints: Vec<String> = (0..3).map(|i| c.addr(i).to_string()).collect();
    let more = [
        "--concurrency",
        "8",
        "--mix",
        "put=80,get=20",
        "--keys",
        "50",
    ];
    let reads = ["--consistency", "lease", "--duration", "300"];
    let bench = Bench::start(
        &endpoints,
        &[&VERIFY_UNDER_FAULTS[..], &more, &reads].concat(),
    )
    .unwrap();
    let start_commit = commit_index(&c, leader).await.unwrap();
    poll_until(
        "bench writes before the restart",
        LEADER_TIMEOUT,
        || async { Ok((commit_index(&c, leader).await? >= start_commit + 200).then_some(())) },
    )
    .await
    .unwrap();
    let status = c.stop(leader, EXIT_TIMEOUT).await.unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    c.restart(leader).await.unwrap();
    let new = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    let at_restart = commit_index(&c, new).await.unwrap();
    poll_until("bench writes after the restart", LEADER_TIMEOUT, || async {
        Ok((commit_index(&c, new).await? >= at_restart + 200).then_some(()))
    })
    .await
    .unwrap();
    let out = bench.interrupt(Duration::from_secs(120)).await.unwrap();
    let report = out.report;
    assert!(out.success, "bench failed:\n{report}\n{}", out.stderr);
    assert!(report.contains("errors: none"), "{report}");
    assert!(report.contains("lost 0, unreadable 0"), "{report}");
}

#[tokio::test]
#[ignore = "needs core's lease reads (core/src/raft/lease.rs)"]
async fn the_leader_holds_a_lease_and_serves_lease_reads_while_a_follower_redirects_them() {
    let mut cluster = start(&FAST).await;
    let leader = cluster.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    let c = &cluster;
    put(c, leader, "a", "1").await;
    poll_until("the leader's lease", LEADER_TIMEOUT, || async move {
        Ok((!status_field(c, leader, "lease_until").await?.is_null()).then_some(()))
    })
    .await
    .unwrap();
    let r = c
        .client(leader)
        .request(Method::GET, "/kv/a?consistency=lease", None)
        .await
        .unwrap();
    assert_eq!((r.status, &r.body["value"]), (200, &json!("1")), "{r:?}");
    // A follower holds no lease: it sends the read to the leader.
    let follower = (leader + 1) % 3;
    assert!(
        status_field(c, follower, "lease_until")
            .await
            .unwrap()
            .is_null()
    );
    let r = c
        .client(follower)
        .request(Method::GET, "/kv/a?consistency=lease", None)
        .await
        .unwrap();
    assert_eq!((r.status, r.redirects.len()), (200, 1), "{r:?}");
}
