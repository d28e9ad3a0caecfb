//! Membership churn and leadership transfers: adding nodes at runtime, the configuration
//! changes and transfers a person (the playground) or the nemesis (a fault schedule) asks of
//! the leader, and what the cluster counts and traces of them.
//!
//! A person's request is tried once and answered with core's refusal, if any. The nemesis
//! wants an outcome, not a try: each of its faults becomes a pending change, resolved afresh
//! at every try (which node leads, which members there are, drawn from the churn stream) and
//! retried while core refuses for now — no leader, a change in progress, a learner not caught
//! up, no reachable quorum, a transfer pending — until `churn_patience` runs out.

use std::collections::BTreeMap;

use super::*;
use crate::raft::{ConfChange, ConfChangeError, Membership, Proposal, TransferError};

/// The most voters the nemesis grows a configuration to.
pub const MAX_VOTERS: usize = MAX_NODES;

/// The most nodes (running, removed or never added) the nemesis starts in one cluster.
pub const MAX_STARTED_NODES: usize = 16;

/// What the nemesis is after.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Goal {
    /// Node `node` (started, with no configuration) becomes a learner, then with `promote`
    /// a voter.
    AddLearner { node: usize, promote: bool },
    /// A learner (this one, or any) becomes a voter.
    Promote { node: Option<usize> },
    /// A voter other than the leader leaves.
    RemoveVoter,
    /// The leader leaves.
    RemoveLeader,
    /// A learner leaves.
    RemoveLearner,
    /// A voter is replaced by node `new` in one joint change.
    Replace { new: usize },
    /// Another voter takes over.
    Transfer,
    /// A change of one voter asked of a leader that was just elected (promote a learner, or
    /// remove a voter), at once.
    AfterElection,
}

impl Goal {
    /// As the trace names it.
    fn summary(&self) -> String {
        match self {
            Goal::AddLearner { node, promote } => {
                let to = if *promote { "voter" } else { "learner" };
                format!("adding {} as a {to}", node_name(*node))
            }
            Goal::Promote { node: Some(n) } => format!("promoting {}", node_name(*n)),
            Goal::Promote { node: None } => "promoting a learner".to_string(),
            Goal::RemoveVoter => "removing a voter".to_string(),
            Goal::RemoveLeader => "removing the leader".to_string(),
            Goal::RemoveLearner => "removing a learner".to_string(),
            Goal::Replace { new } => format!("replacing a voter by {}", node_name(*new)),
            Goal::Transfer => "a transfer".to_string(),
            Goal::AfterElection => "a change right after an election".to_string(),
        }
    }
}

#[derive(Clone, Debug)]
struct Intent {
    goal: Goal,
    /// Given up after this (global) time.
    until: Millis,
}

/// The nemesis's state.
#[derive(Debug)]
pub(super) struct Churn {
    /// Pending changes by id.
    intents: BTreeMap<u64, Intent>,
    next_id: u64,
    rng: SimRng,
    /// Transfers under way: target -> the leader that started it.
    transfers: BTreeMap<usize, usize>,
    /// The index of the latest configuration change the clients were told about.
    members_told_at: Index,
}

impl Churn {
    pub(super) fn new(seed: u64) -> Self {
        Churn {
            intents: BTreeMap::new(),
            next_id: 1,
            rng: SimRng::new(seed, Stream::Churn),
            transfers: BTreeMap::new(),
            members_told_at: 0,
        }
    }
}

/// How one try went.
enum Tried {
    /// Done (or nothing left to do).
    Done,
    /// Refused for now: try again later.
    Later,
    /// Refused for good.
    Dropped,
}

/// A configuration as the trace shows it: `n1 n2 n4 (joint with n1 n2 n3) learners n6`.
pub fn membership_summary(m: &Membership) -> String {
    let names = |s: &std::collections::BTreeSet<NodeId>| {
        s.iter().map(|id| id.as_str()).collect::<Vec<_>>().join(" ")
    };
    let mut out = names(&m.voters);
    if m.is_joint() {
        out.push_str(&format!(" (joint with {})", names(&m.outgoing)));
    }
    if !m.learners.is_empty() {
        out.push_str(&format!(" learners {}", names(&m.learners)));
    }
    out
}

