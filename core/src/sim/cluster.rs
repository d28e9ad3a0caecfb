//! The deterministic cluster: nodes, network, clients, one event queue, one clock.
//!
//! The cluster is the nodes' host: it feeds them messages, ticks and proposals, carries their
//! messages over the simulated network, turns their events into client replies, and checks
//! Raft's invariants after every event. It is driven one event at a time ([`Cluster::step`]) or
//! up to a time ([`Cluster::run_until`]), and everything in it can be inspected between steps —
//! the interface the browser playground builds on.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

mod churn;
mod host;
mod view;

pub use churn::{MAX_STARTED_NODES, MAX_VOTERS, membership_summary};
pub use view::{ClientView, NodeView};

use super::client::{
    Answer, Client, ClientConfig, ClientOp, ClientReply, ClientRequest, Effect, ReadOptions,
    Workload,
};
use super::clock::NodeClock;
use super::committed_reads::CommittedLog;
use super::disk::{self, Damage, SyncFault};
use super::fault::Fault;
use super::history::History;
use super::invariants::{Invariant, Invariants, Violation};
use super::network::{
    DropReason, Endpoint, InFlight, InFlightView, LinkConfig, MsgId, Network, Payload, Route,
    node_index, node_name,
};
use super::queue::{Action, EventQueue};
use super::rng::{SimRng, Stream, mix_seed};
use super::session_tables::SessionTables;
use super::trace::{Trace, TraceEvent, TraceKind, TraceMode};
use crate::kvraft::{Event, Host, LogEntry, Message, Ready, Stores};
use crate::kvsm::{KvStateMachine, SessionLimits};
use crate::raft::{Config, Index, Millis, ProposeError, RaftError, Status, Waiters};
use crate::types::{NodeId, ReadPolicy};

/// The most nodes a simulated cluster has.
pub const MAX_NODES: usize = 9;

/// How a simulated cluster is built.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The seed every random draw of the run derives from.
    pub seed: u64,
    /// How many nodes (1..=9), named `n1`..`n9`.
    pub nodes: usize,
    /// How many clients, named `c1`...
    pub clients: usize,
    /// The nodes' Raft configuration; `id` and `voters` are filled in per node.
    pub raft: Config,
    /// How node↔node links behave (until a fault changes them).
    pub node_link: LinkConfig,
    /// How client↔node links behave.
    pub client_link: LinkConfig,
    /// Clients' timeouts and backoff.
    pub client: ClientConfig,
    /// How much of the trace to keep.
    pub trace: TraceMode,
    /// Whether to check the leader commit rule (see [`Invariant::CommitRule`]).
    pub check_commit_rule: bool,
    /// How long a node's writes take to become durable: each Ready's writes are done after a
    /// draw from this range, in the order they were taken, while the node goes on. A node
    /// killed meanwhile loses the writes not done yet (or keeps a drawn prefix of them
    /// without having sent what waited for them). (0, 0): writes are durable at once.
    pub disk_latency: (Millis, Millis),
    /// Each node's clock rate, in parts per million off the global clock, by node index
    /// (nodes past the end, and nodes added later past it, run at the global rate). See
    /// [`clock`](super::clock).
    pub clock_ppm: Vec<i32>,
    /// How long the nemesis keeps trying a membership change or transfer that is refused
    /// for now (in progress, not caught up, no leader...).
    pub churn_patience: Millis,
    /// The nemesis starts no membership change or transfer from this time on, and gives up
    /// those still pending (the faults end).
    pub churn_until: Millis,
    /// The chance that a node that just won an election is asked for a change of one voter
    /// right away (promote a learner or remove a voter): before an entry of its term is
    /// committed, which core must refuse (Ongaro's single-server change bug otherwise).
    pub churn_on_election: f64,
    /// Every node's client session limits (see [`SessionLimits`]).
    pub session_limits: SessionLimits,
    /// The chance that a node's sync of a Ready fails (see [`disk`](super::disk)): the node
    /// stops as if killed (the Ready and the writes queued behind it are lost) and restarts
    /// after a drawn while. 0: syncs never fail.
    pub fsync_failure_rate: f64,
    /// A kill may leave the next lost Ready on disk whole but with its last record corrupt;
    /// the restart's checksum finds it and cuts it off like a torn write.
    pub corrupt_tails: bool,
    /// A restart may read a synced record corrupt: the node refuses to start and stays down
    /// (its disk is dead). At most one node per run; only for a fixed membership of 3 or more
    /// voters, so a majority is left.
    pub disk_loss: bool,
    /// Syncs fail and synced records rot only before this time (the faults' end).
    pub storage_faults_until: Millis,
    /// A deliberate break: nodes expire sessions by their own clock instead of the log's.
    #[cfg(feature = "protocol-breaks")]
    pub session_expiry_by_local_clock: bool,
}

