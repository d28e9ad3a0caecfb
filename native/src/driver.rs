//! The driver: one thread owns the core Raft node and feeds it peer messages, proposals, reads
//! and ticks; [`RaftNode`] is the handle the rest of kvserver talks to it through (it implements
//! the port the KV service depends on, [`RaftHandle`]).
//!
//! Each turn of the loop waits for the first input (or the node's next deadline), drains
//! whatever else is ready, hands it all to the node, then runs core's host loop
//! ([`Host::process`]): per Ready, the leader's AppendEntries leave at once (before its own
//! fsync, Raft thesis §10.2.1), then one fsync covers every entry and vote of the turn (group
//! commit), then the answers that promise them leave and committed entries are applied. So no
//! follower acknowledges, and no client hears "ok", before the entries it depends on are on
//! disk here, and the leader counts itself toward a quorum only for what it fsynced.
//!
//! The loop runs on its own thread with a current-thread runtime: fsync blocks that thread only,
//! never the HTTP workers. A storage error stops the node (logged, never a panic): pending callers
//! then learn that their outcome is unknown and new requests are refused.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::histogram::Histogram;
use raftkv_core::kvraft::{Event, Message, Stores};
use raftkv_core::raft::{
    Config, Host, Index, Outcome, ProposeError, RaftError, Role, Status, TransferError, Waiters,
    WrittenSnapshot,
};
use raftkv_core::{ApplyResult, Command, LeaderHint, NodeId};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::Instrument;

use crate::metrics::RaftInstruments;
use crate::node_port::{BoxFut, NodeError, RaftHandle, TransferDone};
use crate::peers::PeerTable;
use crate::shared_sm::SharedSm;
use crate::transport::PeerTransport;
use crate::transport::inbox::Delivery;

mod conf;
pub use conf::{ClusterInfo, ConfOutcome};

/// The most inputs of one kind taken in one turn: bounds the latency of a turn under load.
const MAX_BATCH: usize = 1024;
/// Capacity of the request channel (proposals and reads waiting for the driver).
const REQUEST_QUEUE: usize = 4096;
/// Capacity of the inbox of peer messages; when full the transport drops (Raft retries).
pub const INBOX_QUEUE: usize = 4096;
/// A driver turn at least this long is logged.
const SLOW_TURN: Duration = Duration::from_millis(500);
/// The inbox's byte budget (wire bodies waiting for the driver), so a driver busy for seconds
/// (installing a snapshot) does not queue hundreds of MB. 16 MiB held a 1,000,000-key
/// follower to +66 MiB, but the drops it causes under load stall a lagging follower of 1 MiB
/// entries (a core bug: see docs/snapshots.md), so the budget is 64 MiB until that is fixed.
pub const INBOX_BYTES: usize = 64 * 1024 * 1024;

/// What the driver publishes after every turn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeView {
    /// The node's status.
    pub status: Status,
    /// The node stopped (storage error or shutdown): it serves nothing any more.
    pub stopped: bool,
}

type ProposeReply = oneshot::Sender<Result<ApplyResult, NodeError>>;
type ReadReply = oneshot::Sender<Result<Index, NodeError>>;
type TransferReply = oneshot::Sender<Result<TransferDone, NodeError>>;

enum Request {
    Propose {
        cmd: Command,
        reply: ProposeReply,
    },
    ReadIndex {
        reply: ReadReply,
    },
    /// A lease read: answered in the same turn from the lease, or (without one) like ReadIndex.
    ReadLease {
        reply: ReadReply,
    },
    /// The applied index, taken between two turns: it covers every entry applied so far.
    Applied {
        reply: ReadReply,
    },
    TransferLeader {
        to: Option<NodeId>,
        reply: TransferReply,
    },
    Member(conf::MemberRequest),
}

/// How the driver is set up.
pub struct DriverConfig {
    /// The Raft configuration.
    pub raft: Config,
    /// The address of every member (for leader hints; the transport shares it). The driver
    /// keeps it in step with the configuration.
    pub peers: Arc<PeerTable>,
    /// How long a proposal may wait for its outcome before the caller hears "unknown".
    pub propose_timeout: Duration,
    /// How long a leadership transfer may take before the caller hears "unknown".
    pub transfer_timeout: Duration,
    /// Where the driver records what only it sees (`/metrics`).
    pub metrics: RaftInstruments,
}

