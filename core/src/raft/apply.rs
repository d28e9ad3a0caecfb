//! The commit index moving forward. The node does not apply anything itself: committed entries
//! that are durable here go to the host in the next [`Ready`](super::Ready), and the host
//! applies them and resolves its proposals.

use super::Event;
use super::Index;
use super::node::{Node, RaftError};
use crate::state_machine::StateMachine;

impl<M: StateMachine> Node<M> {
    /// Raises the commit index to `index` (never lowers it). A leader's entries up to it no
    /// longer count as uncommitted.
    pub(super) fn advance_commit(&mut self, index: Index) -> Result<(), RaftError> {
        if index <= self.commit_index {
            return Ok(());
        }
        debug_assert!(
            index <= self.last_index(),
            "commit {index} past the log's end"
        );
        self.commit_index = index;
        self.pending.events.push(Event::Committed { index });
        while let Some(&(i, bytes)) = self.uncommitted.front() {
            if i > index {
                break;
            }
            self.uncommitted.pop_front();
            self.uncommitted_bytes -= bytes;
        }
        Ok(())
    }
}