impl SimConfig {
    /// `nodes` nodes with Raft's default timing, 1–10 ms links, no clients, full trace.
    pub fn new(seed: u64, nodes: usize) -> Self {
        SimConfig {
            seed,
            nodes,
            clients: 0,
            raft: Config::new(NodeId::from("n1"), vec![NodeId::from("n1")]),
            node_link: LinkConfig::default(),
            client_link: LinkConfig {
                latency_min: 1,
                latency_max: 5,
                loss: 0.0,
                duplicate: 0.0,
            },
            client: ClientConfig::default(),
            trace: TraceMode::Full,
            check_commit_rule: true,
            disk_latency: (0, 0),
            clock_ppm: Vec::new(),
            churn_patience: 2_000,
            churn_until: Millis::MAX,
            churn_on_election: 0.0,
            session_limits: SessionLimits::default(),
            fsync_failure_rate: 0.0,
            corrupt_tails: false,
            disk_loss: false,
            storage_faults_until: Millis::MAX,
            #[cfg(feature = "protocol-breaks")]
            session_expiry_by_local_clock: false,
        }
    }
}

/// Counters of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// Events processed (stale timers excluded).
    pub events: u64,
    /// Messages handed to the network (duplicates included).
    pub sent: u64,
    /// Messages delivered.
    pub delivered: u64,
    /// Messages dropped.
    pub dropped: u64,
    /// Node timer ticks.
    pub ticks: u64,
    /// Client operations that ended.
    pub ops_completed: u64,
    /// Snapshots nodes took of their own state machine (compacting their log).
    pub snapshots_taken: u64,
    /// Snapshots nodes installed from a leader's InstallSnapshot.
    pub snapshots_installed: u64,
    /// Snapshots restarted nodes loaded from their stores.
    pub snapshots_loaded: u64,
    /// InstallSnapshot chunks leaders sent (before the network's faults).
    #[serde(default)]
    pub snapshot_chunks_sent: u64,
    /// Snapshot transfers a follower completed (received whole, checked and installed).
    #[serde(default)]
    pub snapshot_transfers_completed: u64,
    /// Transfers a leader resumed at a follower's offset past its own (the follower had the
    /// bytes from an earlier try).
    #[serde(default)]
    pub snapshot_transfers_resumed: u64,
    /// Receptions a follower discarded half way (another snapshot came) or refused at the end.
    #[serde(default)]
    pub snapshot_transfers_restarted: u64,
    /// Transfers a leader gave up after a long silence.
    #[serde(default)]
    pub snapshot_transfers_abandoned: u64,
    /// Readys whose writes were still in flight when their node was killed: lost.
    pub writes_lost: u64,
    /// Readys a killed node had made durable without sending the messages that waited.
    pub writes_unsent: u64,
    /// Readys a killed node had written in part: a prefix of their entries survived (a torn
    /// last record, which recovery cuts off).
    #[serde(default)]
    pub writes_torn: u64,
    /// Syncs that failed: each stopped its node (restarted later like a killed one).
    #[serde(default)]
    pub fsync_failures: u64,
    /// Corrupt last records a restart's checksum found and cut off (a write the crash left
    /// damaged, never acknowledged).
    #[serde(default)]
    pub corrupt_tails_cut: u64,
    /// Starts refused because a synced record read back corrupt (the node stays down).
    #[serde(default)]
    pub corrupt_starts_refused: u64,
    /// Reads a leader served on its lease (without a confirmation round).
    pub lease_reads: u64,
    /// Reads that had to wait for the serving node to apply their floor (read-your-writes).
    pub reads_waited: u64,
    /// Nodes started after the cluster was built (joining nodes).
    pub nodes_added: u64,
    /// Configuration changes proposed (accepted by a leader).
    pub conf_changes_proposed: u64,
    /// Configuration changes applied (as their leader saw them take effect).
    pub conf_changes_applied: u64,
    /// Of those, changes that entered a joint configuration.
    pub joint_entered: u64,
    /// Leadership transfers a leader started.
    pub transfers_started: u64,
    /// Transfers whose target became leader.
    pub transfers_completed: u64,
    /// Client sessions the state machines dropped (idle past the ttl, or over the cap), as
    /// the most advanced node saw them go.
    pub sessions_expired: u64,
    /// Writes refused as from an expired session (`session_expired`): their client recorded
    /// them failed (or unknown, when an earlier attempt may have applied) and started a new
    /// session.
    pub session_refusals: u64,
}

