//! The client API of an in-process three-node cluster, for the rules a single node cannot show:
//! a plain read at a follower is linearizable (readindex) by default, `min_index` makes a
//! follower's read wait for a write, a leader that cannot confirm a read answers `read_timeout`,
//! and a leadership transfer sent to a follower is redirected to the leader. Every wait polls
//! with a deadline.

mod kv_support;

use std::time::{Duration, Instant};

use kv_support::{TestCluster, assert_error};
use raftkv_native::config::TimeoutRange;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const LEADER_TIMEOUT: Duration = Duration::from_secs(20);

/// Election timers loose enough for three debug nodes sharing two cores with other tests.
const ELECTION: TimeoutRange = TimeoutRange { min: 300, max: 600 };

fn put_body(seq: u64, value: &str) -> String {
    json!({"client_id": "c1", "seq": seq, "value": value}).to_string()
}

/// The index a write answered.
#[track_caller]
fn index_of(reply: &(StatusCode, Value, Option<String>)) -> u64 {
    assert_eq!(reply.0, StatusCode::OK, "{}", reply.1);
    reply.1["index"]
        .as_u64()
        .expect("a write answers its index")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_read_at_a_follower_is_readindex_by_default_and_redirects_to_the_leader() {
    let c = TestCluster::start(3, ELECTION, |_| {}).await;
    let leader = c.leader(LEADER_TIMEOUT).await;
    let follower = (leader + 1) % 3;
    let put = c
        .send(leader, Method::PUT, "/kv/a", Some(&put_body(1, "1")))
        .await;
    index_of(&put);
    let (_, status, _) = c.send(follower, Method::GET, "/status", None).await;
    assert_eq!(status["read_policy"], "readindex");
    // No ?consistency=: the follower sends the read to the leader, which confirms it.
    let (s, body, location) = c.send(follower, Method::GET, "/kv/a", None).await;
    assert_eq!(s, StatusCode::TEMPORARY_REDIRECT, "{body}");
    let want = format!("http://{}/kv/a", c.addrs[leader]);
    assert_eq!(location.as_deref(), Some(want.as_str()));
    assert_eq!(body["err_code"], "not_leader");
    let (s, body, _) = c.send(leader, Method::GET, "/kv/a", None).await;
    assert_eq!(
        (s, body),
        (StatusCode::OK, json!({"ok": true, "value": "1"}))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_index_makes_a_stale_read_at_a_follower_wait_until_it_applied_the_write() {
    let c = TestCluster::start(3, ELECTION, |_| {}).await;
    for seq in 1..=20u64 {
        let v = format!("v{seq}");
        // (A loaded machine may change leaders mid-test: the write is resent until answered.)
        let (leader, put) = c
            .write_to_leader(Method::PUT, "/kv/k", &put_body(seq, &v), LEADER_TIMEOUT)
            .await;
        let index = index_of(&put);
        // Sent the moment the leader answered: the follower mostly has not heard of the commit
        // yet, and waits for it.
        let follower = (leader + 1 + (seq as usize % 2)) % 3;
        let path = format!("/kv/k?consistency=stale&min_index={index}");
        let (s, body, _) = c.send(follower, Method::GET, &path, None).await;
        assert_eq!((s, &body["value"]), (StatusCode::OK, &json!(v)), "{body}");
        let mget = json!({"keys": ["k"]}).to_string();
        let path = format!("/kv/mget?consistency=stale&min_index={index}");
        let (s, body, _) = c.send(follower, Method::POST, &path, Some(&mget)).await;
        assert_eq!(
            (s, &body["values"]["k"]),
            (StatusCode::OK, &json!(v)),
            "{body}"
        );
    }
    // The next index is not written: a follower answers not_caught_up after the wait asked for.
    let leader = c.leader(LEADER_TIMEOUT).await;
    let (_, st, _) = c.send(leader, Method::GET, "/status", None).await;
    let next = st["last_log_index"].as_u64().expect("last_log_index") + 1;
    let path = format!("/kv/k?consistency=stale&min_index={next}&wait_ms=100");
    let got = c.send((leader + 1) % 3, Method::GET, &path, None).await;
    assert_error(
        &(got.0, got.1),
        StatusCode::SERVICE_UNAVAILABLE,
        "not_caught_up",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_loses_its_quorum_answers_a_readindex_read_503_read_timeout() {
    // Long timers: the leader still leads for a second after its followers stop, and the read
    // reaches it in that second.
    let slow = TimeoutRange {
        min: 1000,
        max: 2000,
    };
    let mut c = TestCluster::start(3, slow, |_| {}).await;
    let leader = c.leader(LEADER_TIMEOUT).await;
    let put = c
        .send(leader, Method::PUT, "/kv/a", Some(&put_body(1, "1")))
        .await;
    index_of(&put);
    for i in (0..3).filter(|&i| i != leader) {
        c.stop(i).await;
    }
    assert!(
        c.node(leader).service().is_leader(),
        "stepped down too soon"
    );
    let started = Instant::now();
    let got = c
        .send(leader, Method::GET, "/kv/a?consistency=readindex", None)
        .await;
    assert_error(
        &(got.0, got.1),
        StatusCode::SERVICE_UNAVAILABLE,
        "read_timeout",
    );
    // Within the read's deadline (an election timeout) and a little.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_leader_request_at_a_follower_is_redirected_to_the_leader() {
    let c = TestCluster::start(3, ELECTION, |_| {}).await;
    let leader = c.leader(LEADER_TIMEOUT).await;
    let follower = (leader + 1) % 3;
    let body = json!({"to": format!("n{}", follower + 1)}).to_string();
    let (s, reply, location) = c
        .send(
            follower,
            Method::POST,
            "/cluster/transfer-leader",
            Some(&body),
        )
        .await;
    assert_eq!(s, StatusCode::TEMPORARY_REDIRECT, "{reply}");
    let want = format!("http://{}/cluster/transfer-leader", c.addrs[leader]);
    assert_eq!(location.as_deref(), Some(want.as_str()));
    assert_eq!(reply["err_code"], "not_leader");
    assert_eq!(reply["leader_id"], format!("n{}", leader + 1));
    // The follower did not start anything: the leader still leads.
    assert_eq!(c.leader(LEADER_TIMEOUT).await, leader);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_redirects_snapshot_downloads_and_serves_stale_range_reads_after_min_index() {
    let c = TestCluster::start(3, ELECTION, |_| {}).await;
    let leader = c.leader(LEADER_TIMEOUT).await;
    let follower = (leader + 1) % 3;
    let put = c
        .send(leader, Method::PUT, "/kv/r1", Some(&put_body(1, "1")))
        .await;
    let index = index_of(&put);
    // A backup is a leader's: a follower sends it there, like a write.
    let (s, body, location) = c.send(follower, Method::GET, "/snapshot", None).await;
    assert_eq!(s, StatusCode::TEMPORARY_REDIRECT, "{body}");
    assert_eq!(body["err_code"], "not_leader");
    let want = format!("http://{}/snapshot", c.addrs[leader]);
    assert_eq!(location.as_deref(), Some(want.as_str()));
    // A stale range read at the follower, once it applied the write, sees it.
    let path = format!("/kv?prefix=r&consistency=stale&min_index={index}");
    let (s, body, _) = c.send(follower, Method::GET, &path, None).await;
    assert_eq!(
        (s, body),
        (
            StatusCode::OK,
            json!({"ok": true, "kvs": [{"key": "r1", "value": "1"}], "more": false})
        )
    );
    // A linearizable one goes to the leader.
    let (s, _, location) = c.send(follower, Method::GET, "/kv?prefix=r", None).await;
    assert_eq!(s, StatusCode::TEMPORARY_REDIRECT);
    let want = format!("http://{}/kv?prefix=r", c.addrs[leader]);
    assert_eq!(location.as_deref(), Some(want.as_str()));
}