/// A refusal the nemesis waits out.
fn refused_for_now(e: &ConfChangeError) -> bool {
    !matches!(
        e,
        ConfChangeError::AlreadyMember { .. }
            | ConfChangeError::LastVoter
            | ConfChangeError::Invalid(_)
    )
}

impl Cluster {
    // ----- membership, for people (the playground) -----

    /// Starts a fresh node with empty stores and no configuration of its own
    /// (`Config.voters` empty): it never campaigns and waits until a leader adds it (see
    /// [`Cluster::add_learner`]). Returns its index; it is named `n<index + 1>`. Its clock
    /// runs at `SimConfig::clock_ppm[index]` (the global rate past the end).
    pub fn add_node(&mut self) -> Result<usize, Violation> {
        let i = self.nodes.len();
        let node = SimNode::new(&self.cfg, i, self.now, true);
        self.nodes.push(node);
        self.net.add_node(self.cfg.node_link);
        let n = self.nodes.len();
        for c in &mut self.clients {
            c.set_node_count(n);
        }
        self.stats.nodes_added += 1;
        self.trace_conf(
            i,
            "joins with empty stores and no configuration".to_string(),
        );
        self.start_node(i)?;
        Ok(i)
    }

    /// Asks node `node` (the leader, or it refuses) for a configuration change. Returns the
    /// index of its configuration entry; the change takes effect when that entry is committed
    /// (see docs/membership.md). Errors: core's refusal, or the node is down or unknown.
    pub fn propose_conf_change(
        &mut self,
        node: usize,
        change: ConfChange,
    ) -> Result<Index, String> {
        self.known_node(node)?;
        match self.conf_change_at(node, change) {
            Ok(Some(Ok(p))) => Ok(p.index),
            Ok(Some(Err(e))) => Err(e.to_string()),
            Ok(None) => Err(format!("{} is down", node_name(node))),
            Err(v) => Err(v.to_string()),
        }
    }

    /// Asks the leader to add node `i` (see [`Cluster::add_node`]) as a learner.
    pub fn add_learner(&mut self, i: usize) -> Result<Index, String> {
        self.known_node(i)?;
        let change = ConfChange::add_learner(NodeId(node_name(i)), "");
        self.at_leader(change)
    }

    /// Asks the leader to make learner `i` a voter (refused while it is not caught up).
    pub fn promote(&mut self, i: usize) -> Result<Index, String> {
        self.known_node(i)?;
        self.at_leader(ConfChange::promote(NodeId(node_name(i))))
    }

    /// Asks the leader to remove member `i` (a voter, the leader itself, or a learner). A
    /// removed node keeps running; members ignore it.
    pub fn remove(&mut self, i: usize) -> Result<Index, String> {
        self.known_node(i)?;
        self.at_leader(ConfChange::remove(NodeId(node_name(i))))
    }

    /// Asks the leader to replace voter `old` by node `new` (see [`Cluster::add_node`]) in one
    /// joint change, which the leader leaves on its own once it took effect.
    pub fn replace(&mut self, old: usize, new: usize) -> Result<Index, String> {
        self.known_node(old)?;
        self.known_node(new)?;
        let change = ConfChange::replace(NodeId(node_name(old)), NodeId(node_name(new)), "");
        self.at_leader(change)
    }

    /// Asks the leader to hand its leadership to voter `to`. Returns the leader asked; the
    /// transfer ends when `to` wins its election, or is abandoned after an election timeout.
    pub fn transfer_leader(&mut self, to: usize) -> Result<usize, String> {
        self.known_node(to)?;
        let leader = self.leader().ok_or("no leader")?;
        match self.transfer_at(leader, to) {
            Ok(Some(Ok(_))) => Ok(leader),
            Ok(Some(Err(e))) => Err(e.to_string()),
            Ok(None) => Err(format!("{} is down", node_name(leader))),
            Err(v) => Err(v.to_string()),
        }
    }

