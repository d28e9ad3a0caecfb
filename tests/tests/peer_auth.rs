//! A kvserver cluster with a cluster secret (`--cluster-secret-file`): forged Raft messages
//! change nothing, a node with the wrong secret gets nothing, and the cluster still fails
//! over. Real processes on loopback; every wait polls with a deadline.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use raftkv_core::kvraft::Message;
use raftkv_core::raft::Transport;
use raftkv_core::types::NodeId;
use raftkv_native::transport::{
    APPEND_ENTRIES_PATH, PeerAuth, StaticPeers, StreamTransport, TransportConfig,
};
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

/// POSTs a Raft envelope to `addr`'s `path` with the given extra headers.
async fn post_raft(addr: SocketAddr, path: &str, body: Value, headers: &[(&str, &str)]) -> u16 {
    let mut req = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("http://{addr}{path}"))
        .json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap().status().as_u16()
}

/// Sends `msgs` as `from` to node `to` at `addr` over the peer stream, with `auth`'s
/// credentials, and returns the sender's counters once every message got an outcome (all
/// refused, they count as failed).
async fn stream_send(from: &str, to: &str, addr: SocketAddr, auth: PeerAuth, msgs: Vec<Message>) {
    let peers = StaticPeers([(NodeId::from(to), addr.to_string())].into_iter().collect());
    let config = TransportConfig {
        auth: Arc::new(auth),
        ..TransportConfig::default()
    };
    let mut t = StreamTransport::new(from.into(), peers, config, None).unwrap();
    let n = msgs.len() as u64;
    for m in msgs {
        t.send(&NodeId::from(to), m);
    }
    poll_until("the forged sends to be refused", CONVERGE_TIMEOUT, || {
        let s = t.stats(&NodeId::from(to));
        async move {
            assert_eq!(
                s.delivered, 0,
                "a forged message was written past the handshake"
            );
            Ok((s.failed >= n).then_some(()))
        }
    })
    .await
    .unwrap();
}

/// Forged AppendEntries (a higher term, an entry to append and commit) to a follower and a
/// forged successful AppendEntriesResponse to the leader: the client port has no Raft route
/// (404, credentials or not), and the peer listener refuses a connection without the secret
/// (none, or another); no node's term, log or commit index moves. Then the cluster still
/// fails over and serves: the 3-node failover in secret mode.
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

    let forged_append = json!({
        "type": "append_entries", "term": before[follower].0 + 10, "leader_id": c.id(leader),
        "prev_log_index": before[follower].2, "prev_log_term": before[follower].0,
        "leader_commit": before[follower].2 + 1,
        "entries": [{"index": before[follower].2 + 1, "term": before[follower].0 + 10,
            "cmd": {"client_id": "forger", "seq": 1, "op": "put", "key": "k", "value": "forged"}}]
    });
    let forged_ack = json!({
        "type": "append_entries_response", "term": before[leader].0, "success": true,
        "match_index": before[leader].2
    });
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
    let wrong =
        || PeerAuth::with_secret("raftkv", b"not the secret of this cluster".to_vec()).unwrap();
    for (to, body, from) in [
        (follower, &forged_append, leader),
        (leader, &forged_ack, follower),
    ] {
        let envelope = json!({"from": c.id(from), "msg": body});
        let made_up = claims(c.id(from), c.id(to));
        let made_up: Vec<(&str, &str)> = made_up
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        for headers in [&[][..], &made_up[..]] {
            let status =
                post_raft(c.addr(to), APPEND_ENTRIES_PATH, envelope.clone(), headers).await;
            assert_eq!(status, 404, "the client port serves a Raft route");
        }
        let msg: Message = serde_json::from_value(body.clone()).unwrap();
        let (from, to_id, addr) = (c.id(from), c.id(to), c.peer_addr(to));
        stream_send(
            from,
            to_id,
            addr,
            PeerAuth::open("raftkv"),
            vec![msg.clone()],
        )
        .await;
        stream_send(from, to_id, addr, wrong(), vec![msg]).await;
    }
    let after = all_states(&c).await;
    assert_eq!(
        after, before,
        "a forged message moved a term, log or commit index"
    );
    let value = c.client(leader).get("k").await.unwrap();
    assert_eq!(value.as_deref(), Some("v"));
    assert!(
        c.log_of(follower)
            .contains("refused a raft request or connection"),
        "the refusal was not logged"
    );

    // Failover with the secret.
    fail_over(&mut c, leader).await;
}

