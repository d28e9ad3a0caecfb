//! The follower's side of AppendEntries: the consistency check, conflict hints for fast
//! backtracking, storing entries (truncating a conflicting suffix), and learning the commit
//! index.
//!
//! A message is checked for shape before anything is read from it; one that could not have
//! come from a correct leader is dropped without an answer.

use super::node::Node;
use super::{
    AppendEntries, AppendEntriesResponse, Index, LogEntry, Message, Millis, NodeId, RaftError,
    Role, Term,
};
use crate::state_machine::StateMachine;

impl<M: StateMachine> Node<M> {
    /// AppendEntries from the leader of our term (`check_term` has seen to the term).
    pub(super) fn handle_append_entries(
        &mut self,
        now: Millis,
        from: &NodeId,
        m: AppendEntries<M::Command>,
    ) -> Result<(), RaftError> {
        if m.leader_id != *from || !self.accept_leader(now, from)? {
            return Ok(());
        }
        let (read_seq, sent_at) = (m.read_seq, m.sent_at);
        if let Some(mut resp) = self.append_from_leader(m)? {
            resp.read_seq = read_seq;
            resp.sent_at = sent_at;
            self.send(from, Message::AppendEntriesResponse(resp));
        }
        Ok(())
    }

    /// A message from the leader of our term arrived: follow it, and restart the election
    /// timer. Returns false if we lead this term ourselves (a forged message: two leaders in
    /// one term cannot happen).
    pub(super) fn accept_leader(&mut self, now: Millis, from: &NodeId) -> Result<bool, RaftError> {
        match self.role {
            Role::Leader => return Ok(false),
            Role::PreCandidate | Role::Candidate => {
                self.become_follower(now, self.term, Some(from.clone()))?
            }
            Role::Follower => self.set_leader(Some(from.clone()), now),
        }
        self.reset_election_timer(now);
        Ok(true)
    }

    /// The consistency check and the append. `None`: the message is malformed, drop it.
    fn append_from_leader(
        &mut self,
        m: AppendEntries<M::Command>,
    ) -> Result<Option<AppendEntriesResponse>, RaftError> {
        if !is_well_formed(&m) {
            return Ok(None);
        }
        let AppendEntries {
            mut prev_log_index,
            mut prev_log_term,
            mut entries,
            leader_commit,
            ..
        } = m;
        // Entries up to our commit index are committed, so the leader has them as we do: only
        // what follows is news. (This also keeps us from reading below our snapshot.)
        if prev_log_index < self.commit_index {
            let skip = self.commit_index - prev_log_index;
            if skip >= entries.len() as Index {
                return Ok(Some(self.accepted(prev_log_index + entries.len() as Index)));
            }
            entries.drain(..skip as usize);
            prev_log_index = self.commit_index;
            prev_log_term = self.term_at(prev_log_index)?;
        }
        match self.term_if_present(prev_log_index)? {
            None => {
                let next = self.last_index() + 1;
                return Ok(Some(self.rejected(next, None)));
            }
            Some(t) if t != prev_log_term => {
                let first = self.first_index_of_term(t, prev_log_index)?;
                return Ok(Some(self.rejected(first, Some(t))));
            }
            Some(_) => {}
        }
        let last_new = prev_log_index + entries.len() as Index;
        if !self.store_entries(entries)? {
            return Ok(None);
        }
        // Only what this message proved to match may be committed: entries of ours past it
        // may still be stale.
        self.advance_commit(leader_commit.min(last_new))?;
        Ok(Some(self.accepted(last_new)))
    }

    /// Stores the entries that are new: those we have already (same index and term) are
    /// skipped, and the first conflicting one truncates our log from its index. Returns false,
    /// storing nothing, if that would rewrite a committed entry (impossible from a correct
    /// leader).
    fn store_entries(&mut self, mut entries: Vec<LogEntry<M::Command>>) -> Result<bool, RaftError> {
        let last = self.last_index();
        let mut first_new = entries.len();
        for (i, e) in entries.iter().enumerate() {
            if e.index > last {
                first_new = i;
                break;
            }
            if self.term_at(e.index)? != e.term {
                if e.index <= self.commit_index {
                    return Ok(false);
                }
                self.truncate_log_from(e.index)?;
                first_new = i;
                break;
            }
        }
        self.append_from_leader_log(entries.split_off(first_new))?;
        Ok(true)
    }

    /// The first index of term `t` in our log at or before `upto` (whose term is `t`): the
    /// leader can skip the whole term in one round trip.
    fn first_index_of_term(&self, t: Term, upto: Index) -> Result<Index, RaftError> {
        let (mut lo, mut hi) = (self.snapshot.last_included_index + 1, upto);
        if lo > hi {
            return Ok(upto.max(1));
        }
        // Invariant: term_at(hi) >= t; the answer lies in lo..=hi.
        while lo < hi {
            debug_assert!(self.term_at(hi)? >= t);
            let mid = lo + (hi - lo) / 2;
            if self.term_at(mid)? >= t {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Ok(lo)
    }

    fn accepted(&self, match_index: Index) -> AppendEntriesResponse {
        AppendEntriesResponse {
            term: self.term,
            success: true,
            match_index,
            conflict_index: None,
            conflict_term: None,
            read_seq: 0,
            sent_at: 0,
        }
    }

    fn rejected(
        &self,
        conflict_index: Index,
        conflict_term: Option<Term>,
    ) -> AppendEntriesResponse {
        AppendEntriesResponse {
            term: self.term,
            success: false,
            match_index: 0,
            conflict_index: Some(conflict_index),
            conflict_term,
            read_seq: 0,
            sent_at: 0,
        }
    }
}

/// Whether an AppendEntries could have come from a correct leader: entries contiguous from
/// prev_log_index + 1 without overflow, terms never decreasing and never above the message's.
fn is_well_formed<C>(m: &AppendEntries<C>) -> bool {
    if m.prev_log_term > m.term {
        return false;
    }
    let mut index = m.prev_log_index;
    let mut term = m.prev_log_term;
    for e in &m.entries {
        let Some(next) = index.checked_add(1) else {
            return false;
        };
        if e.index != next || e.term < term || e.term > m.term {
            return false;
        }
        index = next;
        term = e.term;
    }
    true
}