/// The handle to a running driver. Cheap to clone.
#[derive(Clone)]
pub struct RaftNode {
    reqs: mpsc::Sender<Request>,
    view: watch::Receiver<NodeView>,
    peers: Arc<PeerTable>,
    propose_timeout: Duration,
    transfer_timeout: Duration,
    /// The driver's clock starts here (core's times are milliseconds since).
    started: Instant,
    /// See [`Driver::contact`].
    contact: Arc<AtomicU64>,
}

/// No leader known (in [`Driver::contact`]).
const NO_CONTACT: u64 = u64::MAX;

/// A running driver thread; stop it with [`DriverThread::stop`].
pub struct DriverThread {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DriverThread {
    /// Asks the driver to stop and waits (on a blocking thread) until it has released the
    /// node's stores.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl Drop for DriverThread {
    fn drop(&mut self) {
        // Without an explicit stop the driver still ends: on this signal, or once every handle
        // is gone.
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// An RNG seed for election timeouts: different per node and per start, so nodes started
/// together do not time out in lockstep. (Core takes no OS randomness; the host may.)
pub fn rng_seed(id: &NodeId) -> u64 {
    let mut h = DefaultHasher::new();
    id.hash(&mut h);
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
        .hash(&mut h);
    std::process::id().hash(&mut h);
    h.finish()
}

/// Why the driver could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The node could not be created from its stores.
    #[error("raft node: {0}")]
    Raft(#[from] RaftError),
    /// The driver thread or its runtime could not be started.
    #[error("driver thread: {0}")]
    Thread(std::io::Error),
}

/// Creates the node over `stores` and `sm` and starts its driver thread. Peer messages arrive
/// on `inbox`; outbound messages go to `transport`.
pub fn start(
    cfg: DriverConfig,
    stores: Stores,
    sm: SharedSm,
    inbox: mpsc::Receiver<Delivery>,
    transport: PeerTransport,
) -> Result<(RaftNode, DriverThread), StartError> {
    let started = Instant::now();
    let seed = rng_seed(&cfg.raft.id);
    // Every line the driver logs carries the node's id (one process may hold several nodes in
    // tests, and a log pipeline merges many processes).
    let span = tracing::info_span!("node", id = %cfg.raft.id);
    let engine_applied = raftkv_core::StateMachine::applied_index(&sm);
    let mut node = Host::new(cfg.raft, stores, sm, seed, 0)?;
    // The node starts at the stored snapshot; Host::new installed it if the engine was behind.
    let stored_snapshot = node.node().snapshot_index();
    tracing::info!(
        engine_applied,
        stored_snapshot,
        reinstalled = stored_snapshot > engine_applied,
        took_ms = started.elapsed().as_millis() as u64,
        "node loaded from its stores"
    );
    // A snapshot of a large state takes seconds to write: it is written on its own thread so
    // heartbeats and appends go on meanwhile.
    node.set_background_snapshots(true);
    let (snapshots_tx, snapshots_rx) = mpsc::unbounded_channel();
    let (view_tx, view_rx) = watch::channel(NodeView {
        status: node.status(),
        stopped: false,
    });
    let (req_tx, req_rx) = mpsc::channel(REQUEST_QUEUE);
    let (stop_tx, stop_rx) = oneshot::channel();
    let peers = cfg.peers;
    let contact = Arc::new(AtomicU64::new(NO_CONTACT));
    let driver = Driver {
        node,
        started,
        inbox: Some(inbox),
        reqs: req_rx,
        transport,
        view: view_tx,
        waiters: Waiters::default(),
        transfers: Vec::new(),
        handing_over: false,
        conf: conf::ConfWaiters::default(),
        peers: Arc::clone(&peers),
        snapshots_tx,
        snapshots_rx,
        metrics: cfg.metrics,
        round_trips: BTreeMap::new(),
        contact: Arc::clone(&contact),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(StartError::Thread)?;
    let thread = std::thread::Builder::new()
        .name("raft-driver".into())
        .spawn(move || runtime.block_on(driver.run(stop_rx).instrument(span)))
        .map_err(StartError::Thread)?;
    Ok((
        RaftNode {
            reqs: req_tx,
            view: view_rx,
            peers,
            propose_timeout: cfg.propose_timeout,
            transfer_timeout: cfg.transfer_timeout,
            started,
            contact,
        },
        DriverThread {
            stop: Some(stop_tx),
            thread: Some(thread),
        },
    ))
}

struct Driver {
    node: Host<SharedSm>,
    started: Instant,
    /// `None` once the transport's side is gone.
    inbox: Option<mpsc::Receiver<Delivery>>,
    reqs: mpsc::Receiver<Request>,
    transport: PeerTransport,
    view: watch::Sender<NodeView>,
    /// Callers waiting for their proposal's outcome or their read index.
    waiters: Waiters<ProposeReply, ReadReply>,
    /// Callers waiting for the leadership transfer they started to complete, with its target.
    transfers: Vec<(NodeId, TransferReply)>,
    /// This leader started handing its leadership over. When it then steps down, its pending
    /// proposals are left for the host to settle as the new leader's log reaches it (the
    /// target was brought up to date first, so they normally commit) instead of being answered
    /// `unknown_outcome` at once.
    handing_over: bool,
    /// Callers waiting for their configuration change to take effect.
    conf: conf::ConfWaiters,
    peers: Arc<PeerTable>,
    /// Where the thread writing a snapshot sends its result (see `Host::begin_snapshot`).
    snapshots_tx: mpsc::UnboundedSender<Result<WrittenSnapshot, RaftError>>,
    snapshots_rx: mpsc::UnboundedReceiver<Result<WrittenSnapshot, RaftError>>,
    metrics: RaftInstruments,
    /// Each follower's round-trip histogram, looked up once rather than per answer.
    round_trips: BTreeMap<NodeId, Histogram>,
    /// When (the driver's clock, ms) this node last heard from the leader of its term, or for
    /// a leader since when a quorum has answered it; [`NO_CONTACT`] without a leader. Stored
    /// after every turn, read by readiness checks: an atomic rather than part of the view,
    /// which would then change, and wake its watchers, on every heartbeat.
    contact: Arc<AtomicU64>,
}

/// Inputs taken in one turn.
#[derive(Default)]
struct Batch {
    msgs: Vec<(NodeId, Message)>,
    reqs: Vec<Request>,
    /// A snapshot written off the driver's thread, to store and compact behind.
    snapshot: Option<Result<WrittenSnapshot, RaftError>>,
}

impl Driver {
    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        loop {
            let deadline = self.started + Duration::from_millis(self.node.next_deadline());
            let mut batch = Batch::default();
            tokio::select! {
                biased;
                _ = &mut stop => break,
                r = self.reqs.recv() => match r {
                    Some(r) => batch.reqs.push(r),
                    // Every handle is gone: nobody can use this node any more.
                    None => break,
                },
                m = recv_opt(&mut self.inbox) => match m {
                    Some(m) => batch.msgs.push(m.into_parts()),
                    None => self.inbox = None,
                },
                Some(done) = self.snapshots_rx.recv() => batch.snapshot = Some(done),
                () = tokio::time::sleep_until(deadline) => {}
            }
            self.drain(&mut batch);
            if let Err(e) = self.turn(batch) {
                tracing::error!(error = %e, "raft node stopped after a storage failure");
                break;
            }
        }
        self.shut_down();
    }

    /// Takes whatever else is ready, up to a bound, without waiting.
    fn drain(&mut self, batch: &mut Batch) {
        while batch.reqs.len() < MAX_BATCH {
            match self.reqs.try_recv() {
                Ok(r) => batch.reqs.push(r),
                Err(_) => break,
            }
        }
        if let Some(inbox) = self.inbox.as_mut() {
            while batch.msgs.len() < MAX_BATCH {
                match inbox.try_recv() {
                    Ok(m) => batch.msgs.push(m.into_parts()),
                    Err(_) => break,
                }
            }
        }
    }

    /// One turn. A failed turn marks the node stopped: what it wrote may not be durable.
    fn turn(&mut self, batch: Batch) -> Result<(), RaftError> {
        let started = Instant::now();
        let res = self.feed(batch);
        let took = started.elapsed();
        self.metrics.turn_seconds.observe(took.as_secs_f64());
        if took >= SLOW_TURN {
            // Heartbeats and replies waited all that time: a large snapshot install, or a slow
            // disk.
            tracing::warn!(took_ms = took.as_millis() as u64, "a slow driver turn");
        }
        if res.is_err() {
            self.view.send_modify(|v| v.stopped = true);
        }
        res
    }

    /// Feeds the node everything of this turn, then carries out its Readys: the leader's
    /// AppendEntries leave before its own fsync, everything else after (group commit: one fsync
    /// for many proposals and messages), and callers are answered once their entries are
    /// applied, which happens only after they are durable here.
    fn feed(&mut self, batch: Batch) -> Result<(), RaftError> {
        let now = self.now();
        if let Some(done) = batch.snapshot {
            self.node.snapshot_done(done, &mut self.transport)?;
        }
        for (from, msg) in batch.msgs {
            if let Message::AppendEntriesResponse(r) = &msg {
                self.round_trip(&from, r.term, r.sent_at);
            }
            self.node.feed().step(now, &from, msg)?;
        }
        for req in batch.reqs {
            self.request(now, req)?;
        }
        self.node.feed().tick(now)?;
        self.node.process(&mut self.transport)?;
        if let Some(job) = self.node.begin_snapshot()? {
            let tx = self.snapshots_tx.clone();
            let spawned = std::thread::Builder::new()
                .name("raft-snapshot".into())
                .spawn(move || {
                    // The driver may be gone by then: the written temp file is discarded at
                    // the next start.
                    let _ = tx.send(job.run());
                });
            if let Err(e) = spawned {
                self.node.snapshot_done(
                    Err(RaftError::StateMachine(e.to_string())),
                    &mut self.transport,
                )?;
            }
        }
        self.record_turn();
        // Publish the status before answering, so a caller that got its reply sees at least
        // the state that reply came from.
        let status = self.node.status();
        self.view.send_if_modified(|v| {
            if v.status == status {
                return false;
            }
            v.status = status;
            true
        });
        for ev in self.node.take_events() {
            self.on_event(ev);
        }
        let applied = self.node.last_applied();
        for r in self.waiters.reads_applied(applied) {
            let _ = r.send(Ok(applied));
        }
        self.settle_transfers();
        Ok(())
    }

    /// Records an AppendEntries round trip to `from`: from the send time the answer echoes to
    /// now, on this leader's clock (millisecond send times, so ±1 ms). Answers to another term
    /// (or from before a restart, on another clock) are not this leader's.
    fn round_trip(&mut self, from: &NodeId, term: u64, sent_at: u64) {
        if sent_at == 0 || !self.node.node().is_leader() || term != self.node.node().term() {
            return;
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        // Milliseconds to seconds: exact enough for a latency (send times stay far below 2^52).
        let rtt = (elapsed - sent_at as f64 / 1000.0).max(0.0);
        let family = &self.metrics.round_trip_seconds;
        self.round_trips
            .entry(from.clone())
            .or_insert_with(|| family.get_or_create_owned(&[("To", from.to_string())]))
            .observe(rtt);
    }

    /// What the scrape and readiness read after a turn: a few relaxed stores.
    fn record_turn(&mut self) {
        let n = self.node.node();
        let contact = if n.is_leader() {
            n.quorum_contact()
        } else if n.leader_id().is_some() {
            n.last_leader_contact()
        } else {
            None
        };
        self.contact
            .store(contact.unwrap_or(NO_CONTACT), Ordering::Relaxed);
        self.metrics.snapshots.set(&n.snapshot_stats());
    }

    /// Takes one request. Refusals need no persistence and go at once; accepted proposals,
    /// reads and transfers are answered from events (or the state they leave).
    fn request(&mut self, now: u64, req: Request) -> Result<(), RaftError> {
        match req {
            Request::Propose { cmd, reply } => match self.node.feed().propose(now, cmd) {
                Ok(p) => {
                    self.metrics.proposals_pending.inc();
                    self.waiters.proposed(p, reply);
                }
                Err(e) => {
                    if matches!(
                        e,
                        ProposeError::Overloaded { .. } | ProposeError::Transferring { .. }
                    ) {
                        // A follower's refusal is a redirect, not a failure.
                        self.metrics.proposals_failed.inc();
                    }
                    let _ = reply.send(Err(self.refusal(e)?));
                }
            },
            Request::ReadIndex { reply } => self.read_index(now, reply)?,
            Request::ReadLease { reply } => match self.node.read_lease(now) {
                Some(index) => {
                    let _ = reply.send(Ok(index));
                }
                None => self.read_index(now, reply)?,
            },
            Request::Applied { reply } => {
                let _ = reply.send(Ok(self.node.last_applied()));
            }
            Request::Member(req) => self.member_request(now, req)?,
            Request::TransferLeader { to, reply } => {
                match self.node.feed().transfer_leader(now, to) {
                    Ok(target) => {
                        tracing::info!(to = %target, "handing leadership over");
                        self.handing_over = true;
                        self.transfers.push((target, reply));
                    }
                    Err(TransferError::NotLeader { leader }) => {
                        let hint = hint(&self.peers, leader);
                        let _ = reply.send(Err(NodeError::NotLeader(hint)));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NodeError::TransferRefused(e)));
                    }
                }
            }
        }
        Ok(())
    }

    /// Starts a ReadIndex read for `reply`, answered once confirmed and applied.
    fn read_index(&mut self, now: u64, reply: ReadReply) -> Result<(), RaftError> {
        match self.node.feed().read_index(now) {
            Ok(id) => self.waiters.reading(id, reply),
            Err(e) => {
                let _ = reply.send(Err(self.refusal(e)?));
            }
        }
        Ok(())
    }

    /// Answers the transfers that completed: this node knows another leader. (Abandoned ones
    /// are answered on `TransferAbandoned`.)
    fn settle_transfers(&mut self) {
        if self.transfers.is_empty() {
            return;
        }
        let me = self.node.id();
        if let Some(leader) = self.node.leader_id().filter(|l| *l != me).cloned() {
            let leader = hint(&self.peers, Some(leader));
            for (to, reply) in self.transfers.drain(..) {
                let done = TransferDone {
                    to,
                    leader: leader.clone(),
                };
                let _ = reply.send(Ok(done));
            }
        }
    }

    /// The transfer to `to` ended without it taking over; this node leads on and takes
    /// proposals again.
    fn transfer_abandoned(&mut self, to: &NodeId) {
        tracing::warn!(%to, "leadership transfer abandoned: the target did not take over");
        self.handing_over = false;
        let me = self.node.id().clone();
        let (ended, pending) = std::mem::take(&mut self.transfers)
            .into_iter()
            .partition(|(target, _)| target == to);
        self.transfers = pending;
        for (_, reply) in ended {
            let _ = reply.send(Err(NodeError::TransferAbandoned(format!(
                "{to} did not take over within an election timeout; {me} still leads"
            ))));
        }
    }

    fn refusal(&self, e: ProposeError) -> Result<NodeError, RaftError> {
        refusal(&self.peers, e)
    }

    fn on_event(&mut self, ev: Event) {
        self.conf_event(&ev);
        let applied_at = match &ev {
            Event::ProposalApplied { index, .. } => Some(*index),
            _ => None,
        };
        for (reply, outcome) in self.waiters.proposals_settled(&ev) {
            self.metrics.proposals_pending.dec();
            if !matches!(outcome, Outcome::Applied(_)) {
                self.metrics.proposals_failed.inc();
            }
            let answer = match outcome {
                Outcome::Applied(result) => Ok(ApplyResult {
                    index: applied_at,
                    ..result
                }),
                // Another leader's entry replaced it: it was not applied here and never will be.
                Outcome::Lost => Err(NodeError::NotLeader(hint(
                    &self.peers,
                    self.node.leader_id().cloned(),
                ))),
                Outcome::Unknown => Err(NodeError::UnknownOutcome(
                    "covered by a snapshot from the leader before it was applied here".into(),
                )),
            };
            let _ = reply.send(answer);
        }
        if let Some(reply) = self.waiters.read_failed(&ev) {
            let _ = reply.send(Err(self.read_failed()));
        }
        match &ev {
            // Role and leader changes are what an operator reads a failover from: INFO.
            Event::RoleChanged { role, term } => tracing::info!(?role, term, "role changed"),
            Event::LeaderChanged { leader, term } => match leader {
                Some(leader) => tracing::info!(%leader, term, "leader known"),
                None => tracing::info!(term, "no leader known"),
            },
            _ => {}
        }
        match ev {
            Event::RoleChanged { role, .. } if role != Role::Leader => {
                if std::mem::take(&mut self.handing_over) {
                    // Handed over: the pending proposals are in the new leader's log, which
                    // commits them; they settle here as that log reaches this node (or time
                    // out for their caller).
                } else {
                    // Leadership lost: a pending proposal may still be committed by the next
                    // leader, or not. Say so rather than guess.
                    for r in self.waiters.drain_proposals() {
                        self.metrics.proposals_pending.dec();
                        self.metrics.proposals_failed.inc();
                        let _ = r.send(Err(NodeError::UnknownOutcome(
                            "leadership lost before the write was applied".into(),
                        )));
                    }
                }
                self.fail_reads();
            }
            Event::LeaderChanged {
                leader: Some(_), ..
            } => {
                self.metrics.leader_changes.inc();
            }
            Event::TransferStarted { to } => tracing::info!(%to, "leadership transfer started"),
            Event::TransferAbandoned { to } => self.transfer_abandoned(&to),
            Event::SnapshotRestored { index, term } => {
                // Rare and worth an operator's notice: a follower too far behind for the log.
                tracing::info!(index, term, "state machine restored from a snapshot");
            }
            _ => {}
        }
    }

    /// Why a read this leader took cannot be served: another leader is known (go there), or
    /// no quorum confirmed this node's leadership in time.
    fn read_failed(&self) -> NodeError {
        match self.node.leader_id().filter(|l| *l != self.node.id()) {
            Some(leader) => NodeError::NotLeader(hint(&self.peers, Some(leader.clone()))),
            None => NodeError::ReadTimeout(
                "the read could not be confirmed: no quorum acknowledged this node's leadership \
                 in time, and no other leader is known; retry"
                    .into(),
            ),
        }
    }

    fn fail_reads(&mut self) {
        let err = self.read_failed();
        for r in self.waiters.drain_reads() {
            let _ = r.send(Err(err.clone()));
        }
    }

    /// Tells every waiting caller, and every later one, that the node is gone.
    fn shut_down(&mut self) {
        for r in self.waiters.drain_proposals() {
            self.metrics.proposals_pending.dec();
            self.metrics.proposals_failed.inc();
            let _ = r.send(Err(NodeError::UnknownOutcome(
                "the node stopped before the write was applied".into(),
            )));
        }
        for r in self.waiters.drain_reads() {
            let _ = r.send(Err(NodeError::Unavailable("the node stopped".into())));
        }
        for (_, r) in self.transfers.drain(..) {
            let _ = r.send(Err(NodeError::Unavailable("the node stopped".into())));
        }
        self.fail_conf_waiters();
        self.view.send_modify(|v| v.stopped = true);
        self.reqs.close();
    }
}

/// Maps a refused proposal or read to the caller's error; a fatal error stops the node.
fn refusal(addrs: &PeerTable, e: ProposeError) -> Result<NodeError, RaftError> {
    match e {
        ProposeError::NotLeader { leader } => Ok(NodeError::NotLeader(hint(addrs, leader))),
        ProposeError::Overloaded {
            uncommitted_bytes,
            cap,
        } => Ok(NodeError::Overloaded(format!(
            "{uncommitted_bytes} bytes of writes wait for a quorum (cap {cap})"
        ))),
        ProposeError::Transferring { to } => Ok(NodeError::Transferring(format!(
            "leadership is moving to {to}; retry shortly"
        ))),
        ProposeError::Fatal(e) => Err(e),
    }
}

async fn recv_opt<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn hint(peers: &PeerTable, leader: Option<NodeId>) -> LeaderHint {
    LeaderHint {
        leader_addr: leader.as_ref().and_then(|l| peers.client_addr(l)),
        leader_id: leader,
    }
}

impl RaftNode {
    /// The node's latest published view.
    pub fn view(&self) -> NodeView {
        self.view.borrow().clone()
    }

