//! The Raft node's metrics: gauges read at scrape time from the view the driver publishes
//! after every turn (leadership, term, indexes), and the few things only the driver sees as
//! they happen, which it records into [`RaftInstruments`] (leader changes, failed and pending
//! proposals, turn durations, round trips, the snapshot protocol's counters).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use raftkv_core::raft::{Role, SnapshotStats};

use crate::driver::NodeView;

/// Reads the driver's latest published view (a clone out of its watch channel).
pub type ViewFn = Arc<dyn Fn() -> NodeView + Send + Sync>;

/// The label set of a per-peer series sent to a peer: etcd's `To`.
pub type ToPeer = [(&'static str, String); 1];

/// What the driver records as it happens. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RaftInstruments {
    /// Times this node learnt of a new leader (itself included).
    pub leader_changes: Counter,
    /// Proposals this node took that did not get applied as asked: refused (overloaded,
    /// transferring), lost to another leader's entry, unknown (covered by a snapshot, or
    /// leadership lost or the node stopped before they were applied).
    pub proposals_failed: Counter,
    /// Proposals this node took that wait for their outcome.
    pub proposals_pending: Gauge,
    /// How long each driver turn took (feeding the node, fsync, sending, applying).
    pub turn_seconds: Histogram,
    /// A leader's AppendEntries round trips, by follower.
    pub round_trip_seconds: Family<ToPeer, Histogram, fn() -> Histogram>,
    /// The snapshot protocol's counters, copied from core after each turn.
    pub snapshots: Arc<SnapshotCounters>,
}

impl Default for RaftInstruments {
    fn default() -> Self {
        RaftInstruments {
            leader_changes: Counter::default(),
            proposals_failed: Counter::default(),
            proposals_pending: Gauge::default(),
            turn_seconds: super::disk_histogram(),
            round_trip_seconds: Family::new_with_constructor(rtt_histogram),
            snapshots: Arc::default(),
        }
    }
}

/// etcd's buckets for `etcd_network_peer_round_trip_time_seconds`: 0.1 ms to about 3 s.
fn rtt_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// Core's [`SnapshotStats`], as atomics the scrape can read.
#[derive(Debug, Default)]
pub struct SnapshotCounters {
    sends_started: AtomicU64,
    sends_abandoned: AtomicU64,
    chunks_sent: AtomicU64,
    bytes_sent: AtomicU64,
    chunks_received: AtomicU64,
    receptions_restarted: AtomicU64,
    installed: AtomicU64,
}

impl SnapshotCounters {
    /// Takes core's counters (they only grow).
    pub fn set(&self, s: &SnapshotStats) {
        let r = Ordering::Relaxed;
        self.sends_started.store(s.transfers_started, r);
        self.sends_abandoned.store(s.transfers_abandoned, r);
        self.chunks_sent.store(s.chunks_sent, r);
        self.bytes_sent.store(s.bytes_sent, r);
        self.chunks_received.store(s.chunks_received, r);
        self.receptions_restarted.store(s.receptions_restarted, r);
        self.installed.store(s.receptions_completed, r);
    }
}

/// Registers the driver's instruments and the view's gauges.
pub(super) fn register(registry: &mut Registry, inst: &RaftInstruments, view: ViewFn) {
    registry.register(
        "etcd_server_leader_changes_seen",
        "The number of leader changes seen.",
        inst.leader_changes.clone(),
    );
    registry.register(
        "etcd_server_proposals_failed",
        "The total number of failed proposals seen (refused while overloaded or transferring, \
         lost, or of unknown outcome).",
        inst.proposals_failed.clone(),
    );
    registry.register(
        "etcd_server_proposals_pending",
        "The current number of pending proposals to commit.",
        inst.proposals_pending.clone(),
    );
    registry.register(
        "raftkv_driver_turn_duration_seconds",
        "The duration of each Raft driver turn: stepping inputs, fsync, sending and applying.",
        inst.turn_seconds.clone(),
    );
    registry.register(
        "etcd_network_peer_round_trip_time_seconds",
        "Round-trip time of AppendEntries from this leader to each follower (send to answer, \
         on the leader's millisecond clock).",
        inst.round_trip_seconds.clone(),
    );
    registry.register_collector(Box::new(RaftCollector {
        view,
        snapshots: Arc::clone(&inst.snapshots),
    }));
}

/// Reads the view and the snapshot counters when scraped.
struct RaftCollector {
    view: ViewFn,
    snapshots: Arc<SnapshotCounters>,
}

impl fmt::Debug for RaftCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RaftCollector").finish_non_exhaustive()
    }
}

