//! A tiny hand-driven cluster for Raft tests: real nodes, a FIFO of messages delivered on
//! request, cut links, and an optional filter that drops chosen messages. No simulator: every
//! step is explicit, so a test can stop the world at the exact moment it cares about.

#![allow(dead_code)] // Each test file uses a different part of the harness.
pub mod fixtures;
pub mod members;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use raftkv_core::KvStateMachine;
use raftkv_core::kvraft::Payload;
use raftkv_core::kvraft::{Event, LogEntry, MemLogStore, Message, Stores};
use raftkv_core::raft::{
    Config, HardState, Host, Index, LogStore, MemSnapshotStore, MemStableStore, Millis, Proposal,
    ProposeError, Role, StableStore, Term,
};
use raftkv_core::types::{Command, NodeId};

/// The node type every test uses.
pub type KvNode = Host<KvStateMachine>;

/// `NodeId` from a string.
pub fn id(s: &str) -> NodeId {
    NodeId::from(s)
}

/// `n1..=nN`.
pub fn ids(n: usize) -> Vec<NodeId> {
    (1..=n).map(|i| id(&format!("n{i}"))).collect()
}

/// Fast timers for tests: heartbeat 20 ms, election timeout 100..=200 ms.
pub fn test_config(me: &NodeId, voters: &[NodeId]) -> Config {
    let mut cfg = Config::new(me.clone(), voters.to_vec());
    cfg.heartbeat_interval = 20;
    cfg.election_timeout_min = 100;
    cfg.election_timeout_max = 200;
    cfg
}

/// The command stored at `index` by [`stores_with_log`]: a put whose value names its term.
pub fn cmd_for(index: Index, term: Term) -> Command {
    Command::put(format!("k{index}"), format!("t{term}"))
}

/// Stores holding hard state `term` (no vote) and a log whose entry i+1 has term `terms[i]`.
pub fn stores_with_log(term: Term, terms: &[Term]) -> Stores {
    let mut stable = MemStableStore::default();
    stable
        .set_hard_state(&HardState {
            term,
            voted_for: None,
            commit: 0,
        })
        .unwrap();
    let mut log = MemLogStore::default();
    let entries: Vec<LogEntry> = terms
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let index = i as Index + 1;
            LogEntry {
                index,
                term: t,
                payload: Payload::Command(cmd_for(index, t)),
                time: 0,
            }
        })
        .collect();
    log.append(&entries).unwrap();
    Stores {
        stable: Box::new(stable),
        log: Box::new(log),
        snapshot: Box::new(MemSnapshotStore::default()),
    }
}

/// The terms of a log's entries, first to last (compacted entries excluded).
pub fn log_terms(log: &dyn LogStore<Command>) -> Vec<Term> {
    let base = log.base().last_included_index;
    log.read_range(base + 1, log.last_index() + 1)
        .unwrap()
        .iter()
        .map(|e| e.term)
        .collect()
}

/// Decides whether a message in flight is delivered (true) or dropped.
pub type Filter = Box<dyn Fn(&NodeId, &NodeId, &Message) -> bool>;

/// A cluster driven by hand.
pub struct Cluster {
    /// The live nodes.
    pub nodes: BTreeMap<NodeId, KvNode>,
    /// Stores of crashed nodes, waiting for a restart.
    pub crashed: BTreeMap<NodeId, Stores>,
    /// Every member's config (kept to restart a node).
    pub configs: BTreeMap<NodeId, Config>,
    /// The time every call is made at.
    pub now: Millis,
    /// Messages in flight: (from, to, message).
    pub queue: VecDeque<(NodeId, NodeId, Message)>,
    /// Directed links that drop everything.
    pub cut: BTreeSet<(NodeId, NodeId)>,
    /// Drops the messages for which it returns false.
    pub filter: Option<Filter>,
    /// Every event each node emitted, in order.
    pub events: BTreeMap<NodeId, Vec<Event>>,
    /// Every message delivered: (from, to, message).
    pub delivered: Vec<(NodeId, NodeId, Message)>,
}

