//! The driver: one thread owns the core Raft node and feeds it peer messages, proposals, reads
//! and ticks; [`RaftNode`] is the handle the rest of kvserver talks to it through.
//!
//! Each turn of the loop waits for the first input (or the node's next deadline), drains
//! whatever else is ready, hands it all to the node, then calls `persist()` once (group commit:
//! one fsync for many proposals and messages), and only then sends the outbound messages and
//! answers the callers whose proposals or reads completed. So nothing leaves this node, and no
//! client hears "ok", before the log entries it depends on are on disk.
//!
//! The loop runs on its own thread with a current-thread runtime: fsync blocks that thread only,
//! never the HTTP workers. A storage error stops the node (logged, never a panic): pending callers
//! then learn that their outcome is unknown and new requests are refused.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use raftkv_core::raft::{
    Config, Event, Index, Message, Node, ProposeError, RaftError, ReadId, Role, Status, Term,
};
use raftkv_core::{ApplyResult, Command, KvStateMachine, LeaderHint, NodeId, SnapshotError};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::transport::HttpTransport;

/// The most inputs of one kind taken in one turn: bounds the latency of a turn under load.
const MAX_BATCH: usize = 1024;
/// Capacity of the request channel (proposals and reads waiting for the driver).
const REQUEST_QUEUE: usize = 4096;
/// Capacity of the inbox of peer messages; when full the transport drops (Raft retries).
pub const INBOX_QUEUE: usize = 4096;

/// The KV state machine, shared: the driver applies through it, the HTTP layer reads it for
/// stale reads (and for reads once a read index is applied).
///
/// Clients read through a gate that a single-node driver holds for a whole turn: a lone node
/// commits and applies an entry in the same call that appends it, before the turn's fsync, and
/// the gate keeps clients from seeing (and acting on) a write a crash could still take back.
#[derive(Clone, Default)]
pub struct SharedSm {
    sm: Arc<RwLock<KvStateMachine>>,
    gate: Arc<RwLock<()>>,
}

/// A state machine guard that also holds the gate open. `guard` is declared first so that it
/// is released before the gate.
pub struct Gated<'a, G> {
    guard: G,
    _gate: RwLockReadGuard<'a, ()>,
}

impl<G: std::ops::Deref> std::ops::Deref for Gated<'_, G> {
    type Target = G::Target;
    fn deref(&self) -> &Self::Target {
        &self.guard
    }
}

impl<G: std::ops::DerefMut> std::ops::DerefMut for Gated<'_, G> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.guard
    }
}

/// Poisoning is ignored: apply never panics halfway through a command.
fn read_lock<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write_lock<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

impl SharedSm {
    /// An empty state machine.
    pub fn new() -> Self {
        SharedSm::default()
    }

    /// Read access for clients (waits while a single-node driver is mid-turn).
    pub fn read(&self) -> Gated<'_, RwLockReadGuard<'_, KvStateMachine>> {
        let gate = read_lock(&self.gate);
        Gated {
            guard: read_lock(&self.sm),
            _gate: gate,
        }
    }

    /// Write access outside the log: only for the dedupe fast path, which changes nothing,
    /// and for tests.
    pub(crate) fn write(&self) -> Gated<'_, RwLockWriteGuard<'_, KvStateMachine>> {
        let gate = read_lock(&self.gate);
        Gated {
            guard: write_lock(&self.sm),
            _gate: gate,
        }
    }
}

/// The driver's side: no gate (the driver may hold it).
impl raftkv_core::StateMachine for SharedSm {
    fn apply(&mut self, cmd: &Command) -> ApplyResult {
        write_lock(&self.sm).apply(cmd)
    }
    fn snapshot(&self) -> Vec<u8> {
        read_lock(&self.sm).snapshot()
    }
    fn restore(&mut self, data: &[u8]) -> Result<(), SnapshotError> {
        write_lock(&self.sm).restore(data)
    }
}

