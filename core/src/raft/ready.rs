//! The node's output: a [`Ready`] says what to write, what to send (now, or once the writes
//! are durable), what to apply and what happened. The node accumulates one in [`Pending`] while
//! it handles inputs; [`Node::ready`](super::Node::ready) hands it out and
//! [`Node::advance`](super::Node::advance) hears back what became durable and applied.
//! (Modelled on etcd-io/raft's `Ready` and tikv/raft-rs's `raw_node.rs`; the durability order
//! is explained with a timeline in docs/durability.md.)

use super::{Event, HardState, Index, LogEntry, Membership, Message, SnapshotMeta, Term};
use crate::types::NodeId;

/// A snapshot the node adopted, already in the host's snapshot store: one this node took (see
/// [`Node::snapshot_taken`](super::Node::snapshot_taken)), or one received from the leader,
/// which the host restores into its state machine (streaming it from the store). The log is
/// cut behind it only in this Ready, after the store holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadySnapshot {
    /// What it covers.
    pub meta: SnapshotMeta,
    /// The configuration at its last index.
    pub membership: Membership,
    /// Received from the leader: restore it into the state machine once it is saved.
    pub install: bool,
}

/// What the host does with one batch of the node's output, in this order:
/// 1. send `messages` (they do not depend on this Ready's writes: the leader's AppendEntries go
///    out before its own fsync, Raft thesis §10.2.1);
/// 2. write `hard_state`, `snapshot`, then delete the log from `truncate_from`, move its base to
///    `compact_to`, append `entries`, and make it all durable (fsync);
/// 3. send `persisted_messages` (votes, and answers that promise what was just written);
/// 4. restore an installed `snapshot`, then apply `committed` in order;
/// 5. call [`Node::advance`](super::Node::advance) with `last_entry` and the applied index.
///
/// A host may take the next Ready before this one is durable, as long as it makes Readys
/// durable in the order it took them.
#[derive(Clone, Debug)]
pub struct Ready<C, R> {
    /// The term and vote, when they changed.
    pub hard_state: Option<HardState>,
    /// A snapshot to save (and, if `install`, to restore).
    pub snapshot: Option<ReadySnapshot>,
    /// Delete every entry at or after this index first (a conflicting suffix).
    pub truncate_from: Option<Index>,
    /// Then compact the log up to this index (its base becomes this).
    pub compact_to: Option<SnapshotMeta>,
    /// Then append these, which continue the log.
    pub entries: Vec<LogEntry<C>>,
    /// Messages that may leave at once.
    pub messages: Vec<(NodeId, Message<C>)>,
    /// Messages that may leave only once this Ready's writes are durable.
    pub persisted_messages: Vec<(NodeId, Message<C>)>,
    /// Committed entries to apply, in order; all already durable here.
    pub committed: Vec<LogEntry<C>>,
    /// What happened, oldest first.
    pub events: Vec<Event<R>>,
    /// The last entry of the log (index, term) when the Ready was taken: once this Ready is
    /// durable, so is the log up to it.
    pub last_entry: (Index, Term),
}

impl<C, R> Ready<C, R> {
    /// Whether the host has anything to write before `persisted_messages` may leave.
    pub fn must_sync(&self) -> bool {
        self.hard_state.is_some()
            || self.snapshot.is_some()
            || self.truncate_from.is_some()
            || self.compact_to.is_some()
            || !self.entries.is_empty()
    }
}

/// What the node accumulates until the host takes a Ready.
#[derive(Debug)]
pub(super) struct Pending<C, R> {
    /// The term or vote changed.
    pub(super) hard_state: bool,
    pub(super) snapshot: Option<ReadySnapshot>,
    pub(super) truncate_from: Option<Index>,
    pub(super) compact_to: Option<SnapshotMeta>,
    /// Entries not handed out yet. Invariant: contiguous, and they continue the log that
    /// results from the writes above.
    pub(super) entries: Vec<LogEntry<C>>,
    pub(super) messages: Vec<(NodeId, Message<C>)>,
    pub(super) persisted_messages: Vec<(NodeId, Message<C>)>,
    pub(super) events: Vec<Event<R>>,
}

impl<C, R> Default for Pending<C, R> {
    fn default() -> Self {
        Pending {
            hard_state: false,
            snapshot: None,
            truncate_from: None,
            compact_to: None,
            entries: Vec::new(),
            messages: Vec::new(),
            persisted_messages: Vec::new(),
            events: Vec::new(),
        }
    }
}

impl<C, R> Pending<C, R> {
    /// Whether anything waits to be handed out.
    pub(super) fn is_empty(&self) -> bool {
        !self.hard_state
            && self.snapshot.is_none()
            && self.truncate_from.is_none()
            && self.compact_to.is_none()
            && self.entries.is_empty()
            && self.messages.is_empty()
            && self.persisted_messages.is_empty()
            && self.events.is_empty()
    }

    /// The log loses every entry at or after `index`: pending ones too.
    pub(super) fn truncate(&mut self, index: Index) {
        self.entries.retain(|e| e.index < index);
        self.truncate_from = Some(self.truncate_from.map_or(index, |t| t.min(index)));
    }

    /// The log is compacted up to `meta`: pending entries up to it need not be written.
    pub(super) fn compact(&mut self, meta: SnapshotMeta) {
        self.entries.retain(|e| e.index > meta.last_included_index);
        if self
            .compact_to
            .is_none_or(|c| c.last_included_index < meta.last_included_index)
        {
            self.compact_to = Some(meta);
        }
    }
}