impl Cluster {
    /// `n` fresh nodes `n1..nN`, each configured by `tweak` after [`test_config`].
    pub fn new(n: usize, tweak: impl Fn(&mut Config)) -> Self {
        let members = ids(n);
        let stores = members.iter().map(|_| Stores::in_memory()).collect();
        Self::with_stores(members, stores, tweak)
    }

    /// Nodes `members` starting from `stores` (one each, same order).
    pub fn with_stores(
        members: Vec<NodeId>,
        stores: Vec<Stores>,
        tweak: impl Fn(&mut Config),
    ) -> Self {
        let mut c = Cluster {
            nodes: BTreeMap::new(),
            crashed: BTreeMap::new(),
            configs: BTreeMap::new(),
            now: 0,
            queue: VecDeque::new(),
            cut: BTreeSet::new(),
            filter: None,
            events: BTreeMap::new(),
            delivered: Vec::new(),
        };
        for (m, s) in members.iter().zip(stores) {
            let mut cfg = test_config(m, &members);
            tweak(&mut cfg);
            c.configs.insert(m.clone(), cfg);
            c.crashed.insert(m.clone(), s);
            c.restart(m);
        }
        c
    }

    /// The live node `n`.
    pub fn node(&self, n: &NodeId) -> &KvNode {
        &self.nodes[n]
    }

    /// Moves the events `n` emitted into `self.events`.
    pub(crate) fn collect(&mut self, n: &NodeId) {
        let evs = self.nodes.get_mut(n).unwrap().take_events();
        self.events.entry(n.clone()).or_default().extend(evs);
    }

    pub(crate) fn enqueue(&mut self, from: &NodeId, out: Vec<(NodeId, Message)>) {
        for (to, msg) in out {
            self.queue.push_back((from.clone(), to, msg));
        }
    }

    /// Ticks node `n` at the current time.
    pub fn tick(&mut self, n: &NodeId) {
        let mut out = Vec::new();
        let now = self.now;
        self.nodes.get_mut(n).unwrap().tick(now, &mut out).unwrap();
        self.collect(n);
        self.enqueue(n, out);
    }

    /// Ticks every live node.
    pub fn tick_all(&mut self) {
        let live: Vec<NodeId> = self.nodes.keys().cloned().collect();
        for n in live {
            self.tick(&n);
        }
    }

    /// Makes `n` campaign now: moves the clock to its election deadline and ticks it alone.
    pub fn campaign(&mut self, n: &NodeId) {
        self.now = self.now.max(self.node(n).next_deadline());
        self.tick(n);
    }

    /// Whether a message from `from` to `to` would get through.
    fn passes(&self, from: &NodeId, to: &NodeId, msg: &Message) -> bool {
        self.nodes.contains_key(to)
            && !self.cut.contains(&(from.clone(), to.clone()))
            && self.filter.as_ref().is_none_or(|f| f(from, to, msg))
    }

    /// Delivers the oldest message in flight (or drops it). Returns false if none was left.
    pub fn deliver_one(&mut self) -> bool {
        let Some((from, to, msg)) = self.queue.pop_front() else {
            return false;
        };
        if !self.passes(&from, &to, &msg) {
            return true;
        }
        self.delivered.push((from.clone(), to.clone(), msg.clone()));
        let mut out = Vec::new();
        let now = self.now;
        self.nodes
            .get_mut(&to)
            .unwrap()
            .step(now, &from, msg, &mut out)
            .unwrap();
        self.collect(&to);
        self.enqueue(&to, out);
        true
    }

    /// Delivers until no message is in flight.
    pub fn deliver_all(&mut self) {
        let mut steps = 0;
        while self.deliver_one() {
            steps += 1;
            assert!(steps < 100_000, "messages never quiesce");
        }
    }

    /// Lets `ms` milliseconds pass in 5 ms steps, ticking everyone and delivering everything
    /// at each step.
    pub fn advance(&mut self, ms: Millis) {
        let end = self.now + ms;
        while self.now < end {
            self.now = (self.now + 5).min(end);
            self.tick_all();
            self.deliver_all();
        }
    }

