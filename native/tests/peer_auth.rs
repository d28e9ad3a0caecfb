//! The Raft routes of a node with a cluster secret, over real HTTP: only a sender that proves
//! the secret, names this cluster and this node, and sends as itself gets a message in; every
//! refusal is 401 or 403 with the JSON error body, and nothing reaches the inbox.

use std::sync::Arc;
use std::time::Duration;

use raftkv_core::kvraft::Message;
use raftkv_core::raft::Transport;
use raftkv_core::types::NodeId;
use raftkv_native::transport::client::with_peer_headers;
use raftkv_native::transport::server::{DEFAULT_BODY_LIMIT, router_with};
use raftkv_native::transport::{
    APPEND_ENTRIES_PATH, HttpTransport, PeerAuth, StaticPeers, TransportConfig,
};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::timeout;

const SECRET: &[u8] = b"the cluster secret, 32 bytes ok!";

fn auth(cluster: &str, secret: &[u8]) -> Arc<PeerAuth> {
    Arc::new(PeerAuth::with_secret(cluster, secret.to_vec()).unwrap())
}

/// A forged AppendEntries: a higher term and an entry that would be appended and committed.
fn forged_append() -> Message {
    serde_json::from_value(json!({
        "type": "append_entries", "term": 99, "leader_id": "n3", "prev_log_index": 0,
        "prev_log_term": 0, "leader_commit": 1,
        "entries": [{"index": 1, "term": 99, "cmd": {"client_id": "x", "seq": 1, "op": "put", "key": "k", "value": "forged"}}]
    }))
    .unwrap()
}

/// Node n1's Raft routes with the cluster secret; returns its address and inbox.
async fn node_n1() -> (String, mpsc::UnboundedReceiver<(NodeId, Message)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = router_with(
        Arc::new(tx),
        DEFAULT_BODY_LIMIT,
        auth("c1", SECRET),
        Some(NodeId::from("n1")),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, rx)
}

/// POSTs the envelope of `msg` from `from` with the headers `signer` makes for `to` (none
/// without a signer).
async fn post(
    addr: &str,
    signer: Option<&PeerAuth>,
    from: &str,
    to: &str,
    envelope_from: &str,
    msg: &Message,
) -> (u16, Value) {
    let body = serde_json::to_vec(&json!({"from": envelope_from, "msg": msg})).unwrap();
    let mut req = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("http://{addr}{APPEND_ENTRIES_PATH}"))
        .header("content-type", "application/json");
    if let Some(s) = signer {
        req = with_peer_headers(
            req,
            s,
            &NodeId::from(from),
            &NodeId::from(to),
            APPEND_ENTRIES_PATH,
            &body,
        );
    }
    let resp = req.body(body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn peer_auth_requests_without_the_secret_are_refused_and_deliver_nothing() {
    let (addr, mut rx) = node_n1().await;
    let m = forged_append();
    let open = PeerAuth::open("c1");
    let wrong = auth("c1", b"another secret of enough length");
    let other_cluster = auth("c2", SECRET);
    let right = auth("c1", SECRET);
    // (what, signer, header sender, addressee, envelope sender, status, error code)
    type Case<'a> = (
        &'a str,
        Option<&'a PeerAuth>,
        &'a str,
        &'a str,
        &'a str,
        u16,
        &'a str,
    );
    let cases: [Case; 6] = [
        ("no headers", None, "n3", "n1", "n3", 403, "forbidden"),
        (
            "no MAC",
            Some(&open),
            "n3",
            "n1",
            "n3",
            401,
            "unauthenticated",
        ),
        (
            "a wrong secret",
            Some(&wrong),
            "n3",
            "n1",
            "n3",
            401,
            "unauthenticated",
        ),
        (
            "another cluster",
            Some(&other_cluster),
            "n3",
            "n1",
            "n3",
            403,
            "forbidden",
        ),
        (
            "another addressee",
            Some(&right),
            "n3",
            "n2",
            "n3",
            403,
            "forbidden",
        ),
        (
            "a message claiming another sender",
            Some(&right),
            "n2",
            "n1",
            "n3",
            403,
            "forbidden",
        ),
    ];
    for (what, signer, from, to, envelope_from, status, code) in cases {
        let (got, body) = post(&addr, signer, from, to, envelope_from, &m).await;
        assert_eq!(got, status, "{what}: {body}");
        assert_eq!(body["ok"], false, "{what}: {body}");
        assert_eq!(body["err_code"], code, "{what}: {body}");
    }
    assert!(
        rx.try_recv().is_err(),
        "a refused request reached the inbox"
    );
    // The same message, properly signed, is taken.
    let (got, body) = post(&addr, Some(&right), "n3", "n1", "n3", &m).await;
    assert_eq!(got, 202, "{body}");
    let (from, taken) = rx.recv().await.unwrap();
    assert_eq!((from, taken), (NodeId::from("n3"), m));
}

#[tokio::test]
async fn peer_auth_a_transport_with_the_wrong_secret_delivers_nothing() {
    let (addr, mut rx) = node_n1().await;
    let peers = StaticPeers([(NodeId::from("n1"), addr)].into_iter().collect());
    let sender = |secret: &[u8]| {
        let config = TransportConfig {
            auth: auth("c1", secret),
            ..TransportConfig::default()
        };
        HttpTransport::new("n3".into(), peers.clone(), config).unwrap()
    };
    let mut wrong = sender(b"another secret of enough length");
    wrong.send(&"n1".into(), forged_append());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while wrong.stats(&"n1".into()).failed == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the refusal never came back"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(wrong.stats(&"n1".into()).delivered, 0);
    assert!(
        rx.try_recv().is_err(),
        "a wrong secret's message reached the inbox"
    );
    let mut right = sender(SECRET);
    right.send(&"n1".into(), forged_append());
    let (from, _) = timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("delivered within 10 s")
        .unwrap();
    assert_eq!(from, NodeId::from("n3"));
}