/// A node's life.
enum NodeState {
    Up(Box<Host>),
    Down(Stores),
    /// Only while moving between the two.
    Gone,
}

/// Who waits for a proposal's outcome.
#[derive(Clone, Copy, Debug)]
struct Waiter {
    client: usize,
    seq: u64,
    attempt: u32,
}

/// A client's read waiting at a node.
#[derive(Clone, Debug)]
struct ReadWaiter {
    waiter: Waiter,
    /// The key read.
    key: String,
    /// The node serves the read only once it applied this index (the client's own write, or
    /// a lease read's read index).
    floor: Index,
    /// Served on a lease (counted in [`SimStats::lease_reads`]).
    lease: bool,
}

struct SimNode {
    id: NodeId,
    /// Clients waiting for a proposal, and for a ReadIndex read.
    waiters: Waiters<Waiter, ReadWaiter>,
    /// Reads waiting for the node to apply their floor, with when they give up (global time).
    floor_reads: Vec<(ReadWaiter, Millis)>,
    state: NodeState,
    incarnation: u32,
    timer_generation: u64,
    timer_at: Option<Millis>,
    /// Readys taken whose writes are not durable yet, with when they will be; in order.
    writes: VecDeque<(Ready, Millis)>,
    /// Bumped when the node dies, so a write due for an earlier life is ignored.
    write_generation: u64,
    /// The snapshot index last seen in the node's status (to count snapshots it takes).
    snapshot_index: Index,
    /// The node's snapshot counters at the end of the last call (reset on restart): the
    /// cluster adds what each call added.
    snapshot_counters: crate::raft::SnapshotStats,
    /// Set while the node is being started: a snapshot restored now was loaded from its stores.
    starting: bool,
    /// The node's own clock: every time the node is given is read from it.
    clock: NodeClock,
    /// Started after the cluster was built: it (re)starts with no configuration of its own
    /// (`Config.voters` empty) and learns one from the leader.
    joined: bool,
    /// The node's clock as its state machine reads it under the `session_expiry_by_local_clock`
    /// break.
    #[cfg(feature = "protocol-breaks")]
    local_clock: crate::kvsm::LocalClock,
    /// Armed while a write of this node's is to fail (see [`disk`](super::disk)).
    sync_fault: SyncFault,
    /// A record of its log that reads back corrupt at its next start.
    damage: Option<Damage>,
    /// Why its disk is dead: it refused to start (a synced record read back corrupt) and stays
    /// down.
    dead: Option<String>,
}

impl SimNode {
    /// Node `i`, down with empty stores, its clock set at global time `now` to the rate
    /// `cfg` gives it; `joined`: started after the cluster was built.
    fn new(cfg: &SimConfig, i: usize, now: Millis, joined: bool) -> Self {
        let mut clock = NodeClock::new();
        clock.set_rate(now, cfg.clock_ppm.get(i).copied().unwrap_or(0));
        let sync_fault = SyncFault::default();
        SimNode {
            id: NodeId(node_name(i)),
            state: NodeState::Down(disk::stores(&sync_fault)),
            sync_fault,
            damage: None,
            dead: None,
            incarnation: 0,
            timer_generation: 0,
            timer_at: None,
            writes: VecDeque::new(),
            write_generation: 0,
            waiters: Waiters::default(),
            floor_reads: Vec::new(),
            snapshot_index: 0,
            snapshot_counters: Default::default(),
            starting: false,
            clock,
            joined,
            #[cfg(feature = "protocol-breaks")]
            local_clock: Default::default(),
        }
    }
}

/// The simulated cluster.
pub struct Cluster {
    cfg: SimConfig,
    now: Millis,
    queue: EventQueue,
    net: Network,
    nodes: Vec<SimNode>,
    voters: Vec<NodeId>,
    clients: Vec<Client>,
    client_timers: Vec<u64>,
    trace: Trace,
    invariants: Invariants,
    history: History,
    stats: SimStats,
    failure: Option<Violation>,
    outbox: Vec<(NodeId, Message)>,
    /// Disk latency and crash-survival draws.
    disk: SimRng,
    /// Every committed entry, recorded when a node first applies it (what served reads are
    /// checked against: [`committed_reads`](super::committed_reads)).
    committed: CommittedLog,
    /// The membership nemesis: its pending changes and its draws.
    churn: churn::Churn,
    /// The session tables per applied index (see [`session_tables`](super::session_tables)).
    sessions: SessionTables,
    /// Failed syncs, corrupt records, downtimes: drawn only when those faults are on.
    storage: SimRng,
}

