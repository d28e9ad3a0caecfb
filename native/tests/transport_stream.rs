//! The stream transport against a real peer listener on 127.0.0.1:0: what goes through, in
//! order, and what a stranger (no handshake, a wrong secret, another cluster, an untrusted or
//! misnamed certificate) cannot get in.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use raftkv_core::kvraft::Message;
use raftkv_core::raft::Transport;
use raftkv_core::types::NodeId;
use raftkv_native::transport::stream::frame::write_frame;
use raftkv_native::transport::stream::listener::{self, ListenerConfig, ListenerStats};
use raftkv_native::transport::wire::encode_batch;
use raftkv_native::transport::{PeerAuth, PeerTls, StaticPeers, StreamTransport, TransportConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

const SECRET: &[u8] = b"a cluster secret of enough bytes";

fn msg(v: Value) -> Message {
    serde_json::from_value(v).expect("test message")
}

fn append(i: u64) -> Message {
    msg(json!({
        "type": "append_entries", "term": 3, "leader_id": "n1", "prev_log_index": i,
        "prev_log_term": 2, "leader_commit": i,
        "entries": [
            {"index": i + 1, "term": 3, "cmd": null},
            {"index": i + 2, "term": 3, "cmd": {"client_id": "c", "seq": i, "op": "put", "key": "k", "value": "v"}}
        ]
    }))
}

fn every_kind() -> Vec<Message> {
    let data: Vec<u8> = (0..=255u8).chain([0, 0, 0xff]).collect();
    vec![
        msg(
            json!({"type": "request_vote", "term": 2, "candidate_id": "n1", "last_log_index": 3, "last_log_term": 1, "pre_vote": true}),
        ),
        msg(
            json!({"type": "request_vote_response", "term": 2, "vote_granted": true, "pre_vote": false}),
        ),
        append(4),
        msg(
            json!({"type": "append_entries_response", "term": 3, "success": true, "match_index": 6}),
        ),
        msg(
            json!({"type": "install_snapshot", "term": 4, "leader_id": "n1", "last_included_index": 100, "last_included_term": 3, "data": data}),
        ),
        msg(json!({"type": "install_snapshot_response", "term": 4, "last_included_index": 100})),
        msg(json!({"type": "timeout_now", "term": 4, "leader_id": "n1"})),
    ]
}

type Inbox = mpsc::UnboundedReceiver<(NodeId, Message)>;

/// Node n2's peer listener; returns its address, inbox and counters.
async fn listen(auth: PeerAuth, tls: Option<Arc<PeerTls>>) -> (String, Inbox, Arc<ListenerStats>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let (_task, stats) = listener::spawn(
        l,
        ListenerConfig {
            me: NodeId::from("n2"),
            auth: Arc::new(auth),
            inbox: Arc::new(tx),
            frame_limit: 1 << 20,
            tls,
            on_hello: None,
        },
    );
    (addr, rx, stats)
}

fn sender(from: &str, addr: &str, auth: PeerAuth, tls: Option<Arc<PeerTls>>) -> StreamTransport {
    let peers = StaticPeers(
        [(NodeId::from("n2"), addr.to_string())]
            .into_iter()
            .collect(),
    );
    let config = TransportConfig {
        auth: Arc::new(auth),
        ..TransportConfig::default()
    };
    StreamTransport::new(from.into(), peers, config, tls).unwrap()
}

async fn recv(rx: &mut Inbox) -> (NodeId, Message) {
    timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("message within 10 s")
        .expect("inbox open")
}

fn secret() -> PeerAuth {
    PeerAuth::with_secret("c1", SECRET.to_vec()).unwrap()
}

/// Polls `f` every 10 ms until it holds or `within` passes.
async fn eventually(what: &str, within: Duration, f: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn stream_every_message_kind_arrives_from_the_authenticated_sender() {
    let (addr, mut rx, _) = listen(secret(), None).await;
    let mut t = sender("n1", &addr, secret(), None);
    for m in every_kind() {
        t.send(&"n2".into(), m.clone());
        assert_eq!(recv(&mut rx).await, ("n1".into(), m));
    }
}

#[tokio::test]
async fn stream_a_burst_arrives_complete_and_in_order() {
    let (addr, mut rx, _) = listen(secret(), None).await;
    let mut t = sender("n1", &addr, secret(), None);
    for i in 0..200 {
        t.send(&"n2".into(), append(i));
    }
    for i in 0..200 {
        assert_eq!(recv(&mut rx).await.1, append(i), "message {i}");
    }
    let s = t.stats(&"n2".into());
    assert_eq!((s.queued, s.delivered, s.failed), (200, 200, 0));
}

#[tokio::test]
async fn stream_a_wrong_secret_or_another_cluster_delivers_nothing() {
    let (addr, mut rx, stats) = listen(secret(), None).await;
    let wrong = PeerAuth::with_secret("c1", b"not the secret, though long".to_vec()).unwrap();
    let mut a = sender("n1", &addr, wrong, None);
    let mut b = sender("n3", &addr, PeerAuth::open("c1"), None);
    let other = PeerAuth::with_secret("c2", SECRET.to_vec()).unwrap();
    let mut c = sender("n4", &addr, other, None);
    for t in [&mut a, &mut b, &mut c] {
        t.send(&"n2".into(), append(1));
    }
    eventually("three refusals", Duration::from_secs(10), || {
        stats.refused.load(Ordering::Relaxed) >= 3
    })
    .await;
    assert!(rx.try_recv().is_err(), "a stranger's message was delivered");
    assert_eq!(stats.accepted.load(Ordering::Relaxed), 0);
    eventually("the refused sends counted", Duration::from_secs(10), || {
        a.stats(&"n2".into()).failed >= 1
    })
    .await;
}

#[tokio::test]
async fn stream_frames_without_a_handshake_deliver_nothing() {
    let (addr, mut rx, stats) = listen(PeerAuth::open("c1"), None).await;
    let mut tcp = TcpStream::connect(&addr).await.unwrap();
    // Skip the challenge and the hello: straight to a frame of messages.
    let body = encode_batch(vec![append(1)]).unwrap();
    write_frame(&mut tcp, &body, None).await.unwrap();
    tcp.flush().await.unwrap();
    // The listener answers with a refusal and closes; the connection reaches its end.
    let mut buf = Vec::new();
    let _ = timeout(Duration::from_secs(10), tcp.read_to_end(&mut buf)).await;
    eventually("the refusal", Duration::from_secs(10), || {
        stats.refused.load(Ordering::Relaxed) >= 1
    })
    .await;
    assert!(rx.try_recv().is_err());
}

#[tokio::test]
async fn stream_reconnects_when_the_peer_listens_again() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let mut t = sender("n1", &addr.to_string(), secret(), None);
    // Nobody listens: the sends fail, counted.
    t.send(&"n2".into(), append(1));
    eventually("a failed send", Duration::from_secs(10), || {
        t.stats(&"n2".into()).failed >= 1
    })
    .await;
    // The peer comes up on the same address; later sends go through.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let l = TcpListener::bind(addr).await.unwrap();
    let (_task, _) = listener::spawn(
        l,
        ListenerConfig {
            me: NodeId::from("n2"),
            auth: Arc::new(secret()),
            inbox: Arc::new(tx),
            frame_limit: 1 << 20,
            tls: None,
            on_hello: None,
        },
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        t.send(&"n2".into(), append(2));
        if let Ok(Some((from, m))) = timeout(Duration::from_millis(100), rx.recv()).await {
            assert_eq!((from, m), ("n1".into(), append(2)));
            break;
        }
        assert!(Instant::now() < deadline, "no reconnect within 10 s");
    }
}

/// A CA and certificates for nodes, made with rcgen.
struct Pki {
    ca: rcgen::Issuer<'static, rcgen::KeyPair>,
    ca_pem: String,
}

impl Pki {
    fn new() -> Pki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Pki {
            ca_pem: cert.pem(),
            ca: rcgen::Issuer::new(params, key),
        }
    }

    /// TLS for a node whose certificate names `name`.
    fn node(&self, name: &str) -> Arc<PeerTls> {
        let params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let tls = PeerTls::from_pem(
            cert.pem().as_bytes(),
            key.serialize_pem().as_bytes(),
            self.ca_pem.as_bytes(),
        );
        Arc::new(tls.unwrap())
    }
}