    /// The configuration in force at the leader (at node 0 if none leads, then any running
    /// node's), if any node runs.
    pub fn membership(&self) -> Option<Membership> {
        self.leader()
            .into_iter()
            .chain(0..self.nodes.len())
            .find_map(|i| self.node(i))
            .map(|h| h.membership().clone())
    }

    fn at_leader(&mut self, change: ConfChange) -> Result<Index, String> {
        let leader = self.leader().ok_or("no leader")?;
        self.propose_conf_change(leader, change)
    }

    // ----- calls into the leader -----

    /// Proposes `change` at node `i`; traced. `Ok(None)` when the node is down.
    fn conf_change_at(
        &mut self,
        i: usize,
        change: ConfChange,
    ) -> Result<Option<Result<Proposal, ConfChangeError>>, Violation> {
        let now = self.local_now(i);
        let what = change_summary(&change);
        let r = self.call_node(i, |host| Ok(host.feed().propose_conf_change(now, change)))?;
        match &r {
            Some(Ok(p)) => {
                self.stats.conf_changes_proposed += 1;
                self.trace_conf(i, format!("{what}: accepted at {}", p.index));
            }
            Some(Err(e)) => self.trace_conf(i, format!("{what}: refused: {e}")),
            None => {}
        }
        self.after_node_call(i, false)?;
        Ok(r)
    }

    /// Asks leader `i` to transfer to `to`; traced. `Ok(None)` when the node is down.
    fn transfer_at(
        &mut self,
        i: usize,
        to: usize,
    ) -> Result<Option<Result<NodeId, TransferError>>, Violation> {
        let now = self.local_now(i);
        let target = NodeId(node_name(to));
        let r = self.call_node(i, |host| Ok(host.feed().transfer_leader(now, Some(target))))?;
        if let Some(Err(e)) = &r {
            self.trace_conf(i, format!("transfer to {}: refused: {e}", node_name(to)));
        }
        self.after_node_call(i, false)?;
        Ok(r)
    }

    fn trace_conf(&mut self, i: usize, what: String) {
        if self.trace.enabled() {
            let node = node_name(i);
            self.trace.record(self.now, TraceKind::Conf { node, what });
        }
    }

    // ----- the nemesis -----

    /// A membership fault fires: it becomes a pending change, tried at once.
    pub(super) fn churn_fault(&mut self, fault: &Fault) -> Result<(), Violation> {
        if self.now >= self.cfg.churn_until {
            return Ok(());
        }
        let room = self.nodes.len() < MAX_STARTED_NODES;
        let goal = match fault {
            Fault::AddNode { promote } if room => Goal::AddLearner {
                node: self.add_node()?,
                promote: *promote,
            },
            Fault::Promote => Goal::Promote { node: None },
            Fault::RemoveVoter => Goal::RemoveVoter,
            Fault::RemoveLeader => Goal::RemoveLeader,
            Fault::RemoveLearner => Goal::RemoveLearner,
            Fault::ReplaceVoter if room => Goal::Replace {
                new: self.add_node()?,
            },
            Fault::TransferLeader => Goal::Transfer,
            _ => return Ok(()),
        };
        let id = self.churn_intent(goal);
        self.churn_try(id).map(drop)
    }

    /// Node `i` won an election: a transfer to it, if one was under way, completed; with
    /// `churn_on_election`'s chance, it is asked for a change of one voter right away.
    pub(super) fn churn_elected(&mut self, i: usize) {
        if self.churn.transfers.remove(&i).is_some() {
            self.stats.transfers_completed += 1;
        }
        let p = self.cfg.churn_on_election;
        if p > 0.0 && self.now < self.cfg.churn_until && self.churn.rng.chance(p) {
            let id = self.churn_intent(Goal::AfterElection);
            // The next event at this very millisecond: the new leader's own entry cannot
            // have committed yet (messages take at least 1 ms).
            self.queue.push(self.now, Action::Churn { intent: id });
        }
    }