impl Cluster {
    /// Builds the cluster and starts every node at time 0. Errors if `nodes` is not 1..=9 or a
    /// node cannot start.
    pub fn new(cfg: SimConfig) -> Result<Self, Violation> {
        if !(1..=MAX_NODES).contains(&cfg.nodes) {
            return Err(Violation {
                invariant: Invariant::NodeError,
                time: 0,
                nodes: Vec::new(),
                detail: format!("a cluster has 1 to {MAX_NODES} nodes, not {}", cfg.nodes),
            });
        }
        let voters: Vec<NodeId> = (0..cfg.nodes).map(|i| NodeId(node_name(i))).collect();
        let mut c = Cluster {
            now: 0,
            queue: EventQueue::new(),
            net: Network::new(cfg.nodes, cfg.node_link, cfg.client_link, cfg.seed),
            nodes: Vec::new(),
            voters: voters.clone(),
            clients: Vec::new(),
            client_timers: Vec::new(),
            trace: Trace::new(cfg.trace),
            invariants: {
                let mut inv = Invariants::new();
                inv.set_commit_rule(cfg.check_commit_rule);
                inv
            },
            history: History::default(),
            stats: SimStats::default(),
            failure: None,
            outbox: Vec::new(),
            disk: SimRng::new(cfg.seed, Stream::Disk),
            committed: CommittedLog::new(),
            churn: churn::Churn::new(cfg.seed),
            sessions: SessionTables::new(),
            storage: SimRng::new(cfg.seed, Stream::StorageFaults),
            cfg,
        };
        for i in 0..voters.len() {
            let node = SimNode::new(&c.cfg, i, 0, false);
            c.nodes.push(node);
        }
        for i in 0..c.nodes.len() {
            c.start_node(i)?;
        }
        for _ in 0..c.cfg.clients {
            c.add_client();
        }
        Ok(c)
    }

    // ----- driving -----

    /// The simulated time.
    pub fn now(&self) -> Millis {
        self.now
    }

    /// When the next event is due, if any.
    pub fn next_event_time(&self) -> Option<Millis> {
        self.queue.peek_time()
    }

    /// Processes the next event. Returns `Ok(false)` when nothing is left to do. After a
    /// violation every call returns it again.
    pub fn step(&mut self) -> Result<bool, Violation> {
        self.step_until(Millis::MAX)
    }

    /// Processes the next event due at or before `t`. Returns `Ok(false)` when none is. Stale
    /// actions on the way are dropped, but one due after `t` is never taken: that would move the
    /// clock past `t`, and an action injected "now" would then land at a time a replay that runs
    /// to `t` in other chunks does not reach (the playground's shared links depend on this).
    pub fn step_until(&mut self, t: Millis) -> Result<bool, Violation> {
        if let Some(v) = &self.failure {
            return Err(v.clone());
        }
        loop {
            if self.queue.peek_time().is_none_or(|next| next > t) {
                return Ok(false);
            }
            let Some(s) = self.queue.pop() else {
                return Ok(false);
            };
            self.now = self.now.max(s.time);
            match self.process(s.action) {
                Ok(true) => {
                    self.stats.events += 1;
                    return Ok(true);
                }
                Ok(false) => continue,
                Err(v) => {
                    self.failure = Some(v.clone());
                    return Err(v);
                }
            }
        }
    }

    /// Processes every event due at or before `t`, then sets the clock to `t`.
    pub fn run_until(&mut self, t: Millis) -> Result<(), Violation> {
        while self.step_until(t)? {}
        self.now = self.now.max(t);
        Ok(())
    }

    /// Moves the clock to `t` (never back) without running anything. For a replay that has
    /// run as many events as the live run had when an action came at `t`: the live clock was
    /// at `t` then, whether it got there by running to `t` (every event due by then ran; only
    /// dropped actions can be left, which change nothing but the clock) or by a single step
    /// (events due at `t` itself may still wait, and must not run before the action).
    pub fn advance_clock_to(&mut self, t: Millis) {
        self.now = self.now.max(t);
    }

    /// Runs for `ms` simulated milliseconds.
    pub fn run_for(&mut self, ms: Millis) -> Result<(), Violation> {
        self.run_until(self.now.saturating_add(ms))
    }

