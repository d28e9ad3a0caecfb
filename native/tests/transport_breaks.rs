//! The stream handshake's deliberate break (`--features protocol-breaks`): with the mac check
//! skipped, a peer with the wrong secret gets a message delivered, which is exactly what
//! `transport_stream.rs`'s `stream_a_wrong_secret_or_another_cluster_delivers_nothing` checks
//! cannot happen. A check that cannot fail proves nothing; this shows it can.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use raftkv_core::kvraft::Message;
use raftkv_core::raft::Transport;
use raftkv_core::types::NodeId;
use raftkv_native::transport::stream::handshake::BREAK_SKIP_MAC;
use raftkv_native::transport::stream::listener::{self, ListenerConfig};
use raftkv_native::transport::{PeerAuth, StaticPeers, StreamTransport, TransportConfig};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

#[tokio::test]
async fn with_the_mac_check_skipped_a_wrong_secret_gets_its_message_delivered() {
    BREAK_SKIP_MAC.store(true, Ordering::Relaxed);
    let auth = |s: &[u8]| Arc::new(PeerAuth::with_secret("c1", s.to_vec()).unwrap());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let (_task, stats) = listener::spawn(
        l,
        ListenerConfig {
            me: NodeId::from("n2"),
            auth: auth(b"the cluster's own secret"),
            inbox: Arc::new(tx),
            frame_limit: 1 << 20,
            tls: None,
            on_hello: None,
        },
    );
    let peers = StaticPeers([(NodeId::from("n2"), addr)].into_iter().collect());
    let config = TransportConfig {
        auth: auth(b"a stranger's secret, not the cluster's"),
        ..TransportConfig::default()
    };
    let mut t = StreamTransport::new("n1".into(), peers, config, None).unwrap();
    let m: Message =
        serde_json::from_value(json!({"type": "timeout_now", "term": 9, "leader_id": "n1"}))
            .unwrap();
    t.send(&"n2".into(), m.clone());
    // The stranger's handshake passes the broken check (what the stream tests' "accepted
    // == 0" catches); its frames still carry tags under a session key derived from the wrong
    // secret, so the tag check refuses them: the second line of defence.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while stats.bad_frames.load(Ordering::Relaxed) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no bad frame within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        stats.accepted.load(Ordering::Relaxed),
        1,
        "the broken check let the stranger in"
    );
    assert!(
        rx.try_recv().is_err(),
        "a frame under the wrong key was delivered"
    );
}