#[tokio::test]
async fn stream_mutual_tls_delivers_between_nodes_of_one_ca() {
    let pki = Pki::new();
    let open = || PeerAuth::open("c1");
    let (addr, mut rx, _) = listen(open(), Some(pki.node("n2"))).await;
    let mut t = sender("n1", &addr, open(), Some(pki.node("n1")));
    for m in every_kind() {
        t.send(&"n2".into(), m.clone());
        assert_eq!(recv(&mut rx).await, ("n1".into(), m));
    }
}

#[tokio::test]
async fn stream_an_untrusted_or_misnamed_certificate_delivers_nothing() {
    let pki = Pki::new();
    let open = || PeerAuth::open("c1");
    let (addr, mut rx, stats) = listen(open(), Some(pki.node("n2"))).await;
    // A certificate of another CA.
    let mut stranger = sender("n1", &addr, open(), Some(Pki::new().node("n1")));
    // A good certificate, but of node n3, claiming to be n1.
    let mut impostor = sender("n1", &addr, open(), Some(pki.node("n3")));
    for t in [&mut stranger, &mut impostor] {
        t.send(&"n2".into(), append(1));
    }
    eventually("two refusals", Duration::from_secs(10), || {
        stats.refused.load(Ordering::Relaxed) >= 2
    })
    .await;
    assert!(
        rx.try_recv().is_err(),
        "a refused peer's message was delivered"
    );
    assert_eq!(stats.accepted.load(Ordering::Relaxed), 0);
}

#[test]
fn stream_encoding_round_trips_every_message_kind() {
    let all = every_kind();
    let bytes = encode_batch(all.clone()).unwrap();
    let back = raftkv_native::transport::wire::decode_batch(&bytes);
    assert_eq!(back.unwrap(), all);
}