    /// Runs until `done` holds (checked after every event) or time `deadline` passes.
    /// Returns whether `done` held.
    pub fn run_while_not(
        &mut self,
        deadline: Millis,
        mut done: impl FnMut(&Cluster) -> bool,
    ) -> Result<bool, Violation> {
        loop {
            if done(self) {
                return Ok(true);
            }
            if !self.step_until(deadline)? {
                self.now = self.now.max(deadline);
                return Ok(done(self));
            }
        }
    }

    // ----- faults -----

    /// Schedules a fault at time `at` (at the current time if `at` has passed).
    pub fn schedule(&mut self, at: Millis, fault: Fault) {
        self.queue.push(at.max(self.now), Action::Fault(fault));
    }

    /// The faults still scheduled, earliest first.
    pub fn scheduled_faults(&self) -> Vec<(Millis, Fault)> {
        self.queue.faults()
    }

    /// Injects a fault now.
    pub fn apply_fault(&mut self, fault: &Fault) -> Result<(), Violation> {
        if self.trace.enabled() {
            self.trace.record(
                self.now,
                TraceKind::Fault {
                    fault: fault.to_string(),
                },
            );
        }
        let n = self.nodes.len();
        match fault {
            Fault::KillLeader | Fault::IsolateLeader => {
                // Resolved now, so the trace names the node the fault hit.
                if let Some(node) = self.leader() {
                    let resolved = match fault {
                        Fault::KillLeader => Fault::Kill { node },
                        _ => Fault::Isolate { node },
                    };
                    return self.apply_fault(&resolved);
                }
            }
            Fault::KillFollower | Fault::IsolateFollower => {
                if n > 1 {
                    let node = self.leader().map_or(0, |l| (l + 1) % n);
                    let resolved = match fault {
                        Fault::KillFollower => Fault::Kill { node },
                        _ => Fault::Isolate { node },
                    };
                    return self.apply_fault(&resolved);
                }
            }
            Fault::Kill { node } if *node < n => self.kill_node(*node)?,
            Fault::Restart { node } if *node < n => self.start_node(*node)?,
            Fault::RestartAll => {
                for i in 0..n {
                    self.start_node(i)?;
                }
            }
            Fault::Isolate { node } => self.net.isolate(*node),
            Fault::Partition { groups } => self.net.partition(groups),
            Fault::Cut { from, to } => self.net.cut(*from, *to),
            Fault::Heal { from, to } => self.net.heal(*from, *to),
            Fault::HealAll => self.net.heal_all(),
            Fault::Loss { p } => self.net.update_all_links(|l| l.loss = *p),
            Fault::Duplicate { p } => self.net.update_all_links(|l| l.duplicate = *p),
            Fault::Latency {
                node: None,
                min,
                max,
            } => self.net.update_all_links(|l| {
                l.latency_min = *min;
                l.latency_max = *max;
            }),
            Fault::Latency {
                node: Some(node),
                min,
                max,
            } => {
                for other in 0..n {
                    for (a, b) in [(*node, other), (other, *node)] {
                        let mut l = self.net.link(Endpoint::Node(a), Endpoint::Node(b));
                        l.latency_min = *min;
                        l.latency_max = *max;
                        self.net.set_link(a, b, l);
                    }
                }
            }
            Fault::Link {
                from,
                to,
                loss,
                min,
                max,
            } => {
                let mut l = self.net.link(Endpoint::Node(*from), Endpoint::Node(*to));
                l.loss = *loss;
                l.latency_min = *min;
                l.latency_max = *max;
                self.net.set_link(*from, *to, l);
            }
            Fault::ResetLinks => self.net.set_all_links(self.cfg.node_link),
            Fault::Filter { filter } => self.net.add_filter(filter.clone()),
            Fault::Unfilter { filter } => self.net.remove_filter(filter),
            Fault::ClockRate { node, ppm } if *node < n => {
                let now = self.now;
                self.nodes[*node].clock.set_rate(now, *ppm);
                self.clock_changed(*node);
            }
            Fault::ClockJump { node, ms } if *node < n => {
                let now = self.now;
                self.nodes[*node].clock.jump(now, *ms);
                self.clock_changed(*node);
            }
            Fault::AddNode { .. }
            | Fault::Promote
            | Fault::RemoveVoter
            | Fault::RemoveLeader
            | Fault::RemoveLearner
            | Fault::ReplaceVoter
            | Fault::TransferLeader => self.churn_fault(fault)?,
            Fault::Kill { .. }
            | Fault::Restart { .. }
            | Fault::ClockRate { .. }
            | Fault::ClockJump { .. } => {}
        }
        Ok(())
    }

    /// Kills node `i` (see [`Fault::Kill`]).
    pub fn kill(&mut self, i: usize) -> Result<(), Violation> {
        self.apply_fault(&Fault::Kill { node: i })
    }

