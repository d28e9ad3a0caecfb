//! Snapshots: taking one when enough entries were applied (and compacting the log behind it),
//! installing one sent by the leader, and starting from one after a restart.
//!
//! Order of writes, so that a crash at any point leaves something [`Node::new`] can start
//! from: the snapshot is saved first, then the log is cut behind it. On start, a log that was
//! not cut yet (or that disagrees with the snapshot) is reconciled the same way.

use std::sync::Arc;

use super::node::Node;
use super::{
    Event, Index, InstallSnapshot, InstallSnapshotResponse, LogStore, Membership, Message, Millis,
    NodeId, RaftError, ReadySnapshot, Role, SnapshotMeta, StoredSnapshot,
};
use crate::state_machine::StateMachine;

impl<M: StateMachine> Node<M> {
    /// At start: adopts the durable snapshot (the host restored it into its state machine),
    /// reconciles the log with it, and sets commit and applied to its index. The rest of the
    /// log is applied as the node learns that it is committed.
    pub(super) fn restore_from(
        &mut self,
        snapshot: Option<StoredSnapshot>,
    ) -> Result<(), RaftError> {
        let Some(StoredSnapshot {
            meta,
            membership,
            data,
        }) = snapshot
        else {
            if self.log.base().last_included_index > 0 {
                return Err(RaftError::Corrupt(
                    "the log is compacted but there is no snapshot".into(),
                ));
            }
            return Ok(());
        };
        if self.log.base().last_included_index > meta.last_included_index {
            return Err(RaftError::Corrupt(format!(
                "the log is compacted past the snapshot at {}",
                meta.last_included_index
            )));
        }
        self.adopt_snapshot(meta, membership, Arc::new(data))?;
        self.applied = meta.last_included_index;
        Ok(())
    }

    /// Compacts the log up to `meta`'s index less `snapshot_trailing` entries; the log must hold
    /// `meta`'s entry. Invariant kept: log base <= snapshot index, so every entry after the
    /// snapshot is in the log; those between base and snapshot are committed, so they match
    /// any leader's.
    pub(super) fn compact_behind(&mut self, meta: SnapshotMeta) -> Result<(), RaftError> {
        let upto = meta
            .last_included_index
            .saturating_sub(self.cfg.snapshot_trailing);
        if upto > self.log.base().last_included_index {
            let term = self.term_at(upto)?;
            self.compact_log_to(SnapshotMeta {
                last_included_index: upto,
                last_included_term: term,
            })?;
        }
        Ok(())
    }

    /// InstallSnapshot from the leader of our term.
    pub(super) fn handle_install_snapshot(
        &mut self,
        now: Millis,
        from: &NodeId,
        m: InstallSnapshot,
    ) -> Result<(), RaftError> {
        if m.leader_id != *from || !self.accept_leader(now, from)? {
            return Ok(());
        }
        if let Some(index) = self.install_snapshot(m)? {
            let resp = InstallSnapshotResponse {
                term: self.term,
                last_included_index: index,
            };
            self.send(from, Message::InstallSnapshotResponse(resp));
        }
        Ok(())
    }

    /// Installs a snapshot newer than our commit index (the host checked its bytes before it
    /// stepped the message, and restores it when it takes the Ready). Returns the index now
    /// known to match the leader, or `None` for a snapshot that cannot be right (its term is
    /// from the future).
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
        let data = Arc::new(m.data);
        self.pending.snapshot = Some(ReadySnapshot {
            meta,
            membership: m.membership.clone(),
            data: Arc::clone(&data),
            install: true,
        });
        self.adopt_snapshot(meta, m.membership, data)?;
        self.pending.events.push(Event::Committed {
            index: meta.last_included_index,
        });
        Ok(Some(meta.last_included_index))
    }

    /// Takes `meta` as this node's snapshot (loaded at start or received from the leader):
    /// the log is aligned with it, and everything up to it counts as committed and applied.
    /// A snapshot without a configuration (from before membership changes) leaves the one in
    /// force as it is.
    fn adopt_snapshot(
        &mut self,
        meta: SnapshotMeta,
        membership: Membership,
        data: Arc<Vec<u8>>,
    ) -> Result<(), RaftError> {
        self.align_log_with_snapshot(meta)?;
        self.snapshot = meta;
        self.snapshot_data = Some(data);
        self.commit_index = self.commit_index.max(meta.last_included_index);
        self.applying = self.applying.max(meta.last_included_index);
        if !membership.is_empty() {
            // Everything the snapshot covers took effect, its configuration included.
            self.confs.clear();
            self.switch_to(meta.last_included_index, membership)?;
        } else {
            self.trim_confs(meta.last_included_index);
        }
        self.pending.events.push(Event::SnapshotRestored {
            index: meta.last_included_index,
            term: meta.last_included_term,
        });
        Ok(())
    }

    /// Makes the log agree with the snapshot. If our log holds the snapshot's last entry (same
    /// index and term), the entries after it stay and it is compacted as after taking a
    /// snapshot (keeping `snapshot_trailing` entries). Otherwise the whole log goes, since it
    /// diverges from what the snapshot contains, and the log restarts right after it.
    fn align_log_with_snapshot(&mut self, meta: SnapshotMeta) -> Result<(), RaftError> {
        let base = self.log.base().last_included_index;
        let agrees =
            self.term_if_present(meta.last_included_index)? == Some(meta.last_included_term);
        if agrees {
            return self.compact_behind(meta);
        }
        if self.last_index() > base {
            self.truncate_log_from(base + 1)?;
        }
        self.compact_log_to(meta)
    }

    /// A follower's answer to our snapshot: it now matches the snapshot's last index.
    pub(super) fn handle_install_snapshot_response(
        &mut self,
        now: Millis,
        from: &NodeId,
        m: InstallSnapshotResponse,
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
        self.flush = true;
        Ok(())
    }
}
