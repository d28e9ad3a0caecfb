//! A kvserver cluster with a cluster secret (`--cluster-secret-file`): forged Raft messages
//! change nothing, a node with the wrong secret gets nothing, and the cluster still fails
//! over. Real processes on loopback; every wait polls with a deadline.

use std::path::{Path, PathBuf};
use std::time::Duration;

use raftkv_tests::wait::poll_until;
use raftkv_tests::{Cluster, ClusterConfig, KvClient};
use serde_json::{Value, json};

const LEADER_TIMEOUT: Duration = Duration::from_secs(20);
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(20);

/// Writes a secret file under `dir`.
fn secret_file(dir: &Path, name: &str, secret: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    path
}

/// A 3-node cluster whose nodes share the secret in `secret`.
async fn start_with_secret(secret: &Path) -> Cluster {
    let mut cfg = ClusterConfig::new(3);
    cfg.extra_args = [
        "--election-timeout-ms",
        "200-400",
        "--heartbeat-ms",
        "40",
        "--cluster-secret-file",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([secret.display().to_string()])
    .collect();
    Cluster::start(cfg).await.expect("cluster starts")
}

/// Writes `key=value` through `client` as its write `seq`, resending with the same seq until
/// acknowledged.
async fn put(client: &KvClient, key: &str, value: &str, seq: u64) {
    poll_until(&format!("{key}={value}"), CONVERGE_TIMEOUT, || async move {
        let r = client
            .write_with_seq(
                reqwest::Method::PUT,
                &format!("/kv/{key}"),
                seq,
                json!({"value": value}),
            )
            .await?;
        Ok(r.ok().then_some(()))
    })
    .await
    .unwrap();
}

/// Term, commit index and last log index of node `i`.
async fn raft_state(c: &Cluster, i: usize) -> (u64, u64, u64) {
    let s = c.client(i).status().await.unwrap();
    let get = |f: &str| s[f].as_u64().unwrap_or_else(|| panic!("no {f} in {s}"));
    (get("term"), get("commit_index"), get("last_log_index"))
}

/// POSTs a Raft envelope to node `i`'s `path` with the given extra headers.
async fn post_raft(
    c: &Cluster,
    i: usize,
    path: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> u16 {
    let mut req = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("http://{}{path}", c.addr(i)))
        .json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap().status().as_u16()
}

/// Forged AppendEntries (a higher term, an entry to append and commit) to a follower and a
/// forged successful AppendEntriesResponse to the leader, without the secret (no credentials,
/// or a made-up MAC): refused, and no node's term, log or commit index moves. Then the cluster
/// still fails over and serves: the 3-node failover in secret mode.
#[tokio::test]
async fn forged_raft_messages_without_the_secret_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), "secret", "a shared secret of the test cluster");
    let mut c = start_with_secret(&secret).await;
    let leader = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    let follower = (leader + 1) % 3;
    put(&c.client(leader), "k", "v", 1).await;
    poll_until("the follower to commit k", CONVERGE_TIMEOUT, || {
        let c = &c;
        async move {
            let (_, commit, _) = raft_state(c, follower).await;
            let (_, leader_commit, _) = raft_state(c, leader).await;
            Ok((commit == leader_commit).then_some(()))
        }
    })
    .await
    .unwrap();
    let before: Vec<_> = all_states(&c).await;

    let forged_append = json!({"from": c.id(leader), "msg": {
        "type": "append_entries", "term": before[follower].0 + 10, "leader_id": c.id(leader),
        "prev_log_index": before[follower].2, "prev_log_term": before[follower].0,
        "leader_commit": before[follower].2 + 1,
        "entries": [{"index": before[follower].2 + 1, "term": before[follower].0 + 10,
            "cmd": {"client_id": "forger", "seq": 1, "op": "put", "key": "k", "value": "forged"}}]
    }});
    let forged_ack = json!({"from": c.id(follower), "msg": {
        "type": "append_entries_response", "term": before[leader].0, "success": true,
        "match_index": before[leader].2
    }});
    let claims = |from: &str, to: &str| {
        vec![
            ("x-raftkv-cluster".to_string(), "raftkv".to_string()),
            ("x-raftkv-from".to_string(), from.to_string()),
            ("x-raftkv-to".to_string(), to.to_string()),
            ("x-raftkv-time".to_string(), now_ms().to_string()),
            (
                "x-raftkv-mac".to_string(),
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_string(),
            ),
        ]
    };
    for (to, path, body, from) in [
        (follower, "/raft/append_entries", &forged_append, leader),
        (leader, "/raft/append_entries", &forged_ack, follower),
    ] {
        let none = post_raft(&c, to, path, body.clone(), &[]).await;
        assert_eq!(none, 403, "no credentials");
        let made_up = claims(c.id(from), c.id(to));
        let made_up: Vec<(&str, &str)> = made_up
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let status = post_raft(&c, to, path, body.clone(), &made_up).await;
        assert_eq!(status, 401, "a made-up MAC");
    }
    let after = all_states(&c).await;
    assert_eq!(
        after, before,
        "a forged message moved a term, log or commit index"
    );
    let value = c.client(leader).get("k").await.unwrap();
    assert_eq!(value.as_deref(), Some("v"));
    assert!(
        c.log_of(follower).contains("refused a raft request"),
        "the refusal was not logged"
    );

    // Failover with the secret.
    c.kill(leader).unwrap();
    let next = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    assert_ne!(next, leader);
    put(&c.client(next), "after", "failover", 1).await;
    c.restart(leader).await.unwrap();
    poll_until("the old leader to catch up", CONVERGE_TIMEOUT, || {
        let client = c.client(leader);
        async move { Ok((client.get("after").await?.as_deref() == Some("failover")).then_some(())) }
    })
    .await
    .unwrap();
}