    /// Restarts node `i` (see [`Fault::Restart`]).
    pub fn restart(&mut self, i: usize) -> Result<(), Violation> {
        self.apply_fault(&Fault::Restart { node: i })
    }

    /// Cuts the directed link `from -> to`.
    pub fn cut(&mut self, from: usize, to: usize) -> Result<(), Violation> {
        self.apply_fault(&Fault::Cut { from, to })
    }

    /// Restores the directed link `from -> to`.
    pub fn heal(&mut self, from: usize, to: usize) -> Result<(), Violation> {
        self.apply_fault(&Fault::Heal { from, to })
    }

    /// Cuts every link of node `i`.
    pub fn isolate(&mut self, i: usize) -> Result<(), Violation> {
        self.apply_fault(&Fault::Isolate { node: i })
    }

    /// Restores every link.
    pub fn heal_all(&mut self) -> Result<(), Violation> {
        self.apply_fault(&Fault::HealAll)
    }

    // ----- clocks -----

    /// Node `i`'s clock runs `ppm` parts per million off the global clock from now on
    /// (positive: fast; clamped to ±50%). Traced as a fault. Errors for an unknown node.
    pub fn set_clock_drift(&mut self, i: usize, ppm: i32) -> Result<(), String> {
        self.known_node(i)?;
        self.apply_fault(&Fault::ClockRate { node: i, ppm })
            .map_err(|v| v.to_string())
    }

    /// Node `i`'s clock jumps `ms` forward now (an NTP step, a VM resumed): its timers that
    /// fall in the skipped stretch fire at once. Traced as a fault. Errors for an unknown node.
    pub fn jump_clock(&mut self, i: usize, ms: Millis) -> Result<(), String> {
        self.known_node(i)?;
        self.apply_fault(&Fault::ClockJump { node: i, ms })
            .map_err(|v| v.to_string())
    }

    /// Node `i`'s clock (its rate and jumps so far).
    pub fn clock(&self, i: usize) -> Option<NodeClock> {
        self.nodes.get(i).map(|n| n.clock)
    }

    /// The time node `i` sees now (the global time for an unknown node).
    pub fn local_now(&self, i: usize) -> Millis {
        self.nodes
            .get(i)
            .map_or(self.now, |n| n.clock.local(self.now))
    }

    fn known_node(&self, i: usize) -> Result<(), String> {
        if i < self.nodes.len() {
            Ok(())
        } else {
            Err(format!(
                "no node {} (the cluster has {})",
                node_name(i),
                self.nodes.len()
            ))
        }
    }

    /// After node `i`'s clock changed: its timer, set for its own time, moves in global time.
    fn clock_changed(&mut self, i: usize) {
        if let Some(deadline) = self.node(i).map(|h| h.next_deadline()) {
            self.nodes[i].timer_generation += 1;
            self.nodes[i].timer_at = None;
            self.schedule_node_timer(i, deadline, false);
        }
    }

    /// The network, for reading link settings and cuts.
    pub fn network(&self) -> &Network {
        &self.net
    }

    /// The network, for changing link settings directly (not traced).
    pub fn network_mut(&mut self) -> &mut Network {
        &mut self.net
    }

    /// Sends a copy of message `id`, now in flight, delivered `after` ms (at least 1) after the
    /// original: the network duplicating one message by hand. Returns the copy's id, or `None`
    /// if `id` is not in flight. The copy is traced as a send, like a duplicate the network
    /// drew itself; nothing is drawn from the network's randomness.
    pub fn duplicate_in_flight(&mut self, id: MsgId, after: Millis) -> Option<MsgId> {
        let m = self.net.get(id)?.clone();
        let copy = self.net.next_id();
        self.stats.sent += 1;
        let latency = (m.deliver_at + after.max(1))
            .saturating_sub(self.now)
            .max(1);
        self.launch(copy, m.from, m.to, latency, m.payload, Some(id));
        Some(copy)
    }

    /// Pushes the delivery of message `id`, now in flight, back by `by` ms; returns when it now
    /// arrives, or `None` if `id` is not in flight. Its earlier delivery, still queued, finds
    /// it not yet due and does nothing.
    pub fn delay_in_flight(&mut self, id: MsgId, by: Millis) -> Option<Millis> {
        let at = self.net.delay(id, by)?;
        self.queue.push(at, Action::Deliver(id));
        Some(at)
    }

    // ----- clients -----

