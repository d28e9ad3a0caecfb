//! The node's side of membership changes: proposing a change as leader, a configuration
//! taking effect when its entry is handed out to apply, leaving a joint configuration, and who
//! may campaign. The rules and their reasons are in docs/membership.md.
//!
//! The rules, in short:
//! - a configuration takes effect on a node when its entry is committed and handed out to
//!   apply (never on append: a truncated suffix never has to be rolled back);
//! - a leader proposes a change only once an entry of its term committed and every
//!   configuration entry in its log took effect (so at most one change is under way, and each
//!   is computed from the configuration in force);
//! - one voter at a time is a simple change; more goes through a joint configuration, which
//!   the leader leaves on its own as soon as the joint one took effect;
//! - a node does not campaign while it is not a voter, or while a committed configuration
//!   entry has not taken effect here yet.

use super::membership::{ConfChange, ConfChangeError, ConfStep, Membership};
use super::node::{Node, Proposal};
use super::tracker::{Inflights, Progress};
use super::{Event, Index, LogEntry, Millis, NodeId, Payload, RaftError, Role};
use crate::state_machine::StateMachine;

impl<M: StateMachine> Node<M> {
    /// The configuration in force here.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Leader only: the index of the configuration entry still waiting to take effect, if
    /// any (no other change is accepted meanwhile).
    pub fn pending_conf_index(&self) -> Option<Index> {
        (self.leader.is_some() && self.pending_conf_index > self.applying)
            .then_some(self.pending_conf_index)
    }

    /// Proposes a configuration change (leader only). Refused, with nothing appended, while
    /// another change is under way, before an entry of this leader's term committed, while a
    /// transfer is pending, or when the change is not valid (see [`ConfChangeError`]). The
    /// outcome comes as [`Event::ConfChangeApplied`] (through the [`Host`](super::Host)) once
    /// the new configuration took effect here; a joint configuration is left without being
    /// asked.
    pub fn propose_conf_change(
        &mut self,
        now: Millis,
        change: ConfChange,
    ) -> Result<Proposal, ConfChangeError> {
        self.now = self.now.max(now);
        if self.role != Role::Leader {
            return Err(ConfChangeError::NotLeader {
                leader: self.leader_id.clone(),
            });
        }
        if self.transfer_target().is_some() {
            return Err(ConfChangeError::Transferring);
        }
        if !self.may_change_config()? {
            return Err(ConfChangeError::InProgress {
                index: self.pending_conf_index.max(self.commit_index + 1),
            });
        }
        let next = self.next_membership(now, &change)?;
        let index = self.append_config(next)?;
        self.check_invariants();
        Ok(Proposal {
            index,
            term: self.term,
        })
    }

    /// Whether this leader may append a configuration entry now: an entry of its term is
    /// committed (Ongaro's fix for single-server changes: until then a change from an earlier
    /// term may still be in its log without having taken effect) and every configuration entry
    /// in its log took effect.
    fn may_change_config(&self) -> Result<bool, RaftError> {
        let term_committed = self.term_if_present(self.commit_index)? == Some(self.term);
        #[cfg(feature = "protocol-breaks")]
        if self.cfg.breaks.conf_change_before_term_commit {
            return Ok(self.pending_conf_index <= self.applying);
        }
        Ok(term_committed && self.pending_conf_index <= self.applying)
    }

