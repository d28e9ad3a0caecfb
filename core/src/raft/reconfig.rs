//! The node's side of membership changes: proposing a change as leader, and a configuration
//! taking effect when its entry is handed out to apply. The rules and their reasons are in
//! docs/membership.md.

use super::membership::{ConfChange, ConfChangeError, Membership};
use super::node::{Node, Proposal};
use super::{Millis, Role};
use crate::state_machine::StateMachine;

impl<M: StateMachine> Node<M> {
    /// The configuration in force here.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Proposes a configuration change (leader only). Refused, with nothing appended, while
    /// another change is under way, before an entry of this leader's term committed, while a
    /// transfer is pending, or when the change is not valid (see [`ConfChangeError`]). The
    /// outcome comes as [`Event::ConfChangeApplied`](super::Event::ConfChangeApplied) (through
    /// the [`Host`](super::Host)) once the new configuration took effect here.
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
        let _ = change;
        Err(ConfChangeError::Invalid("not implemented yet".into()))
    }
}