/// The wall clock in milliseconds since the Unix epoch, as a request's time header holds it.
fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// Every node's (term, commit index, last log index).
async fn all_states(c: &Cluster) -> Vec<(u64, u64, u64)> {
    let mut out = Vec::new();
    for i in 0..3 {
        out.push(raft_state(c, i).await);
    }
    out
}

/// A node restarted with another secret hears nothing from its cluster (and its own messages
/// are refused): the other two go on committing without it, and it holds none of it.
#[tokio::test]
async fn a_node_with_the_wrong_secret_gets_nothing_from_its_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), "secret", "a shared secret of the test cluster");
    let wrong = secret_file(dir.path(), "wrong", "not the secret of the test cluster");
    let mut c = start_with_secret(&secret).await;
    let leader = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    let outsider = (leader + 1) % 3;
    c.kill(outsider).unwrap();
    c.set_arg(
        outsider,
        "--cluster-secret-file",
        Some(&wrong.display().to_string()),
    );
    c.restart(outsider).await.unwrap();
    let client = c.client(leader);
    for i in 0..5 {
        put(&client, &format!("k{i}"), "v", i + 1).await;
    }
    // The leader's messages reach it and are refused there: it logs that once.
    poll_until(
        "the outsider to refuse its leader",
        CONVERGE_TIMEOUT,
        || {
            let log = c.log_of(outsider);
            async move { Ok(log.contains("refused a raft request").then_some(())) }
        },
    )
    .await
    .unwrap();
    let (_, leader_commit, _) = raft_state(&c, leader).await;
    let (_, commit, _) = raft_state(&c, outsider).await;
    assert!(
        commit < leader_commit,
        "the outsider committed {commit} of {leader_commit}"
    );
    assert_eq!(c.client(outsider).get("k4").await.unwrap(), None);
    // Refused every heartbeat for seconds, logged once per sender and reason: the two other
    // nodes, with a wrong MAC (and maybe a stale time), at most four lines.
    let lines = c.log_of(outsider).matches("refused a raft request").count();
    assert!((1..=4).contains(&lines), "{lines} refusal lines");
}