    /// How long ago this node last heard from the leader of its term or, leading, since
    /// when a quorum of voters has answered it (as of the driver's last turn); `None` while
    /// it knows no leader.
    pub fn leader_contact_age(&self) -> Option<Duration> {
        let contact = self.contact.load(Ordering::Relaxed);
        if contact == NO_CONTACT {
            return None;
        }
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Some(Duration::from_millis(now.saturating_sub(contact)))
    }

    /// The address of every member, as this node knows it.
    pub fn peers(&self) -> &Arc<PeerTable> {
        &self.peers
    }

    /// Waits until `pred` holds for the published view, or `timeout` passes; returns whether
    /// it held.
    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&NodeView) -> bool) -> bool {
        let mut rx = self.view.clone();
        tokio::time::timeout(timeout, rx.wait_for(|v| pred(v) || v.stopped))
            .await
            .is_ok_and(|r| r.is_ok_and(|v| pred(&v)))
    }

    async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, NodeError>>) -> Request,
        gone: impl Fn(&str) -> NodeError,
        timeout: Duration,
    ) -> Result<T, NodeError> {
        let (tx, rx) = oneshot::channel();
        if self.reqs.send(make(tx)).await.is_err() {
            return Err(NodeError::Unavailable("the raft node has stopped".into()));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(gone("the raft node stopped")),
            Err(_) => Err(gone("timed out waiting for the outcome")),
        }
    }
}