/// Why a proposal or a read did not produce a result.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposeOutcomeError {
    /// This node does not lead; the command was not applied through it. Retry at the hint.
    #[error("not the leader")]
    NotLeader(LeaderHint),
    /// The command was accepted but whether it takes effect is unknown (leadership lost before
    /// apply, a timeout, the node stopped). A retry with the same (client_id, seq) is safe.
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// The node cannot serve (stopped after a storage error, or shutting down).
    #[error("node unavailable: {0}")]
    Unavailable(String),
    /// The command is malformed.
    #[error("{0}")]
    Invalid(String),
}

/// What the driver publishes after every turn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeView {
    /// The node's status.
    pub status: Status,
    /// The node stopped (storage error or shutdown): it serves nothing any more.
    pub stopped: bool,
}

type ProposeReply = oneshot::Sender<Result<ApplyResult, ProposeOutcomeError>>;
type ReadReply = oneshot::Sender<Result<Index, ProposeOutcomeError>>;

enum Request {
    Propose { cmd: Command, reply: ProposeReply },
    ReadIndex { reply: ReadReply },
}

/// How the driver is set up.
pub struct DriverConfig {
    /// The Raft configuration.
    pub raft: Config,
    /// Client addresses of every member (for leader hints).
    pub client_addrs: BTreeMap<NodeId, String>,
    /// How long a proposal may wait for its outcome before the caller hears "unknown".
    pub propose_timeout: Duration,
}