    fn churn_intent(&mut self, goal: Goal) -> u64 {
        let id = self.churn.next_id;
        self.churn.next_id += 1;
        let until = self
            .now
            .saturating_add(self.cfg.churn_patience)
            .min(self.cfg.churn_until);
        self.churn.intents.insert(id, Intent { goal, until });
        id
    }

    /// Tries pending change `id`, if it is still pending; returns whether anything was tried.
    pub(super) fn churn_try(&mut self, id: u64) -> Result<bool, Violation> {
        let Some(intent) = self.churn.intents.get(&id).cloned() else {
            return Ok(false);
        };
        if self.now > intent.until {
            self.churn.intents.remove(&id);
            let what = intent.goal.summary();
            self.trace_conf(
                self.leader().unwrap_or(0),
                format!("nemesis gives up on {what}"),
            );
            return Ok(true);
        }
        match self.churn_attempt(&intent.goal)? {
            Tried::Later => {
                let pause = self.churn.rng.range(20, 60);
                self.queue
                    .push(self.now + pause, Action::Churn { intent: id });
            }
            Tried::Done | Tried::Dropped => {
                self.churn.intents.remove(&id);
            }
        }
        Ok(true)
    }

    /// One try of `goal` at whichever node leads now.
    fn churn_attempt(&mut self, goal: &Goal) -> Result<Tried, Violation> {
        let Some(leader) = self.leader() else {
            return Ok(Tried::Later);
        };
        let Some(m) = self.node(leader).map(|h| h.membership().clone()) else {
            return Ok(Tried::Later);
        };
        let me = NodeId(node_name(leader));
        let voters: Vec<NodeId> = m.voters.iter().cloned().collect();
        let others: Vec<NodeId> = voters.iter().filter(|v| **v != me).cloned().collect();
        let learners: Vec<NodeId> = m.learners.iter().cloned().collect();
        let full = voters.len() >= MAX_VOTERS;
        let change = match goal {
            Goal::AddLearner { node, promote } => {
                let id = NodeId(node_name(*node));
                if m.is_member(&id) {
                    if *promote {
                        let next = self.churn_intent(Goal::Promote { node: Some(*node) });
                        self.churn_try(next)?;
                    }
                    return Ok(Tried::Done);
                }
                ConfChange::add_learner(id, "")
            }
            Goal::Promote { node: Some(node) } => {
                let id = NodeId(node_name(*node));
                if m.is_voter(&id) || full {
                    return Ok(Tried::Done);
                }
                // Not a learner yet: its addition has not taken effect here; wait for it.
                if !m.is_learner(&id) {
                    return Ok(Tried::Later);
                }
                ConfChange::promote(id)
            }
            Goal::Promote { node: None } => match self.pick(&learners) {
                Some(id) if !full => ConfChange::promote(id),
                _ => return Ok(Tried::Dropped),
            },
            Goal::RemoveVoter => match self.pick(&others) {
                Some(id) => ConfChange::remove(id),
                None => return Ok(Tried::Dropped),
            },
            Goal::RemoveLeader if voters.len() > 1 => ConfChange::remove(me),
            Goal::RemoveLeader => return Ok(Tried::Dropped),
            Goal::RemoveLearner => match self.pick(&learners) {
                Some(id) => ConfChange::remove(id),
                None => return Ok(Tried::Dropped),
            },
            Goal::Replace { new } => {
                let id = NodeId(node_name(*new));
                if m.is_member(&id) {
                    return Ok(Tried::Done);
                }
                match self.pick(&voters) {
                    Some(old) => ConfChange::replace(old, id, ""),
                    None => return Ok(Tried::Dropped),
                }
            }
            Goal::Transfer => {
                let Some(to) = self.pick(&others).and_then(|id| node_index(&id)) else {
                    return Ok(Tried::Dropped);
                };
                return Ok(match self.transfer_at(leader, to)? {
                    Some(Ok(_)) => Tried::Done,
                    Some(Err(TransferError::NotLeader { .. })) | None => Tried::Later,
                    Some(Err(_)) => Tried::Dropped,
                });
            }
            Goal::AfterElection => {
                let promote = !learners.is_empty() && !full && self.churn.rng.chance(0.5);
                match (promote, self.pick(&learners), self.pick(&others)) {
                    (true, Some(id), _) => ConfChange::promote(id),
                    (_, _, Some(id)) => ConfChange::remove(id),
                    (_, Some(id), None) if !full => ConfChange::promote(id),
                    _ => return Ok(Tried::Dropped),
                }
            }
        };
        Ok(match self.conf_change_at(leader, change)? {
            Some(Ok(_)) => match goal {
                Goal::AddLearner { .. } => Tried::Later, // promote it once it took effect
                _ => Tried::Done,
            },
            Some(Err(e)) if refused_for_now(&e) => Tried::Later,
            Some(Err(_)) => Tried::Dropped,
            None => Tried::Later,
        })
    }

