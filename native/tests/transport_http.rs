//! The HTTP Raft transport against a real local server on 127.0.0.1:0.

use std::sync::Arc;
use std::time::Duration;

use raftkv_core::kvraft::Message;
use raftkv_core::raft::Transport;
use raftkv_core::types::NodeId;
use raftkv_native::transport::PeerAuth;
use raftkv_native::transport::client::with_peer_headers;
use raftkv_native::transport::{
    self, APPEND_ENTRIES_PATH, Envelope, HttpTransport, INSTALL_SNAPSHOT_PATH, REQUEST_VOTE_PATH,
    RaftInbox, StaticPeers, TransportConfig, inbox,
};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

/// Messages are built from JSON so fields core adds later (with serde defaults) do not break
/// these tests.
fn msg(v: Value) -> Message {
    serde_json::from_value(v).expect("test message")
}

fn append_entries() -> Message {
    msg(json!({
        "type": "append_entries", "term": 3, "leader_id": "n1", "prev_log_index": 4,
        "prev_log_term": 2, "leader_commit": 4,
        "entries": [
            {"index": 5, "term": 3, "cmd": null},
            {"index": 6, "term": 3, "cmd": {"client_id": "c", "seq": 1, "op": "put", "key": "k", "value": "v"}}
        ]
    }))
}

/// A Raft server on a free loopback port whose inbox is the returned channel.
async fn start_server() -> (String, mpsc::UnboundedReceiver<(NodeId, Message)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = transport::router(Arc::new(tx));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, rx)
}

fn transport_to(peers: &[(&str, &str)], config: TransportConfig) -> HttpTransport {
    let peers = peers
        .iter()
        .map(|(id, addr)| (NodeId::from(*id), addr.to_string()))
        .collect();
    HttpTransport::new("n1".into(), StaticPeers(peers), config).unwrap()
}

async fn recv(rx: &mut mpsc::UnboundedReceiver<(NodeId, Message)>) -> (NodeId, Message) {
    timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("message within 10 s")
        .expect("inbox open")
}

async fn round_trip(m: Message) {
    let (addr, mut rx) = start_server().await;
    let mut t = transport_to(&[("n2", &addr)], TransportConfig::default());
    t.send(&"n2".into(), m.clone());
    assert_eq!(recv(&mut rx).await, ("n1".into(), m));
}

#[tokio::test]
async fn transport_http_append_entries_round_trip() {
    round_trip(append_entries()).await;
    round_trip(msg(json!({
        "type": "append_entries_response", "term": 3, "success": false, "match_index": 0,
        "conflict_index": 2, "conflict_term": 1
    })))
    .await;
}

#[tokio::test]
async fn transport_http_request_vote_round_trip() {
    round_trip(msg(json!({
        "type": "request_vote", "term": 7, "candidate_id": "n3", "last_log_index": 9,
        "last_log_term": 6, "pre_vote": true
    })))
    .await;
    round_trip(msg(json!({
        "type": "request_vote_response", "term": 7, "vote_granted": true, "pre_vote": false
    })))
    .await;
}

#[tokio::test]
async fn transport_http_install_snapshot_base64_round_trip() {
    let data: Vec<u8> = (0..=255u8)
        .chain((0..=255u8).rev())
        .chain([0, 0, 0xff])
        .collect();
    let snap = msg(json!({
        "type": "install_snapshot", "term": 4, "leader_id": "n1",
        "last_included_index": 100, "last_included_term": 3, "data": data
    }));
    // On the wire the bytes are one base64 string, not an array of numbers.
    let wire = serde_json::to_value(Envelope::new("n1".into(), snap.clone())).unwrap();
    assert_eq!(
        wire["msg"]["data"],
        Value::String(base64_std(&data)),
        "data travels as standard base64"
    );
    round_trip(snap).await;
    round_trip(msg(json!({
        "type": "install_snapshot_response", "term": 4, "last_included_index": 100
    })))
    .await;
}