/// The handle to a running driver. Cheap to clone.
#[derive(Clone)]
pub struct RaftNode {
    reqs: mpsc::Sender<Request>,
    view: watch::Receiver<NodeView>,
    client_addrs: Arc<BTreeMap<NodeId, String>>,
    propose_timeout: Duration,
}

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
    stores: raftkv_core::raft::Stores,
    sm: SharedSm,
    inbox: mpsc::Receiver<(NodeId, Message)>,
    transport: HttpTransport,
) -> Result<(RaftNode, DriverThread), StartError> {
    let started = Instant::now();
    let seed = rng_seed(&cfg.raft.id);
    // Only a lone node applies entries before they are durable (see SharedSm).
    let gate = (cfg.raft.voters.len() == 1).then(|| Arc::clone(&sm.gate));
    let node = Node::new(cfg.raft, stores, sm, seed, 0)?;
    let (view_tx, view_rx) = watch::channel(NodeView {
        status: node.status(),
        stopped: false,
    });
    let (req_tx, req_rx) = mpsc::channel(REQUEST_QUEUE);
    let (stop_tx, stop_rx) = oneshot::channel();
    let client_addrs = Arc::new(cfg.client_addrs);
    let driver = Driver {
        node,
        started,
        inbox: Some(inbox),
        reqs: req_rx,
        transport,
        view: view_tx,
        proposals: HashMap::new(),
        reads: HashMap::new(),
        client_addrs: Arc::clone(&client_addrs),
        gate,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(StartError::Thread)?;
    let thread = std::thread::Builder::new()
        .name("raft-driver".into())
        .spawn(move || runtime.block_on(driver.run(stop_rx)))
        .map_err(StartError::Thread)?;
    Ok((
        RaftNode {
            reqs: req_tx,
            view: view_rx,
            client_addrs,
            propose_timeout: cfg.propose_timeout,
        },
        DriverThread {
            stop: Some(stop_tx),
            thread: Some(thread),
        },
    ))
}

struct Driver {
    node: Node<SharedSm>,
    started: Instant,
    /// `None` once the transport's side is gone.
    inbox: Option<mpsc::Receiver<(NodeId, Message)>>,
    reqs: mpsc::Receiver<Request>,
    transport: HttpTransport,
    view: watch::Sender<NodeView>,
    proposals: HashMap<(Index, Term), ProposeReply>,
    reads: HashMap<ReadId, ReadReply>,
    client_addrs: Arc<BTreeMap<NodeId, String>>,
    /// Held for each whole turn by a single-node driver (see [`SharedSm`]).
    gate: Option<Arc<RwLock<()>>>,
}

/// Inputs taken in one turn.
#[derive(Default)]
struct Batch {
    msgs: Vec<(NodeId, Message)>,
    reqs: Vec<Request>,
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
                    Some(m) => batch.msgs.push(m),
                    None => self.inbox = None,
                },
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
                    Ok(m) => batch.msgs.push(m),
                    Err(_) => break,
                }
            }
        }
    }

    /// One turn, with the gate held when there is one. A failed turn marks the node stopped
    /// before it lets readers in: what it applied may not be durable.
    fn turn(&mut self, batch: Batch) -> Result<(), RaftError> {
        let gate = self.gate.clone();
        let _held = gate.as_deref().map(write_lock);
        let res = self.feed(batch);
        if res.is_err() {
            self.view.send_modify(|v| v.stopped = true);
        }
        res
    }

    /// Feeds the node, persists once, then sends and answers.
    fn feed(&mut self, batch: Batch) -> Result<(), RaftError> {
        let now = self.now();
        let mut out: Vec<(NodeId, Message)> = Vec::new();
        for (from, msg) in batch.msgs {
            self.node.step(now, &from, msg, &mut out)?;
        }
        // Answers that need no persistence (refusals) may go at once; accepted proposals and
        // reads are answered from events, after the persist below.
        for req in batch.reqs {
            match req {
                Request::Propose { cmd, reply } => match self.node.propose(now, cmd, &mut out) {
                    Ok(p) => {
                        self.proposals.insert((p.index, p.term), reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(self.refusal(e)?));
                    }
                },
                Request::ReadIndex { reply } => match self.node.read_index(now, &mut out) {
                    Ok(id) => {
                        self.reads.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(self.refusal(e)?));
                    }
                },
            }
        }
        self.node.tick(now, &mut out)?;
        // Group commit: one fsync covers every entry and vote of this turn, before any message
        // or reply that depends on them leaves.
        self.node.persist()?;
        // One turn's many small appends (one per proposal) travel as one request per peer.
        for (to, msg) in crate::coalesce::coalesce(out) {
            raftkv_core::raft::Transport::send(&mut self.transport, &to, msg);
        }
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
        Ok(())
    }

    /// Maps a refused proposal or read to the caller's error; a fatal error stops the node.
    fn refusal(&self, e: ProposeError) -> Result<ProposeOutcomeError, RaftError> {
        match e {
            ProposeError::NotLeader { leader } => Ok(ProposeOutcomeError::NotLeader(hint(
                &self.client_addrs,
                leader,
            ))),
            ProposeError::Invalid(m) => Ok(ProposeOutcomeError::Invalid(m)),
            ProposeError::Fatal(e) => Err(e),
        }
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::ProposalApplied {
                index,
                term,
                result,
            } => {
                if let Some(r) = self.proposals.remove(&(index, term)) {
                    let _ = r.send(Ok(result));
                }
            }
            Event::ProposalLost { index, term } => {
                // Another leader's entry replaced it: it was not applied here and never will be.
                if let Some(r) = self.proposals.remove(&(index, term)) {
                    let leader = self.node.leader_id().cloned();
                    let _ = r.send(Err(ProposeOutcomeError::NotLeader(hint(
                        &self.client_addrs,
                        leader,
                    ))));
                }
            }
            Event::ProposalUnknown { index, term } => {
                if let Some(r) = self.proposals.remove(&(index, term)) {
                    let _ = r.send(Err(ProposeOutcomeError::Unknown(
                        "covered by a snapshot from the leader before it was applied here".into(),
                    )));
                }
            }
            Event::RoleChanged { role, .. } if role != Role::Leader => {
                // Leadership lost: a pending proposal may still be committed by the next leader,
                // or not. Say so rather than guess.
                for (_, r) in self.proposals.drain() {
                    let _ = r.send(Err(ProposeOutcomeError::Unknown(
                        "leadership lost before the write was applied".into(),
                    )));
                }
                self.fail_reads();
            }
            Event::ReadReady { id, index } => {
                if let Some(r) = self.reads.remove(&id) {
                    let _ = r.send(Ok(index));
                }
            }
            Event::ReadFailed { id } => {
                if let Some(r) = self.reads.remove(&id) {
                    let _ = r.send(Err(self.read_failed()));
                }
            }
            Event::SnapshotRestored { index, term } => {
                // Rare and worth an operator's notice: a follower too far behind for the log.
                tracing::info!(index, term, "state machine restored from a snapshot");
            }
            _ => {}
        }
    }

    fn read_failed(&self) -> ProposeOutcomeError {
        let leader = self
            .node
            .leader_id()
            .filter(|l| *l != self.node.id())
            .cloned();
        ProposeOutcomeError::NotLeader(hint(&self.client_addrs, leader))
    }

    fn fail_reads(&mut self) {
        let err = self.read_failed();
        for (_, r) in self.reads.drain() {
            let _ = r.send(Err(err.clone()));
        }
    }

    /// Tells every waiting caller, and every later one, that the node is gone.
    fn shut_down(&mut self) {
        for (_, r) in self.proposals.drain() {
            let _ = r.send(Err(ProposeOutcomeError::Unknown(
                "the node stopped before the write was applied".into(),
            )));
        }
        for (_, r) in self.reads.drain() {
            let _ = r.send(Err(ProposeOutcomeError::Unavailable(
                "the node stopped".into(),
            )));
        }
        self.view.send_modify(|v| v.stopped = true);
        self.reqs.close();
    }
}

