//! One peer's send queue, shared by both transports: bounded in messages and in bytes, with
//! the counters an operator reads. [`PeerQueue::push`] never blocks: a message that does not
//! fit is dropped and counted (Raft resends what matters).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use raftkv_core::kvraft::Message;
use raftkv_core::types::NodeId;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::budget::ByteBudget;

/// Counters of one peer's queue, as a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Messages taken into the queue.
    pub queued: u64,
    /// Messages sent: answered with a 2xx status (HTTP), or written to the connection
    /// (stream).
    pub delivered: u64,
    /// Messages that did not get through: connect error, timeout, a non-2xx status, a
    /// refused handshake, a broken connection.
    pub failed: u64,
    /// Messages dropped because the queue was full.
    pub dropped_full: u64,
    /// Messages dropped because the resolver did not know the peer.
    pub unresolved: u64,
    /// Bytes written to the peer: frames (stream) or request bodies (HTTP) of the messages
    /// counted in `delivered`.
    pub sent_bytes: u64,
}

impl PeerStats {
    /// The sum of two snapshots (a peer's lanes taken together).
    pub fn plus(self, o: PeerStats) -> PeerStats {
        PeerStats {
            queued: self.queued + o.queued,
            delivered: self.delivered + o.delivered,
            failed: self.failed + o.failed,
            dropped_full: self.dropped_full + o.dropped_full,
            unresolved: self.unresolved + o.unresolved,
            sent_bytes: self.sent_bytes + o.sent_bytes,
        }
    }
}

/// Live counters shared by the sender and the worker.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub queued: AtomicU64,
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub dropped_full: AtomicU64,
    pub unresolved: AtomicU64,
    pub sent_bytes: AtomicU64,
}

impl Counters {
    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> PeerStats {
        PeerStats {
            queued: self.queued.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped_full: self.dropped_full.load(Ordering::Relaxed),
            unresolved: self.unresolved.load(Ordering::Relaxed),
            sent_bytes: self.sent_bytes.load(Ordering::Relaxed),
        }
    }
}

/// Every queue's counters by peer, shared by a transport and whoever reports them (the
/// `/metrics` scrape), which cannot reach the transport itself: the driver thread owns it.
/// The lock is taken when a queue is created or dropped and at a scrape, never per message.
#[derive(Clone, Debug, Default)]
pub struct SendCounters(Arc<Mutex<Vec<PeerCounters>>>);

/// One queue's counters, with the peer it sends to.
type PeerCounters = (NodeId, Arc<Counters>);

impl SendCounters {
    /// Adds the counters of a new queue to `peer`.
    pub(crate) fn add(&self, peer: &NodeId, counters: &Arc<Counters>) {
        let mut all = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        all.push((peer.clone(), Arc::clone(counters)));
    }

    /// Forgets the counters of peers for which `keep` is false (members that left).
    pub(crate) fn retain(&self, keep: impl Fn(&NodeId) -> bool) {
        let mut all = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        all.retain(|(id, _)| keep(id));
    }

    /// The counters of every peer sent to so far, a peer's queues taken together.
    pub fn snapshot(&self) -> BTreeMap<NodeId, PeerStats> {
        let all = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: BTreeMap<NodeId, PeerStats> = BTreeMap::new();
        for (id, c) in all.iter() {
            let s = out.entry(id.clone()).or_default();
            *s = s.plus(c.snapshot());
        }
        out
    }
}

/// A message waiting for its peer's worker, with its share of the queue's byte budget.
pub(crate) struct Queued {
    pub msg: Message,
    /// [`wire_estimate`] of `msg`, taken once when it was queued.
    pub size: usize,
    /// Given back when the worker is done with the message.
    pub _budget: OwnedSemaphorePermit,
}

/// One peer's queue; its worker ends when this (the only sender) is dropped.
#[derive(Debug)]
pub(crate) struct PeerQueue {
    tx: mpsc::Sender<Queued>,
    /// The queue's byte budget.
    budget: ByteBudget,
    pub counters: Arc<Counters>,
}

impl PeerQueue {
    /// A queue of at most `capacity` messages and `bytes` estimated wire bytes, and its
    /// receiving end for the worker.
    pub fn new(capacity: usize, bytes: usize) -> (PeerQueue, mpsc::Receiver<Queued>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let queue = PeerQueue {
            tx,
            budget: ByteBudget::new(bytes),
            counters: Arc::new(Counters::default()),
        };
        (queue, rx)
    }

    /// Queues `msg`, or drops and counts it when the queue is full.
    pub fn push(&self, msg: Message) {
        let c = &self.counters;
        let size = wire_estimate(&msg);
        let Some(budget) = self.budget.try_take(size) else {
            Counters::add(&c.dropped_full, 1);
            return;
        };
        match self.tx.try_send(Queued {
            msg,
            size,
            _budget: budget,
        }) {
            Ok(()) => Counters::add(&c.queued, 1),
            Err(mpsc::error::TrySendError::Full(_)) => Counters::add(&c.dropped_full, 1),
            // The worker only stops when the runtime shuts down: nothing to deliver to.
            Err(mpsc::error::TrySendError::Closed(_)) => Counters::add(&c.failed, 1),
        }
    }
}

/// About how many bytes `msg` takes on the wire (entries and chunks dominate; base64 makes a
/// chunk 4/3 of its bytes in JSON, which this counts for both encodings).
pub(crate) fn wire_estimate(msg: &Message) -> usize {
    const OVERHEAD: usize = 256;
    match msg {
        Message::AppendEntries(m) => m
            .entries
            .iter()
            .map(|e| {
                let cmd = e.payload.command().map_or(0, |c| c.size_bytes());
                usize::try_from(cmd)
                    .unwrap_or(usize::MAX)
                    .saturating_add(64)
            })
            .fold(OVERHEAD, usize::saturating_add),
        Message::InstallSnapshot(m) => (m.data.len() / 3 * 4).saturating_add(OVERHEAD),
        _ => OVERHEAD,
    }
}
