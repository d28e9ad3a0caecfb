//! What the playground draws: plain, serializable views of nodes and clients, and the
//! cluster's read-only accessors.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::*;

/// A node as the playground shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    /// The node's id.
    pub id: String,
    /// Whether it runs (false: killed).
    pub up: bool,
    /// How many times it was restarted.
    pub incarnation: u32,
    /// Its state, while up.
    pub status: Option<Status>,
    /// When its next timer fires, while up.
    pub next_tick: Option<Millis>,
    /// Its log's entries (after the snapshot base), while up or down.
    pub log: Vec<LogEntry>,
    /// Its state machine's contents, while up.
    pub kv: BTreeMap<String, String>,
    /// The time its own clock shows now: the times in `status` (election timer, lease) are on
    /// this clock; `next_tick` is in global time.
    pub clock: Millis,
    /// How fast its clock runs against the global one, in parts per million.
    pub drift_ppm: i32,
}

/// A client as the playground shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientView {
    /// The client's id.
    pub id: String,
    /// The node it believes leads.
    pub leader_guess: String,
    /// The operation in progress.
    pub pending: Option<crate::sim::client::PendingOp>,
    /// How many operations ended.
    pub completed: u64,
}

impl Cluster {
    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// How many nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Whether node `i` runs.
    pub fn is_up(&self, i: usize) -> bool {
        matches!(self.nodes.get(i).map(|n| &n.state), Some(NodeState::Up(_)))
    }

    /// Node `i`, while it runs.
    pub fn node(&self, i: usize) -> Option<&Host> {
        match self.nodes.get(i).map(|n| &n.state) {
            Some(NodeState::Up(node)) => Some(node),
            _ => None,
        }
    }

    /// The status of node `i`, while it runs.
    pub fn status(&self, i: usize) -> Option<Status> {
        self.node(i).map(|h| h.status())
    }

    /// The leader: the running leader of the highest term, if any.
    pub fn leader(&self) -> Option<usize> {
        (0..self.nodes.len())
            .filter_map(|i| self.status(i).map(|s| (i, s)))
            .filter(|(_, s)| s.role == crate::raft::Role::Leader)
            .max_by_key(|(i, s)| (s.term, std::cmp::Reverse(*i)))
            .map(|(i, _)| i)
    }

    /// Node `i` as the playground shows it.
    pub fn node_view(&self, i: usize) -> Option<NodeView> {
        let n = self.nodes.get(i)?;
        let log = match &n.state {
            NodeState::Up(node) => read_log(node.log()),
            NodeState::Down(stores) => read_log(stores.log.as_ref()),
            NodeState::Gone => Vec::new(),
        };
        let node = self.node(i);
        Some(NodeView {
            id: n.id.0.clone(),
            up: node.is_some(),
            incarnation: n.incarnation,
            status: node.map(|h| h.status()),
            next_tick: node.and(n.timer_at),
            log,
            kv: node
                .map(|x| x.state_machine().entries())
                .unwrap_or_default(),
            clock: n.clock.local(self.now),
            drift_ppm: n.clock.ppm(),
        })
    }

    /// Every node as the playground shows it.
    pub fn node_views(&self) -> Vec<NodeView> {
        (0..self.nodes.len())
            .filter_map(|i| self.node_view(i))
            .collect()
    }

    /// Every client as the playground shows it.
    pub fn client_views(&self) -> Vec<ClientView> {
        self.clients
            .iter()
            .map(|c| ClientView {
                id: c.id().to_string(),
                leader_guess: node_name(c.leader_guess()),
                pending: c.pending().cloned(),
                completed: c.completed(),
            })
            .collect()
    }

    /// The messages in flight, in send order.
    pub fn in_flight(&self) -> Vec<InFlightView> {
        self.net.in_flight().map(InFlight::view).collect()
    }

    /// The trace.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// The trace events recorded since the last call, which the trace then forgets (see
    /// [`Trace::take_events`]).
    pub fn take_trace_events(&mut self) -> Vec<TraceEvent> {
        self.trace.take_events()
    }

    /// The counters.
    pub fn stats(&self) -> SimStats {
        SimStats {
            sessions_expired: self.sessions.expired(),
            ..self.stats
        }
    }

    /// Every node's client session limits.
    pub fn session_limits(&self) -> crate::kvsm::SessionLimits {
        self.cfg.session_limits
    }

    /// The invariant checker (for instance, the leaders of each term so far).
    pub fn invariants(&self) -> &Invariants {
        &self.invariants
    }

    /// Why node `i`'s disk is dead, if it is: it refused to start (a synced record of its log
    /// read back corrupt) and stays down.
    pub fn disk_dead(&self, i: usize) -> Option<&str> {
        self.nodes.get(i).and_then(|n| n.dead.as_deref())
    }

    /// The violation that stopped the run, if any.
    pub fn failure(&self) -> Option<&Violation> {
        self.failure.as_ref()
    }
}

fn read_log(log: &dyn crate::raft::LogStore<crate::types::Command>) -> Vec<LogEntry> {
    let base = log.base().last_included_index;
    log.read_range(base + 1, log.last_index() + 1)
        .unwrap_or_default()
}
