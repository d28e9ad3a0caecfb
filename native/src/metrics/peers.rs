//! The peer transport's metrics, read at scrape time from the counters the transport keeps
//! anyway: per peer sent (the send queues' [`PeerStats`](crate::transport::PeerStats)) and
//! received (the stream listener's [`ListenerStats`]), and the listener's connections.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;

use super::raft::counter;
use crate::transport::SendCounters;
use crate::transport::stream::listener::ListenerStats;

/// Reads the transport's counters when scraped.
#[derive(Debug)]
pub(super) struct PeerCollector {
    pub(super) sent: SendCounters,
    pub(super) listener: Option<Arc<ListenerStats>>,
}

/// Encodes a counter with one series per peer, labelled `label` (etcd's `To` or `From`).
fn per_peer(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &'static str,
    rows: &[(String, u64)],
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (peer, v) in rows {
        let labels = [(label, peer.as_str())];
        ConstCounter::new(*v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for PeerCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let sent = self.sent.snapshot();
        let rows = |f: fn(&crate::transport::PeerStats) -> u64| -> Vec<(String, u64)> {
            sent.iter().map(|(id, s)| (id.to_string(), f(s))).collect()
        };
        per_peer(
            &mut enc,
            "etcd_network_peer_sent_bytes",
            "The total number of bytes sent to peers (frames or request bodies, no TLS).",
            "To",
            &rows(|s| s.sent_bytes),
        )?;
        per_peer(
            &mut enc,
            "etcd_network_peer_sent_failures",
            "The total number of messages that failed to reach a peer (connect or write \
             failures, refusals, unknown address).",
            "To",
            &rows(|s| s.failed + s.unresolved),
        )?;
        per_peer(
            &mut enc,
            "raftkv_network_peer_sent_messages",
            "Raft messages sent to each peer.",
            "To",
            &rows(|s| s.delivered),
        )?;
        per_peer(
            &mut enc,
            "raftkv_network_peer_queued_messages",
            "Raft messages taken into each peer's send queue.",
            "To",
            &rows(|s| s.queued),
        )?;
        per_peer(
            &mut enc,
            "raftkv_network_peer_queue_dropped",
            "Raft messages dropped because the peer's send queue was full (Raft resends).",
            "To",
            &rows(|s| s.dropped_full),
        )?;
        let Some(l) = &self.listener else {
            return Ok(());
        };
        let received: Vec<_> = l.received().into_iter().collect();
        let from = |f: fn(&(u64, u64)) -> u64| -> Vec<(String, u64)> {
            received
                .iter()
                .map(|(id, r)| (id.to_string(), f(r)))
                .collect()
        };
        per_peer(
            &mut enc,
            "etcd_network_peer_received_bytes",
            "The total number of bytes received from peers (frames, no TLS).",
            "From",
            &from(|r| r.1),
        )?;
        per_peer(
            &mut enc,
            "raftkv_network_peer_received_messages",
            "Raft messages received from each peer.",
            "From",
            &from(|r| r.0),
        )?;
        let r = Ordering::Relaxed;
        counter(
            &mut enc,
            "raftkv_peer_listener_accepted_connections",
            "Peer connections whose handshake the listener accepted.",
            l.accepted.load(r),
        )?;
        counter(
            &mut enc,
            "raftkv_peer_listener_refused_connections",
            "Peer connections refused (failed handshake or TLS, or too many at once).",
            l.refused.load(r),
        )?;
        counter(
            &mut enc,
            "raftkv_peer_listener_bad_frames",
            "Frames that broke their connection (bad checksum, tag or encoding).",
            l.bad_frames.load(r),
        )?;
        counter(
            &mut enc,
            "raftkv_peer_listener_inbox_dropped",
            "Received messages dropped because the driver's inbox was full.",
            l.dropped_full.load(r),
        )
    }
}
