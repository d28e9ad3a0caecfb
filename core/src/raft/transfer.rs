//! Leadership transfer (Raft thesis §3.10; etcd-io/raft's MsgTransferLeader and MsgTimeoutNow):
//! the leader stops taking proposals, brings the target up to date, and sends it TimeoutNow;
//! the target campaigns at once, without pre-vote, and its RequestVote carries `transfer` so
//! that voters who heard the leader recently still answer it. A transfer the target does not
//! complete within an election timeout is abandoned and the leader takes proposals again.
//!
//! Once TimeoutNow has left, this leader's read lease is off for the rest of its term (see
//! [`lease`](super::lease)): the target may win at any moment, with votes that skip the very
//! stickiness the lease relies on.

use super::node::{Node, TransferError};
use super::{Event, Message, Millis, NodeId, RaftError, Role, TimeoutNow};
use crate::state_machine::StateMachine;

/// A transfer under way, kept in the leader's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Transfer {
    /// The voter taking over. Invariant: not the leader itself.
    pub(super) to: NodeId,
    /// When it is abandoned: one `election_timeout_max` after it started.
    pub(super) deadline: Millis,
}

impl<M: StateMachine> Node<M> {
    /// Hands leadership to voter `to` (or, with `None`, to the voter other than this leader
    /// with the highest match index) and returns the chosen target. Proposals are refused with
    /// [`ProposeError::Transferring`](super::ProposeError::Transferring) until the transfer
    /// ends: the target wins (this node hears of its term and steps down), or an election
    /// timeout passes and the transfer is abandoned ([`Event::TransferAbandoned`]). Asking
    /// again for the same target changes nothing; asking for another one abandons the first
    /// transfer and starts a new one. Emits [`Event::TransferStarted`].
    pub fn transfer_leader(
        &mut self,
        now: Millis,
        to: Option<NodeId>,
    ) -> Result<NodeId, TransferError> {
        self.now = self.now.max(now);
        if self.role != Role::Leader {
            return Err(TransferError::NotLeader {
                leader: self.leader_id.clone(),
            });
        }
        let to = match to {
            Some(id) if id == self.cfg.id || !self.tracker.voters().contains(&id) => {
                return Err(TransferError::NotVoter { id });
            }
            Some(id) => id,
            None => self.most_caught_up_voter()?,
        };
        let deadline = now.saturating_add(self.cfg.election_timeout_max);
        let Some(ls) = self.leader.as_mut() else {
            return Err(TransferError::NotLeader { leader: None });
        };
        match ls.transfer.take() {
            Some(t) if t.to == to => {
                ls.transfer = Some(t);
                return Ok(to);
            }
            Some(t) => self
                .pending
                .events
                .push(Event::TransferAbandoned { to: t.to }),
            None => {}
        }
        ls.transfer = Some(Transfer {
            to: to.clone(),
            deadline,
        });
        self.pending
            .events
            .push(Event::TransferStarted { to: to.clone() });
        self.maybe_send_timeout_now(&to);
        // Otherwise what the target lacks goes out with the next Ready, and the answer that
        // shows it caught up sends TimeoutNow (`on_append_success`).
        self.flush = true;
        self.check_invariants();
        Ok(to)
    }

    /// The voter this leader is handing its leadership to, if a transfer is pending.
    pub fn transfer_target(&self) -> Option<&NodeId> {
        self.leader.as_ref()?.transfer.as_ref().map(|t| &t.to)
    }

    /// The voter other than this leader whose log is longest (the first in id order among
    /// equals).
    pub(super) fn most_caught_up_voter(&self) -> Result<NodeId, TransferError> {
        let mut best: Option<(NodeId, super::Index)> = None;
        for id in self.tracker.voters().ids() {
            if id == self.cfg.id {
                continue;
            }
            let m = self.tracker.progress(&id).map_or(0, |p| p.match_index);
            if best.as_ref().is_none_or(|(_, bm)| m > *bm) {
                best = Some((id, m));
            }
        }
        best.map(|(id, _)| id).ok_or(TransferError::NoCandidate)
    }

    /// Sends TimeoutNow to `peer` if a transfer to it is pending and its log matches ours to
    /// the end. From then on this leader serves no lease read in its term.
    pub(super) fn maybe_send_timeout_now(&mut self, peer: &NodeId) {
        let last = self.last_index();
        let caught_up = self
            .tracker
            .progress(peer)
            .is_some_and(|p| p.match_index == last);
        let Some(ls) = self.leader.as_mut() else {
            return;
        };
        if !caught_up || ls.transfer.as_ref().is_none_or(|t| t.to != *peer) {
            return;
        }
        ls.timeout_now_sent = true;
        self.send_timeout_now(peer);
    }

    /// Tells `peer` to campaign now.
    pub(super) fn send_timeout_now(&mut self, peer: &NodeId) {
        let msg = Message::TimeoutNow(TimeoutNow {
            term: self.term,
            leader_id: self.cfg.id.clone(),
        });
        self.send(peer, msg);
    }

    /// The leader's timer for a pending transfer: abandoned at its deadline, or as soon as
    /// the target no longer votes (a configuration change took it out).
    pub(super) fn tick_transfer(&mut self, now: Millis) {
        let Some(ls) = self.leader.as_mut() else {
            return;
        };
        let Some(t) = ls.transfer.as_ref() else {
            return;
        };
        if now >= t.deadline || !self.tracker.voters().contains(&t.to) {
            let to = t.to.clone();
            ls.transfer = None;
            self.pending.events.push(Event::TransferAbandoned { to });
        }
    }

    /// When a pending transfer is abandoned, if one is.
    pub(super) fn transfer_deadline(&self) -> Option<Millis> {
        self.leader.as_ref()?.transfer.as_ref().map(|t| t.deadline)
    }
}

impl<M: StateMachine> Node<M> {
    /// TimeoutNow from the leader of our term: a voter campaigns at once, without pre-vote,
    /// and asks for votes that skip leader stickiness. Anything else (a learner, a node that
    /// does not follow the sender in this term, a forged leader id) ignores it.
    pub(super) fn handle_timeout_now(
        &mut self,
        now: Millis,
        from: &NodeId,
        m: TimeoutNow,
    ) -> Result<(), RaftError> {
        let from_our_leader = m.leader_id == *from
            && m.term == self.term
            && self.role == Role::Follower
            && self.leader_id.as_ref() == Some(from);
        // Learners and nodes whose configuration may be out of date never campaign.
        if !from_our_leader || !self.may_campaign()? {
            return Ok(());
        }
        self.become_candidate(now, true)
    }
}