    /// The configuration `change` leads to from the one in force, or why it is refused.
    fn next_membership(
        &self,
        now: Millis,
        change: &ConfChange,
    ) -> Result<Membership, ConfChangeError> {
        let cur = &self.membership;
        if cur.is_joint() {
            return Err(ConfChangeError::InProgress {
                index: self.pending_conf_index,
            });
        }
        if change.steps.is_empty() {
            return Err(ConfChangeError::Invalid("a change needs a step".into()));
        }
        let mut next = cur.clone();
        let mut touched = std::collections::BTreeSet::new();
        for step in &change.steps {
            let id = step_id(step);
            if !touched.insert(id.clone()) {
                return Err(ConfChangeError::Invalid(format!(
                    "{id} appears in more than one step"
                )));
            }
            match step {
                ConfStep::AddLearner { id, addr } | ConfStep::AddVoter { id, addr } => {
                    if next.is_member(id) {
                        return Err(ConfChangeError::AlreadyMember { id: id.clone() });
                    }
                    // Members drop a removed node's messages, and one that missed its return
                    // would drop them forever (even as its leader's): ids are never reused,
                    // as in etcd (seed 17570 of the 100,000-seed sweep).
                    if next.removed.contains(id) {
                        return Err(ConfChangeError::Invalid(format!(
                            "{id} was removed from the cluster and a removed id is never \
                             reused: add the node under a new id"
                        )));
                    }
                    if matches!(step, ConfStep::AddLearner { .. }) {
                        next.learners.insert(id.clone());
                    } else {
                        next.voters.insert(id.clone());
                    }
                    next.addrs.insert(id.clone(), addr.clone());
                }
                ConfStep::Promote { id } => {
                    if !next.learners.remove(id) {
                        return Err(ConfChangeError::UnknownNode { id: id.clone() });
                    }
                    self.check_caught_up(id)?;
                    next.voters.insert(id.clone());
                }
                ConfStep::Remove { id } => {
                    if !next.is_member(id) {
                        return Err(ConfChangeError::UnknownNode { id: id.clone() });
                    }
                    next.voters.remove(id);
                    next.learners.remove(id);
                }
            }
        }
        if next.voters.is_empty() {
            return Err(ConfChangeError::LastVoter);
        }
        let changed = cur.voters.symmetric_difference(&next.voters).count();
        if changed > 1 {
            // A joint configuration: the old voters decide alongside the new ones until the
            // leader leaves it. Removed members keep their addresses until then.
            next.outgoing = cur.voters.clone();
        } else {
            next.addrs
                .retain(|id, _| next.voters.contains(id) || next.learners.contains(id));
        }
        let gone: Vec<NodeId> = cur.members().difference(&next.members()).cloned().collect();
        next.removed.extend(gone);
        self.check_reachable(now, &next)?;
        Ok(next)
    }

    /// A learner is promoted only once it is within `max_promote_lag` entries of our log.
    fn check_caught_up(&self, id: &NodeId) -> Result<(), ConfChangeError> {
        let match_index = self.tracker.progress(id).map_or(0, |p| p.match_index);
        let last_index = self.last_index();
        if match_index.saturating_add(self.cfg.max_promote_lag) < last_index {
            return Err(ConfChangeError::NotCaughtUp {
                id: id.clone(),
                match_index,
                last_index,
            });
        }
        Ok(())
    }

    /// Refuses a configuration whose voters (each half of a joint one) do not include a
    /// majority that answered this leader within an election timeout: it could commit
    /// nothing, its own leaving entry included.
    fn check_reachable(&self, now: Millis, next: &Membership) -> Result<(), ConfChangeError> {
        let window = self.cfg.election_timeout_min;
        let active = |id: &NodeId| {
            *id == self.cfg.id
                || self
                    .tracker
                    .progress(id)
                    .is_some_and(|p| p.last_ack.saturating_add(window) >= now)
        };
        for half in [&next.voters, &next.outgoing] {
            if half.is_empty() {
                continue;
            }
            let up = half.iter().filter(|id| active(id)).count();
            if up <= half.len() / 2 {
                return Err(ConfChangeError::NoQuorum);
            }
        }
        Ok(())
    }

    /// Appends a configuration entry as leader and remembers it as the pending change.
    fn append_config(&mut self, next: Membership) -> Result<Index, RaftError> {
        let index = self.append_local(Payload::Config(next), 0)?;
        self.pending_conf_index = index;
        Ok(index)
    }