/// Standard padded base64, written out here so the test does not trust the code under test.
fn base64_std(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// POSTs `body` to `path` as peer n2 of the default cluster would (its headers, no secret).
async fn post_raw(addr: &str, path: &str, body: &'static str) -> (u16, Value) {
    let req = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("http://{addr}{path}"))
        .header("content-type", "application/json");
    let req = with_peer_headers(
        req,
        &PeerAuth::default(),
        &NodeId::from("n2"),
        &NodeId::from("n1"),
        path,
        body.as_bytes(),
    );
    let resp = req.body(body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn transport_http_bad_json_returns_400() {
    let (addr, mut rx) = start_server().await;
    let bad: [(&str, &'static str); 6] = [
        (APPEND_ENTRIES_PATH, "{not json"),
        (
            APPEND_ENTRIES_PATH,
            r#"{"msg": {"type": "append_entries"}}"#,
        ),
        (
            REQUEST_VOTE_PATH,
            r#"{"from": "n2", "msg": {"type": "no_such_message"}}"#,
        ),
        (
            INSTALL_SNAPSHOT_PATH,
            r#"{"from": "n2", "msg": {"type": "install_snapshot", "term": 1, "leader_id": "n2", "last_included_index": 1, "last_included_term": 1, "data": "*not base64*"}}"#,
        ),
        // A well-formed message on another RPC's route.
        (
            REQUEST_VOTE_PATH,
            r#"{"from": "n2", "msg": {"type": "install_snapshot_response", "term": 1, "last_included_index": 1}}"#,
        ),
        (APPEND_ENTRIES_PATH, ""),
    ];
    for (path, body) in bad {
        let (status, json) = post_raw(&addr, path, body).await;
        assert_eq!(status, 400, "{path} {body}");
        assert_eq!(json["ok"], false, "{json}");
        assert_eq!(json["err_code"], "bad_request", "{json}");
        assert!(
            json["err_msg"].as_str().is_some_and(|m| !m.is_empty()),
            "{json}"
        );
    }
    // A good one still works, and only it reached the inbox.
    let (status, json) = post_raw(
        &addr,
        INSTALL_SNAPSHOT_PATH,
        r#"{"from": "n2", "msg": {"type": "install_snapshot_response", "term": 1, "last_included_index": 1}}"#,
    )
    .await;
    assert_eq!((status, json), (202, json!({"ok": true})));
    let (from, m) = recv(&mut rx).await;
    assert_eq!(from, NodeId::from("n2"));
    assert_eq!(m.kind(), "install_snapshot_response");
    assert!(rx.try_recv().is_err());
}

#[tokio::test]
async fn transport_http_full_inbox_returns_503() {
    let (tx, _rx) = inbox::inbox(1, 1 << 20);
    tx.deliver("x".into(), append_entries(), 10).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, transport::router(Arc::new(tx))).await });
    let (status, json) = post_raw(
        &addr,
        REQUEST_VOTE_PATH,
        r#"{"from": "n2", "msg": {"type": "request_vote_response", "term": 1, "vote_granted": true, "pre_vote": false}}"#,
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(json["err_code"], "unavailable");
}

#[tokio::test]
async fn transport_http_inbox_over_its_byte_budget_returns_503() {
    // Room for many messages but few bytes: the first vote response (about 100 bytes of
    // JSON) takes most of the 150-byte budget, so the second is refused until the driver
    // takes the first out.
    let (tx, mut rx) = inbox::inbox(100, 150);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, transport::router(Arc::new(tx))).await });
    let body = r#"{"from": "n2", "msg": {"type": "request_vote_response", "term": 1, "vote_granted": true, "pre_vote": false}}"#;
    assert!(body.len() > 75 && body.len() <= 150);
    let (status, _) = post_raw(&addr, REQUEST_VOTE_PATH, body).await;
    assert_eq!(status, 202);
    let (status, json) = post_raw(&addr, REQUEST_VOTE_PATH, body).await;
    assert_eq!(status, 503);
    assert_eq!(json["err_code"], "unavailable");
    drop(rx.recv().await.unwrap());
    let (status, _) = post_raw(&addr, REQUEST_VOTE_PATH, body).await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn transport_http_a_peer_queue_is_bounded_in_bytes_not_only_in_messages() {
    // A peer that accepts connections and never answers: its worker holds one message in
    // flight, and the rest wait in the queue.
    let hole = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole_addr = hole.local_addr().unwrap().to_string();
    let mut t = transport_to(
        &[("n2", &hole_addr)],
        TransportConfig {
            queue_capacity: 256,
            queue_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            ..TransportConfig::default()
        },
    );
    let value = "x".repeat(10_000);
    let big = msg(json!({
        "type": "append_entries", "term": 3, "leader_id": "n1", "prev_log_index": 4,
        "prev_log_term": 2, "leader_commit": 4,
        "entries": [{"index": 5, "term": 3, "cmd": {"client_id": "c", "seq": 1, "op": "put", "key": "k", "value": value}}]
    }));
    let to = NodeId::from("n2");
    for _ in 0..20 {
        t.send(&to, big.clone());
    }
    // About 10 KB each against a 64 KiB budget: six or seven are taken (one of them may
    // already be in flight), the rest dropped although the queue has room for 256.
    let stats = t.stats(&to);
    assert!(
        (6..=8).contains(&stats.queued) && stats.dropped_full == 20 - stats.queued,
        "{stats:?}"
    );
}