    /// Adds a client; returns its index.
    pub fn add_client(&mut self) -> usize {
        let i = self.clients.len();
        self.clients.push(Client::new(
            i,
            self.nodes.len(),
            self.cfg.client,
            self.cfg.seed,
        ));
        self.client_timers.push(0);
        i
    }

    /// Gives client `i` a random workload.
    pub fn set_workload(&mut self, i: usize, w: Workload) {
        let now = self.now;
        if let Some(c) = self.clients.get_mut(i) {
            let fx = c.set_workload(now, w);
            self.client_effects(i, fx);
        }
    }

    /// Has client `i` run `op` (after what it is doing now).
    pub fn submit(&mut self, i: usize, op: ClientOp) {
        let now = self.now;
        if let Some(c) = self.clients.get_mut(i) {
            let fx = c.submit(now, op);
            self.client_effects(i, fx);
        }
    }

    /// Has client `i` read `key` under `policy` (after what it is doing now), served as `opts`
    /// says: at a chosen node first (a follower, say), and read-your-writes (the serving node
    /// waits until it applied the client's last acknowledged write).
    pub fn submit_read(&mut self, i: usize, key: &str, policy: ReadPolicy, opts: ReadOptions) {
        let now = self.now;
        if let Some(c) = self.clients.get_mut(i) {
            let fx = c.submit_read(now, key, policy, opts);
            self.client_effects(i, fx);
        }
    }

    /// Points client `i` at node `node` for its next attempt.
    pub fn set_client_target(&mut self, i: usize, node: usize) {
        if let Some(c) = self.clients.get_mut(i) {
            c.set_leader_guess(node);
        }
    }

    /// The clients.
    pub fn clients(&self) -> &[Client] {
        &self.clients
    }

    /// Whether every client finished its work.
    pub fn clients_done(&self) -> bool {
        self.clients.iter().all(Client::is_done)
    }

    /// Ends every client's work: operations in progress are recorded without an answer.
    pub fn abandon_clients(&mut self) {
        let now = self.now;
        for i in 0..self.clients.len() {
            let fx = self.clients[i].abandon(now);
            self.client_effects(i, fx);
        }
    }

    /// The client history so far.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The committed log as the nodes applied it (see [`CommittedLog`]).
    pub fn committed_log(&self) -> &CommittedLog {
        &self.committed
    }

    // ----- internals -----

    /// Returns whether the action did anything (stale timers and lost messages do not count).
    fn process(&mut self, action: Action) -> Result<bool, Violation> {
        match action {
            // A message delayed by hand is not due at its first, earlier delivery.
            Action::Deliver(id) if self.net.get(id).is_some_and(|m| m.deliver_at > self.now) => {
                Ok(false)
            }
            Action::Deliver(id) => match self.net.land(id) {
                Some(m) => self.deliver(m).map(|()| true),
                None => Ok(false),
            },
            Action::NodeTimer { node, generation } => {
                let Some(n) = self.nodes.get_mut(node) else {
                    return Ok(false);
                };
                if n.timer_generation != generation || !matches!(n.state, NodeState::Up(_)) {
                    return Ok(false);
                }
                n.timer_at = None;
                self.stats.ticks += 1;
                let now = self.local_now(node);
                self.call_node(node, |host| host.feed().tick(now))?;
                self.after_node_call(node, true)?;
                Ok(true)
            }
            Action::WriteDone { node, generation } => {
                if self.nodes.get(node).map(|n| n.write_generation) != Some(generation) {
                    return Ok(false);
                }
                self.write_done(node)?;
                self.after_node_call(node, false)?;
                Ok(true)
            }
            Action::ClientTimer { client, generation } => {
                if self.client_timers.get(client) != Some(&generation) {
                    return Ok(false);
                }
                let now = self.now;
                let fx = self.clients[client].on_wake(now);
                self.client_effects(client, fx);
                Ok(true)
            }
            Action::Fault(f) => self.apply_fault(&f).map(|()| true),
            Action::Churn { intent } => self.churn_try(intent),
        }
    }