/// The 3-node failover: `leader` is killed, another is elected and takes a write, and the old
/// leader, restarted, catches up.
async fn fail_over(c: &mut Cluster, leader: usize) {
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
            async move {
                Ok(log
                    .contains("refused a raft request or connection")
                    .then_some(()))
            }
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
    let lines = c
        .log_of(outsider)
        .matches("refused a raft request or connection")
        .count();
    assert!((1..=4).contains(&lines), "{lines} refusal lines");
}

/// A CA, and a certificate naming each node (its id as a DNS name), as PEM files in `dir`:
/// `ca.crt`, `{id}.crt`, `{id}.key`.
fn write_pki(dir: &Path, ids: &[&str]) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = params.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.crt"), ca_cert.pem()).unwrap();
    let ca = rcgen::Issuer::new(params, ca_key);
    for id in ids {
        let params = rcgen::CertificateParams::new(vec![id.to_string()]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        std::fs::write(dir.join(format!("{id}.crt")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{id}.key")), key.serialize_pem()).unwrap();
    }
}

/// Peers over mutual TLS: the cluster elects, replicates and fails over; a node restarted with
/// a certificate of another CA gets nothing from it.
#[tokio::test]
async fn a_mutual_tls_cluster_fails_over_and_an_untrusted_certificate_gets_nothing() {
    let pki = tempfile::tempdir().unwrap();
    write_pki(pki.path(), &["n1", "n2", "n3"]);
    let stranger = tempfile::tempdir().unwrap();
    write_pki(stranger.path(), &["n1", "n2", "n3"]);
    let file = |dir: &Path, name: &str| dir.join(name).display().to_string();
    let mut cfg = ClusterConfig::new(3);
    cfg.extra_args = vec![
        "--election-timeout-ms".into(),
        "200-400".into(),
        "--heartbeat-ms".into(),
        "40".into(),
        "--peer-cert".into(),
        file(pki.path(), "{id}.crt"),
        "--peer-key".into(),
        file(pki.path(), "{id}.key"),
        "--peer-ca".into(),
        file(pki.path(), "ca.crt"),
    ];
    let mut c = Cluster::start(cfg).await.expect("cluster starts");
    let leader = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    put(&c.client(leader), "k", "v", 1).await;

    // Failover over TLS.
    fail_over(&mut c, leader).await;

    // Another CA's certificate: refused both ways, it learns nothing new.
    let leader = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    let outsider = (leader + 1) % 3;
    c.kill(outsider).unwrap();
    let id = c.id(outsider).to_string();
    c.set_arg(
        outsider,
        "--peer-cert",
        Some(&file(stranger.path(), &format!("{id}.crt"))),
    );
    c.set_arg(
        outsider,
        "--peer-key",
        Some(&file(stranger.path(), &format!("{id}.key"))),
    );
    c.set_arg(
        outsider,
        "--peer-ca",
        Some(&file(stranger.path(), "ca.crt")),
    );
    c.restart(outsider).await.unwrap();
    put(&c.client(leader), "late", "v", 1).await;
    poll_until(
        "the outsider to refuse its leader",
        CONVERGE_TIMEOUT,
        || {
            let log = c.log_of(outsider);
            async move { Ok(log.contains("refused a peer TLS connection").then_some(())) }
        },
    )
    .await
    .unwrap();
    assert_eq!(c.client(outsider).get("late").await.unwrap(), None);
}