/// Polls `cond` until it holds or `deadline` passes.
async fn eventually(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

#[tokio::test]
async fn transport_http_dead_peer_does_not_delay_live_peer() {
    let (live, mut rx) = start_server().await;
    // A listener that never accepts: connections complete in the kernel backlog, requests
    // never get an answer, so every request to it runs into the timeout.
    let hole = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole_addr = hole.local_addr().unwrap().to_string();
    // A port with nothing listening: connections are refused.
    let closed_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let timeout_ms = 1500;
    let mut t = transport_to(
        &[("n2", &live), ("n3", &hole_addr), ("n4", &closed_addr)],
        TransportConfig {
            queue_capacity: 4,
            request_timeout: Duration::from_millis(timeout_ms),
            connect_timeout: Duration::from_millis(timeout_ms),
            slowest_link_bytes_per_sec: 0,
            ..TransportConfig::default()
        },
    );
    // Flood the dead peers first: with one shared queue the live peer's message would wait
    // behind 20 timeouts (30 s).
    for _ in 0..20 {
        t.send(&"n3".into(), append_entries());
        t.send(&"n4".into(), append_entries());
    }
    let started = Instant::now();
    t.send(&"n2".into(), append_entries());
    let (from, m) = recv(&mut rx).await;
    let took = started.elapsed();
    assert_eq!((from, m), ("n1".into(), append_entries()));
    assert!(
        took < Duration::from_millis(timeout_ms),
        "live peer waited {took:?}, as long as a dead peer's timeout"
    );

    // The dead peers' queues overflowed (drops counted) and their requests fail.
    let n3: NodeId = "n3".into();
    let n4: NodeId = "n4".into();
    assert!(t.stats(&n3).dropped_full > 0, "{:?}", t.stats(&n3));
    assert!(
        eventually(Duration::from_secs(10), || t.stats(&n3).failed >= 1).await,
        "the black-hole peer's request timed out: {:?}",
        t.stats(&n3)
    );
    assert!(
        eventually(Duration::from_secs(10), || t.stats(&n4).failed >= 1).await,
        "the refused peer's request failed: {:?}",
        t.stats(&n4)
    );
    assert_eq!(t.stats(&n3).delivered, 0);
    assert_eq!(t.stats(&"n2".into()).queued, 1);
    assert!(
        eventually(Duration::from_secs(5), || t.stats(&"n2".into()).delivered
            == 1)
        .await
    );
    drop(hole);
}

#[tokio::test]
async fn transport_http_unknown_peer_is_counted_not_fatal() {
    let mut t = transport_to(&[], TransportConfig::default());
    t.send(&"nx".into(), append_entries());
    assert!(
        eventually(Duration::from_secs(5), || t.stats(&"nx".into()).unresolved
            == 1)
        .await
    );
}