impl RaftHandle for RaftNode {
    fn propose(&self, cmd: Command) -> BoxFut<'_, ApplyResult> {
        Box::pin(self.request(
            |reply| Request::Propose { cmd, reply },
            |m| NodeError::UnknownOutcome(m.into()),
            self.propose_timeout,
        ))
    }

    fn is_leader(&self) -> bool {
        let v = self.view.borrow();
        !v.stopped && v.status.role == Role::Leader
    }

    fn leader_hint(&self) -> LeaderHint {
        let leader = self.view.borrow().status.leader_id.clone();
        hint(&self.peers, leader)
    }

    fn read_index(&self) -> BoxFut<'_, Index> {
        Box::pin(self.request(
            |reply| Request::ReadIndex { reply },
            |m| NodeError::Unavailable(m.into()),
            self.propose_timeout,
        ))
    }

    fn read_lease(&self) -> BoxFut<'_, Index> {
        Box::pin(self.request(
            |reply| Request::ReadLease { reply },
            |m| NodeError::Unavailable(m.into()),
            self.propose_timeout,
        ))
    }

    fn applied_index(&self) -> BoxFut<'_, Index> {
        Box::pin(self.request(
            |reply| Request::Applied { reply },
            |m| NodeError::Unavailable(m.into()),
            self.propose_timeout,
        ))
    }

    fn wait_applied(&self, index: Index, timeout: Duration) -> BoxFut<'_, bool> {
        Box::pin(async move {
            let mut rx = self.view.clone();
            let res = tokio::time::timeout(
                timeout,
                rx.wait_for(|v| v.stopped || v.status.last_applied >= index),
            )
            .await;
            match res {
                Ok(Ok(v)) if !v.stopped => Ok(true),
                Ok(_) => Err(NodeError::Unavailable("the raft node stopped".into())),
                Err(_) => Ok(false),
            }
        })
    }

    fn transfer_leader(&self, to: Option<NodeId>) -> BoxFut<'_, TransferDone> {
        Box::pin(self.request(
            |reply| Request::TransferLeader { to, reply },
            |m| NodeError::UnknownOutcome(format!("leadership transfer: {m}")),
            self.transfer_timeout,
        ))
    }

    fn wait_for_leader(&self, timeout: Duration) -> BoxFut<'_, ()> {
        Box::pin(async move {
            self.wait_for(timeout, |v| v.status.leader_id.is_some())
                .await;
            Ok(())
        })
    }

    fn status(&self) -> Status {
        self.view.borrow().status.clone()
    }

    fn is_stopped(&self) -> bool {
        self.view.borrow().stopped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proposal_refused_while_transferring_is_a_transferring_error_not_overloaded() {
        let addrs = PeerTable::new(
            NodeId::from("n1"),
            std::collections::BTreeMap::from([(NodeId::from("n2"), "127.0.0.1:2".to_string())]),
            None,
        );
        let got = refusal(
            &addrs,
            ProposeError::Transferring {
                to: NodeId::from("n2"),
            },
        );
        assert_eq!(
            got,
            Ok(NodeError::Transferring(
                "leadership is moving to n2; retry shortly".into()
            ))
        );
        let got = refusal(
            &addrs,
            ProposeError::NotLeader {
                leader: Some(NodeId::from("n2")),
            },
        );
        assert!(
            matches!(&got, Ok(NodeError::NotLeader(h)) if h.leader_addr.as_deref() == Some("127.0.0.1:2")),
            "{got:?}"
        );
    }
}