    fn deliver(&mut self, m: InFlight) -> Result<(), Violation> {
        let kind = m.payload.kind();
        if self.net.is_cut(m.from, m.to) {
            self.dropped(&m, DropReason::Partitioned);
            return Ok(());
        }
        if self.net.filtered(m.from, m.to, kind) {
            self.dropped(&m, DropReason::Filtered);
            return Ok(());
        }
        if let Endpoint::Node(i) = m.to
            && !self.is_up(i)
        {
            self.dropped(&m, DropReason::NodeDown);
            return Ok(());
        }
        self.stats.delivered += 1;
        if self.trace.enabled() {
            self.trace.record(
                self.now,
                TraceKind::Deliver {
                    id: m.id,
                    from: m.from.name(),
                    to: m.to.name(),
                    kind: kind.to_string(),
                },
            );
        }
        match (m.to, m.payload) {
            (Endpoint::Node(i), Payload::Raft(msg)) => {
                let Endpoint::Node(from) = m.from else {
                    return Ok(());
                };
                let from = NodeId(node_name(from));
                let now = self.local_now(i);
                self.call_node(i, |host| host.feed().step(now, &from, msg))?;
                self.after_node_call(i, false)
            }
            (Endpoint::Node(i), Payload::Request(req)) => self.handle_request(i, req),
            (Endpoint::Client(c), Payload::Reply(rep)) => {
                let now = self.now;
                if let Some(client) = self.clients.get_mut(c) {
                    let fx = client.on_reply(now, &rep);
                    self.client_effects(c, fx);
                }
                Ok(())
            }
            // Misaddressed payloads cannot be produced by the cluster; ignore them.
            _ => Ok(()),
        }
    }

    fn dropped(&mut self, m: &InFlight, reason: super::network::DropReason) {
        self.stats.dropped += 1;
        if self.trace.enabled() {
            self.trace.record(
                self.now,
                TraceKind::Drop {
                    id: m.id,
                    from: m.from.name(),
                    to: m.to.name(),
                    kind: m.payload.kind().to_string(),
                    reason,
                },
            );
        }
    }

    fn send(&mut self, from: Endpoint, to: Endpoint, payload: Payload) {
        self.stats.sent += 1;
        let id = self.net.next_id();
        // A filter drops after the network drew for the message: the draws stay the same
        // whether filters are set or not.
        let route = match self.net.route(from, to) {
            Route::Deliver { .. } if self.net.filtered(from, to, payload.kind()) => {
                Route::Drop(DropReason::Filtered)
            }
            r => r,
        };
        match route {
            Route::Drop(reason) => {
                let m = InFlight {
                    id,
                    from,
                    to,
                    sent_at: self.now,
                    deliver_at: self.now,
                    payload,
                    duplicate_of: None,
                };
                self.dropped(&m, reason);
            }
            Route::Deliver { latency, duplicate } => {
                let copy = duplicate.map(|d| {
                    self.stats.sent += 1;
                    (self.net.next_id(), d, payload.clone())
                });
                self.launch(id, from, to, latency, payload, None);
                if let Some((dup_id, d, p)) = copy {
                    self.launch(dup_id, from, to, d, p, Some(id));
                }
            }
        }
    }

    fn launch(
        &mut self,
        id: u64,
        from: Endpoint,
        to: Endpoint,
        latency: Millis,
        payload: Payload,
        duplicate_of: Option<u64>,
    ) {
        let deliver_at = self.now + latency;
        if self.trace.enabled() {
            self.trace.record(
                self.now,
                TraceKind::Send {
                    id,
                    from: from.name(),
                    to: to.name(),
                    kind: payload.kind().to_string(),
                    summary: payload.summary(),
                    deliver_at,
                    dup_of: duplicate_of,
                },
            );
        }
        self.net.launch(InFlight {
            id,
            from,
            to,
            sent_at: self.now,
            deliver_at,
            payload,
            duplicate_of,
        });
        self.queue.push(deliver_at, Action::Deliver(id));
    }

    fn client_effects(&mut self, c: usize, fx: Vec<Effect>) {
        for e in fx {
            match e {
                Effect::Send { to, req } => self.send(
                    Endpoint::Client(c),
                    Endpoint::Node(to),
                    Payload::Request(req),
                ),
                Effect::WakeAt(t) => {
                    self.client_timers[c] += 1;
                    let generation = self.client_timers[c];
                    self.queue.push(
                        t.max(self.now),
                        Action::ClientTimer {
                            client: c,
                            generation,
                        },
                    );
                }
                Effect::Invoked { seq, op } => {
                    if self.trace.enabled() {
                        self.trace.record(
                            self.now,
                            TraceKind::Invoke {
                                client: self.clients[c].id().to_string(),
                                seq,
                                op: op.summary(),
                            },
                        );
                    }
                }
                Effect::Completed { seq, record } => {
                    self.stats.ops_completed += 1;
                    self.stats.session_refusals += u64::from(self.clients[c].take_refused());
                    if self.trace.enabled() {
                        self.trace.record(
                            self.now,
                            TraceKind::Complete {
                                client: record.client.clone(),
                                seq,
                                status: record.status,
                            },
                        );
                    }
                    self.history.ops.push(record);
                }
            }
        }
    }
}
