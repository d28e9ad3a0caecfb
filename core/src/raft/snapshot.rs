//! Snapshots: taking one when enough entries were applied (and compacting the log behind it),
//! installing one sent by the leader, and starting from one after a restart.
//!
//! Order of writes, so that a crash at any point leaves something [`Node::new`] can start
//! from: the snapshot is saved first, then the log is cut behind it. On start, a log that was
//! not cut yet (or that disagrees with the snapshot) is reconciled the same way.

use super::node::Node;
use super::{
    Event, Index, InstallSnapshot, InstallSnapshotResponse, Message, Millis, NodeId, RaftError,
    Role, SnapshotMeta, Transport,
};
use crate::state_machine::StateMachine;

impl<M: StateMachine> Node<M> {
    /// At start: restores the stored snapshot into the (empty) state machine, reconciles the
    /// log with it, and sets commit and applied to its index. The rest of the log is applied
    /// as the node learns that it is committed.
    pub(super) fn restore_from_stores(&mut self) -> Result<(), RaftError> {
        let Some((meta, data)) = self.stores.snapshot.load()? else {
            if self.stores.log.base().last_included_index > 0 {
                return Err(RaftError::Corrupt(
                    "the log is compacted but there is no snapshot".into(),
                ));
            }
            return Ok(());
        };
        if self.stores.log.base().last_included_index > meta.last_included_index {
            return Err(RaftError::Corrupt(format!(
                "the log is compacted past the snapshot at {}",
                meta.last_included_index
            )));
        }
        self.sm
            .restore(&data)
            .map_err(|e| RaftError::Corrupt(format!("stored snapshot: {e}")))?;
        self.align_log_with_snapshot(meta)?;
        self.snapshot = meta;
        self.commit_index = meta.last_included_index;
        self.last_applied = meta.last_included_index;
        self.events.push(Event::SnapshotRestored {
            index: meta.last_included_index,
            term: meta.last_included_term,
        });
        Ok(())
    }

    /// After applying: once `snapshot_threshold` entries were applied since the last
    /// snapshot, snapshots the state machine at `last_applied` and compacts the log up to it.
    pub(super) fn maybe_snapshot(&mut self) -> Result<(), RaftError> {
        let threshold = self.cfg.snapshot_threshold;
        if threshold == 0 || self.last_applied - self.snapshot.last_included_index < threshold {
            return Ok(());
        }
        self.create_snapshot()
    }

    /// Snapshots the state machine at `last_applied` now, whatever the threshold, and compacts
    /// the log up to it, less the `snapshot_trailing` entries kept for followers a little
    /// behind (hosts may call this, e.g. before a planned shutdown).
    pub fn create_snapshot(&mut self) -> Result<(), RaftError> {
        if self.last_applied <= self.snapshot.last_included_index {
            return Ok(());
        }
        let meta = SnapshotMeta {
            last_included_index: self.last_applied,
            last_included_term: self.term_at(self.last_applied)?,
        };
        let data = self.sm.snapshot();
        self.stores.snapshot.save(meta, &data)?;
        self.snapshot = meta;
        self.compact_behind(meta)
    }

    /// Compacts the log up to `meta`'s index less `snapshot_trailing` entries; the log must hold
    /// `meta`'s entry. Invariant kept: log base <= snapshot index, so every entry after the
    /// snapshot is in the log; those between base and snapshot are committed, so they match
    /// any leader's.
    fn compact_behind(&mut self, meta: SnapshotMeta) -> Result<(), RaftError> {
        let upto = meta
            .last_included_index
            .saturating_sub(self.cfg.snapshot_trailing);
        if upto > self.stores.log.base().last_included_index {
            let term = self.term_at(upto)?;
            self.stores.log.truncate_prefix(upto, term)?;
        }
        Ok(())
    }

    /// InstallSnapshot from the leader of our term.
    pub(super) fn handle_install_snapshot(
        &mut self,
        now: Millis,
        from: &NodeId,
        m: InstallSnapshot,
        out: &mut impl Transport,
    ) -> Result<(), RaftError> {
        if m.leader_id != *from || !self.accept_leader(now, from)? {
            return Ok(());
        }
        if let Some(index) = self.install_snapshot(m)? {
            let resp = InstallSnapshotResponse {
                term: self.term,
                last_included_index: index,
            };
            out.send(from, Message::InstallSnapshotResponse(resp));
        }
        Ok(())
    }

    /// Installs a snapshot newer than our commit index. Returns the index now known to match
    /// the leader, or `None` for a snapshot that cannot be right (the state machine rejects
    /// its bytes, or its term is from the future).
    fn install_snapshot(&mut self, m: InstallSnapshot) -> Result<Option<Index>, RaftError> {
        let meta = SnapshotMeta {
            last_included_index: m.last_included_index,
            last_included_term: m.last_included_term,
        };
        if meta.last_included_index <= self.commit_index {
            // We already have all of it, committed; committed entries match the leader's.
            return Ok(Some(meta.last_included_index));
        }
        if meta.last_included_term > m.term {
            return Ok(None);
        }
        // First the state machine, which leaves itself unchanged on bad bytes: garbage from
        // the wire must not cost us any state.
        if self.sm.restore(&m.data).is_err() {
            return Ok(None);
        }
        self.stores.snapshot.save(meta, &m.data)?;
        // Proposals up to the snapshot may or may not be inside it. Settle them before the
        // log is aligned: that may discard the rest of our log, whose proposals are lost.
        self.forget_proposals_through(meta.last_included_index);
        self.align_log_with_snapshot(meta)?;
        self.snapshot = meta;
        self.commit_index = meta.last_included_index;
        self.last_applied = meta.last_included_index;
        self.events.push(Event::SnapshotRestored {
            index: meta.last_included_index,
            term: meta.last_included_term,
        });
        self.events.push(Event::Committed {
            index: meta.last_included_index,
        });
        Ok(Some(meta.last_included_index))
    }

    /// Makes the log agree with the snapshot. If our log holds the snapshot's last entry (same
    /// index and term), the entries after it stay and it is compacted as after taking a
    /// snapshot (keeping `snapshot_trailing` entries). Otherwise the whole log goes, since it
    /// diverges from what the snapshot contains, and the log restarts right after it.
    fn align_log_with_snapshot(&mut self, meta: SnapshotMeta) -> Result<(), RaftError> {
        let base = self.stores.log.base().last_included_index;
        let agrees =
            self.term_if_present(meta.last_included_index)? == Some(meta.last_included_term);
        if agrees {
            return self.compact_behind(meta);
        }
        if self.last_index() > base {
            self.truncate_log_from(base + 1)?;
        }
        self.stores
            .log
            .truncate_prefix(meta.last_included_index, meta.last_included_term)?;
        Ok(())
    }

    /// A follower's answer to our snapshot: it now matches the snapshot's last index.
    pub(super) fn handle_install_snapshot_response(
        &mut self,
        now: Millis,
        from: &NodeId,
        m: InstallSnapshotResponse,
        out: &mut impl Transport,
    ) -> Result<(), RaftError> {
        if self.role != Role::Leader {
            return Ok(());
        }
        let last = self.last_index();
        let Some(pr) = self.tracker.progress_mut(from) else {
            return Ok(());
        };
        pr.last_ack = now;
        if m.last_included_index == 0 || m.last_included_index > last {
            return Ok(());
        }
        pr.maybe_update(m.last_included_index);
        pr.become_probe();
        self.maybe_commit()?;
        self.replicate_to_peer(now, from, false, out)
    }
}