async fn recv_opt<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn hint(addrs: &BTreeMap<NodeId, String>, leader: Option<NodeId>) -> LeaderHint {
    LeaderHint {
        leader_addr: leader.as_ref().and_then(|l| addrs.get(l).cloned()),
        leader_id: leader,
    }
}

impl RaftNode {
    /// The node's latest published view.
    pub fn view(&self) -> NodeView {
        self.view.borrow().clone()
    }

    /// Client addresses of every member.
    pub fn client_addrs(&self) -> &BTreeMap<NodeId, String> {
        &self.client_addrs
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
        make: impl FnOnce(oneshot::Sender<Result<T, ProposeOutcomeError>>) -> Request,
        gone: impl Fn(&str) -> ProposeOutcomeError,
        timeout: Duration,
    ) -> Result<T, ProposeOutcomeError> {
        let (tx, rx) = oneshot::channel();
        if self.reqs.send(make(tx)).await.is_err() {
            return Err(ProposeOutcomeError::Unavailable(
                "the raft node has stopped".into(),
            ));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(gone("the raft node stopped")),
            Err(_) => Err(gone("timed out waiting for the outcome")),
        }
    }
}

impl crate::dkv::RaftHandle for RaftNode {
    fn propose(&self, cmd: Command) -> crate::dkv::BoxFut<'_, ApplyResult> {
        Box::pin(self.request(
            |reply| Request::Propose { cmd, reply },
            |m| ProposeOutcomeError::Unknown(m.into()),
            self.propose_timeout,
        ))
    }

    fn is_leader(&self) -> bool {
        let v = self.view.borrow();
        !v.stopped && v.status.role == Role::Leader
    }

    fn leader_hint(&self) -> LeaderHint {
        let leader = self.view.borrow().status.leader_id.clone();
        hint(&self.client_addrs, leader)
    }

    fn read_index(&self) -> crate::dkv::BoxFut<'_, Index> {
        Box::pin(self.request(
            |reply| Request::ReadIndex { reply },
            |m| ProposeOutcomeError::Unavailable(m.into()),
            self.propose_timeout,
        ))
    }

    fn wait_applied(&self, index: Index) -> crate::dkv::BoxFut<'_, ()> {
        Box::pin(async move {
            let mut rx = self.view.clone();
            let res = tokio::time::timeout(
                self.propose_timeout,
                rx.wait_for(|v| v.stopped || v.status.last_applied >= index),
            )
            .await;
            match res {
                Ok(Ok(v)) if !v.stopped => Ok(()),
                Ok(_) => Err(ProposeOutcomeError::Unavailable(
                    "the raft node stopped".into(),
                )),
                Err(_) => Err(ProposeOutcomeError::Unavailable(
                    "timed out waiting for the read index to be applied".into(),
                )),
            }
        })
    }

    fn wait_for_leader(&self, timeout: Duration) -> crate::dkv::BoxFut<'_, ()> {
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
    use std::sync::atomic::{AtomicBool, Ordering};

    use raftkv_core::raft::{LogEntry, LogStore, MemLogStore, SnapshotMeta, StorageError, Stores};
    use raftkv_core::{ReadPolicy, WriteMode};

    use super::*;
    use crate::dkv::{DistributedKv, DkvConfig, DkvError, WriteReply};
    use crate::transport::{StaticPeers, TransportConfig};
    use tower::ServiceExt;

    /// An in-memory log whose `sync` runs a hook the test controls: a dying or slow disk.
    struct HookedLog<F> {
        inner: MemLogStore,
        on_sync: F,
    }

    impl<F: FnMut() -> Result<(), StorageError> + Send> LogStore for HookedLog<F> {
        fn base(&self) -> SnapshotMeta {
            self.inner.base()
        }
        fn last_index(&self) -> Index {
            self.inner.last_index()
        }
        fn term_at(&self, index: Index) -> Result<Term, StorageError> {
            self.inner.term_at(index)
        }
        fn append(&mut self, entries: &[LogEntry]) -> Result<(), StorageError> {
            self.inner.append(entries)
        }
        fn read_range(&self, lo: Index, hi: Index) -> Result<Vec<LogEntry>, StorageError> {
            self.inner.read_range(lo, hi)
        }
        fn delete_from(&mut self, index: Index) -> Result<(), StorageError> {
            self.inner.delete_from(index)
        }
        fn truncate_prefix(&mut self, upto: Index, term: Term) -> Result<(), StorageError> {
            self.inner.truncate_prefix(upto, term)
        }
        fn sync(&mut self) -> Result<(), StorageError> {
            (self.on_sync)()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn single_node_reads_never_see_a_write_before_its_fsync() {
        let hold = Arc::new(AtomicBool::new(false));
        let (entered_tx, entered) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel();
        let mut stores = Stores::in_memory();
        // Once `hold` is set, the next sync reports that it started and waits to be released:
        // a slow fsync the test controls.
        stores.log = Box::new(HookedLog {
            inner: MemLogStore::default(),
            on_sync: {
                let hold = Arc::clone(&hold);
                move || {
                    if hold.swap(false, Ordering::Relaxed) {
                        let _ = entered_tx.send(());
                        let _ = release_rx.recv();
                    }
                    Ok(())
                }
            },
        });
        let (_node, thread, dkv) = single_node(stores);
        dkv.write(Command::put("a", "1").with_client("c", 1))
            .await
            .unwrap();
        hold.store(true, Ordering::Relaxed);
        let writer = tokio::spawn({
            let dkv = Arc::clone(&dkv);
            async move { dkv.write(Command::put("a", "2").with_client("c", 2)).await }
        });
        // The driver has appended, committed and applied "2" and is now in its fsync.
        tokio::task::spawn_blocking(move || entered.recv())
            .await
            .unwrap()
            .unwrap();
        let reader = tokio::task::spawn_blocking({
            let dkv = Arc::clone(&dkv);
            let rt = tokio::runtime::Handle::current();
            move || rt.block_on(dkv.get("a", Some(ReadPolicy::Stale)))
        });
        // Whatever the reader gets, it cannot be "2" before the fsync finished: it waits.
        let early = tokio::time::timeout(Duration::from_millis(200), async {
            while !reader.is_finished() {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(early.is_err(), "a read finished during the fsync");
        release.send(()).unwrap();
        let got = reader.await.unwrap().unwrap();
        assert_eq!(got.value.as_deref(), Some("2"));
        assert!(writer.await.unwrap().is_ok());
        thread.stop().await;
    }

    fn single_node(stores: Stores) -> (RaftNode, DriverThread, Arc<DistributedKv>) {
        let id = NodeId::from("n1");
        let addrs = BTreeMap::from([(id.clone(), "127.0.0.1:1".to_string())]);
        let mut raft = Config::new(id.clone(), vec![id.clone()]);
        raft.election_timeout_min = 20;
        raft.election_timeout_max = 40;
        raft.heartbeat_interval = 10;
        let sm = SharedSm::new();
        let (_inbox_tx, inbox_rx) = mpsc::channel(8);
        let transport = HttpTransport::new(
            id.clone(),
            StaticPeers::default(),
            TransportConfig::default(),
        )
        .unwrap();
        let cfg = DriverConfig {
            raft,
            client_addrs: addrs,
            propose_timeout: Duration::from_secs(5),
        };
        let (node, thread) = start(cfg, stores, sm.clone(), inbox_rx, transport).unwrap();
        let dkv = DistributedKv::new(
            Arc::new(node.clone()),
            sm,
            DkvConfig {
                id,
                peers: Vec::new(),
                read_policy: ReadPolicy::ReadIndex,
                write_mode: WriteMode::Sync,
                op_ttl: Duration::from_secs(60),
                leader_wait: Duration::from_secs(5),
            },
        );
        (node, thread, dkv)
    }

    #[tokio::test]
    async fn driver_answers_writes_after_apply_and_reads_through_read_index() {
        let (node, thread, dkv) = single_node(Stores::in_memory());
        let r = dkv
            .write(Command::put("a", "1").with_client("c", 1))
            .await
            .unwrap();
        assert_eq!(r, WriteReply::Done(ApplyResult::ok()));
        // The reply came after apply: the published status already covers it.
        let s = node.view().status;
        assert_eq!(s.role, Role::Leader);
        assert!(s.last_applied >= 2, "{s:?}");
        let got = dkv.get("a", None).await.unwrap();
        assert_eq!(got.value.as_deref(), Some("1"));
        thread.stop().await;
        // Stopped: callers are told, not left hanging.
        assert!(matches!(
            dkv.write(Command::put("b", "1").with_client("c", 2)).await,
            Err(DkvError::Unavailable(_))
        ));
    }

    #[tokio::test]
    async fn storage_failure_stops_the_node_and_requests_get_503_codes() {
        let broken = Arc::new(AtomicBool::new(false));
        let mut stores = Stores::in_memory();
        // Once `broken` is set, every sync fails: a disk that died.
        stores.log = Box::new(HookedLog {
            inner: MemLogStore::default(),
            on_sync: {
                let broken = Arc::clone(&broken);
                move || match broken.load(Ordering::Relaxed) {
                    true => Err(StorageError::Io("disk on fire".into())),
                    false => Ok(()),
                }
            },
        });
        let (node, thread, dkv) = single_node(stores);
        dkv.write(Command::put("a", "1").with_client("c", 1))
            .await
            .unwrap();
        broken.store(true, Ordering::Relaxed);
        // The entry was accepted but could not be made durable: its outcome is unknown.
        let got = dkv.write(Command::put("a", "2").with_client("c", 2)).await;
        assert!(matches!(got, Err(DkvError::UnknownOutcome(_))), "{got:?}");
        assert!(node.wait_for(Duration::from_secs(5), |v| v.stopped).await);
        let got = dkv.write(Command::put("a", "3").with_client("c", 3)).await;
        assert!(matches!(got, Err(DkvError::Unavailable(_))), "{got:?}");
        assert!(matches!(
            dkv.get("a", Some(ReadPolicy::Stale)).await,
            Err(DkvError::Unavailable(_))
        ));
        assert!(dkv.status().stopped);
        // Health checks see it too, so traffic goes elsewhere.
        let health = crate::api::router(Arc::clone(&dkv), 1 << 20)
            .oneshot(
                axum::http::Request::get("/healthz")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(health.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        thread.stop().await;
    }
}
