//! Applying committed entries to the state machine, in order, and resolving the proposals this
//! node accepted as leader (applied, lost, or unknown) exactly once each.

use super::node::Node;
use super::{Event, Index, LogEntry, RaftError};
use crate::state_machine::StateMachine;
use crate::types::ApplyResult;

/// How many entries are read from the log at a time while applying.
const APPLY_BATCH: Index = 256;

impl<M: StateMachine> Node<M> {
    /// Raises the commit index to `index` (never lowers it) and applies what became committed.
    pub(super) fn advance_commit(&mut self, index: Index) -> Result<(), RaftError> {
        if index <= self.commit_index {
            return Ok(());
        }
        self.commit_index = index;
        self.events.push(Event::Committed { index });
        self.apply_committed()?;
        self.maybe_snapshot()
    }

    /// Applies every committed entry not applied yet, in index order.
    fn apply_committed(&mut self) -> Result<(), RaftError> {
        while self.last_applied < self.commit_index {
            let lo = self.last_applied + 1;
            let hi = self.commit_index.min(self.last_applied + APPLY_BATCH);
            for entry in self.stores.log.read_range(lo, hi + 1)? {
                self.apply_entry(entry);
            }
        }
        Ok(())
    }

    /// Applies one entry (a no-op changes nothing) and settles the proposal at its index.
    fn apply_entry(&mut self, entry: LogEntry) {
        let result = entry.cmd.as_ref().map(|cmd| self.sm.apply(cmd));
        self.last_applied = entry.index;
        self.events.push(Event::Applied {
            index: entry.index,
            term: entry.term,
        });
        self.resolve_proposal(entry.index, entry.term, result);
    }

    /// The entry at `index`, of `term`, was applied: the proposal made there, if any, took
    /// effect only if it is that very entry (same index and term).
    fn resolve_proposal(&mut self, index: Index, term: super::Term, result: Option<ApplyResult>) {
        let Some(proposed_term) = self.proposals.remove(&index) else {
            return;
        };
        let event = match result {
            Some(result) if proposed_term == term => Event::ProposalApplied {
                index,
                term,
                result,
            },
            _ => Event::ProposalLost {
                index,
                term: proposed_term,
            },
        };
        self.events.push(event);
    }

    /// Deletes the log from `index` on (a suffix that conflicts with the leader's log). The
    /// proposals made there can never be applied at their index.
    pub(super) fn truncate_log_from(&mut self, index: Index) -> Result<(), RaftError> {
        self.stores.log.delete_from(index)?;
        for (index, term) in self.proposals.split_off(&index) {
            self.events.push(Event::ProposalLost { index, term });
        }
        Ok(())
    }

    /// A snapshot covering `index` replaced the state machine: the proposals at or below it
    /// were either applied inside the snapshot or overwritten, and this node cannot tell which.
    pub(super) fn forget_proposals_through(&mut self, index: Index) {
        let later = self.proposals.split_off(&(index + 1));
        for (index, term) in std::mem::replace(&mut self.proposals, later) {
            self.events.push(Event::ProposalUnknown { index, term });
        }
    }
}