/// Encodes one gauge without labels.
pub(super) fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> fmt::Result {
    let m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(v).encode(m)
}

/// Encodes one counter without labels (`name` without `_total`: the encoder adds it).
pub(super) fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> fmt::Result {
    let m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(v).encode(m)
}

impl Collector for RaftCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let v = (self.view)();
        let s = &v.status;
        let serving = !v.stopped;
        let has_leader = serving && s.leader_id.is_some();
        let is_leader = serving && s.role == Role::Leader;
        gauge(
            &mut enc,
            "etcd_server_has_leader",
            "Whether or not a leader exists. 1 is existence, 0 is not.",
            u64::from(has_leader),
        )?;
        gauge(
            &mut enc,
            "etcd_server_is_leader",
            "Whether or not this member is a leader. 1 if is, 0 otherwise.",
            u64::from(is_leader),
        )?;
        gauge(
            &mut enc,
            "raftkv_server_stopped",
            "1 once the Raft node stopped (a storage failure): it serves nothing any more.",
            u64::from(v.stopped),
        )?;
        gauge(
            &mut enc,
            "raftkv_raft_term",
            "The current Raft term.",
            s.term,
        )?;
        gauge(
            &mut enc,
            "etcd_server_proposals_committed_total",
            "The total number of consensus proposals committed (the commit index).",
            s.commit_index,
        )?;
        gauge(
            &mut enc,
            "etcd_server_proposals_applied_total",
            "The total number of consensus proposals applied (the applied index).",
            s.last_applied,
        )?;
        gauge(
            &mut enc,
            "raftkv_raft_commit_index",
            "The commit index as this node knows it.",
            s.commit_index,
        )?;
        gauge(
            &mut enc,
            "raftkv_raft_applied_index",
            "The last index applied to this node's state machine.",
            s.last_applied,
        )?;
        gauge(
            &mut enc,
            "raftkv_raft_last_log_index",
            "The index of the last entry in this node's log.",
            s.last_log_index,
        )?;
        gauge(
            &mut enc,
            "raftkv_raft_snapshot_index",
            "The last index the stored snapshot covers (0 without one).",
            s.snapshot_index,
        )?;
        let c = &self.snapshots;
        let r = Ordering::Relaxed;
        let rows = [
            (
                "raftkv_snapshot_sends_started",
                "Snapshot transfers this node started as leader.",
                &c.sends_started,
            ),
            (
                "raftkv_snapshot_sends_abandoned",
                "Snapshot transfers this leader gave up after a long silence of the follower.",
                &c.sends_abandoned,
            ),
            (
                "raftkv_snapshot_sent_chunks",
                "Snapshot chunks sent as leader.",
                &c.chunks_sent,
            ),
            (
                "raftkv_snapshot_sent_bytes",
                "Bytes of snapshot chunks sent as leader.",
                &c.bytes_sent,
            ),
            (
                "raftkv_snapshot_received_chunks",
                "Snapshot chunks taken as receiver.",
                &c.chunks_received,
            ),
            (
                "raftkv_snapshot_receptions_restarted",
                "Snapshot receptions discarded half way or refused at the end.",
                &c.receptions_restarted,
            ),
            (
                "raftkv_snapshot_installed",
                "Snapshots received from a leader and installed.",
                &c.installed,
            ),
        ];
        for (name, help, value) in rows {
            counter(&mut enc, name, help, value.load(r))?;
        }
        Ok(())
    }
}