    /// Advances time until `pred` holds, for at most `max_ms`. Returns whether it held.
    pub fn advance_until(&mut self, max_ms: Millis, pred: impl Fn(&Cluster) -> bool) -> bool {
        let end = self.now + max_ms;
        while self.now < end {
            if pred(self) {
                return true;
            }
            self.advance(5);
        }
        pred(self)
    }

    /// The leader of the highest term among live nodes, if exactly one node leads it.
    pub fn leader(&self) -> Option<NodeId> {
        let top = self.nodes.values().map(|n| n.term()).max()?;
        let leaders: Vec<&KvNode> = self
            .nodes
            .values()
            .filter(|n| n.is_leader() && n.term() == top)
            .collect();
        match leaders.as_slice() {
            [l] => Some(l.id().clone()),
            _ => None,
        }
    }

    /// Runs until a leader exists and has committed its no-op; panics after 5 s.
    pub fn elect(&mut self) -> NodeId {
        let ok = self.advance_until(5_000, |c| {
            c.leader().is_some_and(|l| {
                let n = c.node(&l);
                n.commit_index() == n.status().last_log_index
            })
        });
        assert!(ok, "no leader within 5 s");
        self.leader().unwrap()
    }

    /// Proposes `cmd` at `n` and queues what it sends.
    pub fn propose(&mut self, n: &NodeId, cmd: Command) -> Result<Proposal, ProposeError> {
        let mut out = Vec::new();
        let now = self.now;
        let r = self.nodes.get_mut(n).unwrap().propose(now, cmd, &mut out);
        self.collect(n);
        self.enqueue(n, out);
        r
    }

    /// Cuts every link to and from `n`.
    pub fn isolate(&mut self, n: &NodeId) {
        for other in self.configs.keys() {
            if other != n {
                self.cut.insert((n.clone(), other.clone()));
                self.cut.insert((other.clone(), n.clone()));
            }
        }
    }

    /// Restores every link and removes the filter.
    pub fn heal(&mut self) {
        self.cut.clear();
        self.filter = None;
    }

    /// Kills `n`: its volatile state is gone, its stores are kept for a restart.
    pub fn crash(&mut self, n: &NodeId) {
        let node = self.nodes.remove(n).unwrap();
        self.crashed.insert(n.clone(), node.into_stores());
    }

    /// Starts `n` again from its stores, with an empty state machine.
    pub fn restart(&mut self, n: &NodeId) {
        self.restart_with(n, KvStateMachine::new());
    }

    /// Starts `n` again from its stores, with `sm` (a durable state machine, as it was).
    pub fn restart_with(&mut self, n: &NodeId, sm: KvStateMachine) {
        let stores = self.crashed.remove(n).unwrap();
        let seed = self.configs.keys().position(|k| k == n).unwrap() as u64 + 1;
        let node = Host::new(self.configs[n].clone(), stores, sm, seed, self.now).unwrap();
        self.nodes.insert(n.clone(), node);
        self.collect(n);
    }

    /// The (index, term) of every entry `n` applied, in order.
    pub fn applied(&self, n: &NodeId) -> Vec<(Index, Term)> {
        self.events
            .get(n)
            .into_iter()
            .flatten()
            .filter_map(|e| match e {
                Event::Applied { index, term } => Some((*index, *term)),
                _ => None,
            })
            .collect()
    }

    /// How many AppendEntries `n` rejected.
    pub fn rejections_by(&self, n: &NodeId) -> usize {
        self.delivered
            .iter()
            .filter(|(from, _, m)| {
                from == n && matches!(m, Message::AppendEntriesResponse(r) if !r.success)
            })
            .count()
    }

    /// The roles of the live nodes.
    pub fn roles(&self) -> BTreeMap<NodeId, Role> {
        self.nodes
            .iter()
            .map(|(k, n)| (k.clone(), n.role()))
            .collect()
    }
}
