//! ReadIndex: linearizable reads without writing to the log.
//!
//! A read is served by the leader once (1) an entry of its own term is committed, so its commit
//! index covers every write acknowledged before the read arrived; (2) it records that commit
//! index as the read index; and (3) a majority acknowledged a heartbeat sent after the read
//! arrived, proving nobody had deposed it then. Every AppendEntries carries the round number
//! (`read_seq`) current when it was sent and every answer echoes it, so one round confirms all
//! the reads that arrived before it (batching). The node then emits
//! [`Event::ReadReady`]; the host answers once `last_applied() >= index`.

use serde::{Deserialize, Serialize};

use super::node::{Node, ProposeError};
use super::{Event, Index, Millis, Role};
use crate::state_machine::StateMachine;

/// Names one read request, so the host can match [`Event::ReadReady`] / [`Event::ReadFailed`]
/// to it. Unique for the lifetime of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReadId(pub u64);

/// A read waiting for its confirmation round (and for a commit in the leader's term).
#[derive(Clone, Copy, Debug)]
struct PendingRead {
    id: ReadId,
    /// The round whose majority acknowledgement confirms it.
    seq: u64,
    /// The read index, once an entry of the leader's term is committed.
    index: Option<Index>,
    /// When it fails if still unconfirmed (a leader cut off from its majority).
    deadline: Millis,
}

/// A leader's read bookkeeping.
#[derive(Clone, Debug, Default)]
pub(super) struct ReadState {
    /// The latest round. Invariant: >= the seq of every pending read.
    seq: u64,
    /// The latest round has reads but was not sent yet: it goes out when the host takes the
    /// next Ready, so every read of a turn shares one round.
    pub(super) round_pending: bool,
    /// Reads in arrival order; their `seq` never decreases along the vector.
    pending: Vec<PendingRead>,
}

impl ReadState {
    /// Asserts the invariants on the fields.
    pub(super) fn check(&self) {
        debug_assert!(
            self.pending.windows(2).all(|w| w[0].seq <= w[1].seq)
                && self.pending.iter().all(|r| r.seq <= self.seq),
            "read rounds out of order: {self:?}"
        );
    }

    /// The earliest time a pending read times out.
    pub(super) fn next_deadline(&self) -> Option<Millis> {
        self.pending.iter().map(|r| r.deadline).min()
    }
}

impl<M: StateMachine> Node<M> {
    /// Asks for a linearizable read. Only a leader accepts; the answer comes as
    /// [`Event::ReadReady`] (then read the state machine once `last_applied() >= index`) or
    /// [`Event::ReadFailed`] (leadership lost or not confirmed in time: retry elsewhere).
    pub fn read_index(&mut self, now: Millis) -> Result<ReadId, ProposeError> {
        if self.role != Role::Leader {
            return Err(self.not_leader());
        }
        let id = ReadId(self.next_read_id);
        self.next_read_id += 1;
        let index = self
            .committed_in_current_term()?
            .then_some(self.commit_index);
        let deadline = now.saturating_add(self.cfg.election_timeout_max);
        if let Some(ls) = self.leader.as_mut() {
            if !ls.reads.round_pending {
                ls.reads.seq += 1;
                ls.reads.round_pending = true;
            }
            let seq = ls.reads.seq;
            ls.reads.pending.push(PendingRead {
                id,
                seq,
                index,
                deadline,
            });
            let me = self.cfg.id.clone();
            if let Some(pr) = self.tracker.progress_mut(&me) {
                pr.read_ack = seq;
            }
        }
        // The confirmation round (a heartbeat carrying the new read_seq) leaves with the next
        // Ready; a leader alone confirms at once.
        self.confirm_reads();
        Ok(id)
    }

    /// The read round AppendEntries carry (0 when not leading).
    pub(super) fn current_read_seq(&self) -> u64 {
        self.leader.as_ref().map_or(0, |ls| ls.reads.seq)
    }

    /// The commit index moved on the leader: once an entry of its term is committed, reads
    /// waiting for that learn their read index.
    pub(super) fn on_commit_advanced_as_leader(&mut self) {
        if !self.committed_in_current_term().unwrap_or(false) {
            return;
        }
        let commit = self.commit_index;
        if let Some(ls) = self.leader.as_mut() {
            for r in ls.reads.pending.iter_mut().filter(|r| r.index.is_none()) {
                r.index = Some(commit);
            }
        }
        self.confirm_reads();
    }

    /// Emits ReadReady for every read whose round a majority acknowledged and whose read index
    /// is known, in arrival order.
    pub(super) fn confirm_reads(&mut self) {
        // The highest round acknowledged by a quorum (the leader acknowledges every round).
        let confirmed = self.tracker.read_confirmed();
        let Some(ls) = self.leader.as_mut() else {
            return;
        };
        let ready = ls
            .reads
            .pending
            .iter()
            .take_while(|r| r.seq <= confirmed && r.index.is_some())
            .count();
        for r in ls.reads.pending.drain(..ready) {
            if let Some(index) = r.index {
                self.pending
                    .events
                    .push(Event::ReadReady { id: r.id, index });
            }
        }
    }

    /// Fails reads that waited past their deadline.
    pub(super) fn expire_reads(&mut self, now: Millis) {
        let Some(ls) = self.leader.as_mut() else {
            return;
        };
        let (expired, kept) = ls.reads.pending.iter().partition(|r| now >= r.deadline);
        ls.reads.pending = kept;
        let expired: Vec<PendingRead> = expired;
        for r in expired {
            self.pending.events.push(Event::ReadFailed { id: r.id });
        }
    }

    /// The node stops leading: no pending read can be confirmed any more.
    pub(super) fn fail_pending_reads(&mut self) {
        let Some(ls) = self.leader.as_mut() else {
            return;
        };
        for r in std::mem::take(&mut ls.reads.pending) {
            self.pending.events.push(Event::ReadFailed { id: r.id });
        }
    }

    /// Whether the entry at the commit index is of the current term (for a leader: its no-op
    /// or later is committed, so its commit index is as high as any earlier leader's).
    pub(super) fn committed_in_current_term(&self) -> Result<bool, super::RaftError> {
        Ok(self.term_at(self.commit_index)? == self.term)
    }
}