    /// Entries are being handed out to apply: the configurations among them take effect, in
    /// order. The term, vote and commit index are written with the same Ready, so that after a
    /// restart the node knows these entries are committed before it may campaign.
    pub(super) fn take_effect(
        &mut self,
        entries: &[LogEntry<M::Command>],
    ) -> Result<(), RaftError> {
        for e in entries {
            if let Payload::Config(m) = &e.payload {
                self.switch_to(e.index, m.clone())?;
                self.pending.hard_state = true;
            }
        }
        Ok(())
    }

    /// Makes `m` the configuration in force, from the entry (or snapshot) at `index`.
    pub(super) fn switch_to(&mut self, index: Index, m: Membership) -> Result<(), RaftError> {
        let snap = self.snapshot.last_included_index;
        self.confs.retain(|(i, _)| *i < index);
        self.confs.push((index, m.clone()));
        self.trim_confs(snap);
        let window = Inflights::new(self.cfg.max_inflight_msgs, self.cfg.max_inflight_bytes);
        let (next, now) = (self.last_index() + 1, self.now);
        self.tracker
            .set_config(m.joint_config(), m.learners.clone(), || {
                Progress::new(next, now, window.clone())
            });
        self.membership = m.clone();
        // New members hear from the leader with the next Ready.
        self.flush |= self.leader.is_some();
        self.pending.events.push(Event::MembershipChanged {
            index,
            membership: m,
        });
        if self.leader.is_some() && !self.membership.is_voter(&self.cfg.id) {
            self.step_down_removed()?;
        }
        Ok(())
    }

    /// Forgets configurations older than the last one at or below `snapshot`.
    pub(super) fn trim_confs(&mut self, snapshot: Index) {
        let keep_from = self
            .confs
            .iter()
            .rposition(|(i, _)| *i <= snapshot)
            .unwrap_or(0);
        self.confs.drain(..keep_from);
    }

    /// The configuration in force at `index` (for a snapshot taken there).
    pub(super) fn membership_at(&self, index: Index) -> Membership {
        self.confs
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .or(self.confs.first())
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    /// A leader whose joint configuration took effect appends the configuration that leaves
    /// it (the incoming voters alone), as soon as it may change the configuration at all.
    pub(super) fn maybe_leave_joint(&mut self) -> Result<(), RaftError> {
        if self.leader.is_none() || !self.membership.is_joint() {
            return Ok(());
        }
        if !self.may_change_config().unwrap_or(false) {
            return Ok(());
        }
        let mut next = self.membership.clone();
        next.outgoing.clear();
        let gone: Vec<NodeId> = self
            .membership
            .members()
            .difference(&next.members())
            .cloned()
            .collect();
        next.removed.extend(gone);
        next.addrs
            .retain(|id, _| next.voters.contains(id) || next.learners.contains(id));
        self.append_config(next)?;
        Ok(())
    }

    /// This leader is no longer a voter (its removal took effect): it hands over to the most
    /// caught-up voter right away, rather than leave the cluster an election timeout without
    /// a leader, and steps down.
    fn step_down_removed(&mut self) -> Result<(), RaftError> {
        if let Ok(to) = self.most_caught_up_voter() {
            self.send_timeout_now(&to);
        }
        let (now, term) = (self.now, self.term);
        self.become_follower(now, term, None)
    }

    /// Whether this node may start an election: it is a voter in the configuration in force,
    /// and no committed configuration entry waits to take effect here (its configuration
    /// could be out of date).
    pub(super) fn may_campaign(&self) -> Result<bool, RaftError> {
        if !self.membership.is_voter(&self.cfg.id) {
            return Ok(false);
        }
        if self.commit_index > self.applying {
            let unapplied = self.log.slice(self.applying + 1, self.commit_index + 1)?;
            if unapplied.iter().any(|e| e.payload.config().is_some()) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The node a step is about.
fn step_id(step: &ConfStep) -> &NodeId {
    match step {
        ConfStep::AddLearner { id, .. }
        | ConfStep::AddVoter { id, .. }
        | ConfStep::Promote { id }
        | ConfStep::Remove { id } => id,
    }
}