    /// A change committed at `index` took effect at node `i`: if it is the latest one any node
    /// applied, the clients learn which nodes are not members (removed, or added and not yet
    /// taken in), as a real client's endpoint list would.
    fn tell_clients_the_members(&mut self, i: usize, index: Index) {
        if index <= self.churn.members_told_at {
            return;
        }
        let Some(members) = self.node(i).map(|h| h.membership().members()) else {
            return;
        };
        self.churn.members_told_at = index;
        let outside: std::collections::BTreeSet<usize> = (0..self.nodes.len())
            .filter(|n| !members.contains(&NodeId(node_name(*n))))
            .collect();
        for c in &mut self.clients {
            c.set_removed(outside.clone());
        }
    }

    fn pick(&mut self, ids: &[NodeId]) -> Option<NodeId> {
        (!ids.is_empty()).then(|| ids[self.churn.rng.index(ids.len())].clone())
    }

    /// Counts and traces node `i`'s membership and transfer events.
    pub(super) fn churn_event(&mut self, i: usize, ev: &Event) {
        match ev {
            Event::MembershipChanged { index, membership } if self.trace.enabled() => {
                let (node, index) = (node_name(i), *index);
                let config = membership_summary(membership);
                self.trace.record(
                    self.now,
                    TraceKind::Membership {
                        node,
                        index,
                        config,
                    },
                );
            }
            Event::ConfChangeApplied { index, .. } => {
                self.stats.conf_changes_applied += 1;
                let joint = self.node(i).is_some_and(|h| h.membership().is_joint());
                self.stats.joint_entered += u64::from(joint);
                self.trace_conf(i, format!("change at {index} took effect"));
                self.tell_clients_the_members(i, *index);
            }
            Event::TransferStarted { to } => {
                self.stats.transfers_started += 1;
                if let Some(t) = node_index(to) {
                    self.churn.transfers.insert(t, i);
                }
                self.trace_conf(i, format!("transfer to {to}: started"));
            }
            Event::TransferAbandoned { to } => {
                if let Some(t) = node_index(to) {
                    self.churn.transfers.remove(&t);
                }
                self.trace_conf(i, format!("transfer to {to}: abandoned"));
            }
            _ => {}
        }
    }
}

/// A change as the trace shows it: `add_learner n6`, `replace n2 with n7`.
fn change_summary(change: &ConfChange) -> String {
    use crate::raft::ConfStep;
    let steps: Vec<String> = change
        .steps
        .iter()
        .map(|s| match s {
            ConfStep::AddLearner { id, .. } => format!("add_learner {id}"),
            ConfStep::AddVoter { id, .. } => format!("add_voter {id}"),
            ConfStep::Promote { id } => format!("promote {id}"),
            ConfStep::Remove { id } => format!("remove {id}"),
        })
        .collect();
    steps.join(" + ")
}
