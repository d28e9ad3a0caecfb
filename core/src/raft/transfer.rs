//! Leadership transfer (Raft thesis §3.10): the leader stops taking proposals, brings the
//! target up to date, and sends it TimeoutNow; the target campaigns at once, without pre-vote.

use super::node::{Node, TransferError};
use super::{Millis, NodeId, RaftError, Role, TimeoutNow};
use crate::state_machine::StateMachine;

impl<M: StateMachine> Node<M> {
    /// Hands leadership to voter `to` (or, with `None`, to the most caught-up voter) and
    /// returns the chosen target. Proposals are refused until the transfer ends: the target
    /// wins (this node hears of its term and steps down), or an election timeout passes and
    /// the transfer is abandoned.
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
        let _ = to;
        Err(TransferError::NoCandidate)
    }

    /// The voter this leader is handing its leadership to, if a transfer is pending.
    pub fn transfer_target(&self) -> Option<&NodeId> {
        None
    }
}

impl<M: StateMachine> Node<M> {
    /// TimeoutNow from the leader of our term.
    pub(super) fn handle_timeout_now(
        &mut self,
        now: Millis,
        from: &NodeId,
        m: TimeoutNow,
    ) -> Result<(), RaftError> {
        let _ = (now, from, m);
        Ok(())
    }
}
