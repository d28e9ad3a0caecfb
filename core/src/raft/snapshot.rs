//! Snapshots: taking one when enough entries were applied (and compacting the log behind it),
//! installing one sent by the leader, and starting from one after a restart.
//!
//! Order of writes, so that a crash at any point leaves something [`Node::new`] can start
//! from: the snapshot is saved first, then the log is cut behind it. On start, a log that was
//! not cut yet (or that disagrees with the snapshot) is reconciled the same way.

use super::node::Node;
use super::{
    Event, Index, InstallSnapshot, InstallSnapshotResponse, LogStore, Membership, Message, Millis,
    NodeId, RaftError, ReadySnapshot, Role, SnapshotInfo, SnapshotMeta, Term,
};
use crate::state_machine::StateMachine;

/// What the host does with the snapshot store for a reception, in order, right after the
/// node stepped the message (see [`Node::take_receive_ops`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReceiveOp {
    /// Start receiving this snapshot, discarding any reception in progress.
    Begin(SnapshotInfo),
    /// Append these bytes to the reception.
    Append(Vec<u8>),
    /// Discard the reception (its bytes did not match their checksum).
    Abort,
    /// All of the snapshot arrived with the size and checksum announced: check it with the
    /// state machine, make it the stored one, and tell the node
    /// ([`Node::snapshot_received`]).
    Complete(SnapshotInfo),
}

/// Counters of the chunked snapshot protocol on one node (since it started), for tests and
/// the simulator's report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Transfers this node started as leader.
    pub transfers_started: u64,
    /// Chunks it sent as leader.
    pub chunks_sent: u64,
    /// Bytes in them.
    pub bytes_sent: u64,
    /// Transfers a follower's answer made resume past where this leader was (it had the
    /// bytes from an earlier transfer of the same snapshot).
    pub transfers_resumed: u64,
    /// Transfers this leader gave up after a long silence.
    pub transfers_abandoned: u64,
    /// Chunks this node took as receiver (the one at its offset).
    pub chunks_received: u64,
    /// Receptions this node discarded half way for another snapshot, or refused at the end
    /// (checksum mismatch, or the state machine found the bytes invalid).
    pub receptions_restarted: u64,
    /// Snapshots this node received and installed.
    pub receptions_completed: u64,
}

/// The snapshot a follower is receiving.
#[derive(Clone, Debug)]
pub(super) struct Incoming {
    /// The leader sending it, and its term.
    pub(super) leader: NodeId,
    pub(super) term: Term,
    /// What it is.
    pub(super) info: SnapshotInfo,
    /// Every byte before this offset is written. Invariant: `received <= info.size`.
    pub(super) received: u64,
    /// CRC-32 of those bytes.
    pub(super) crc: crc32fast::Hasher,
    /// All of it arrived and matched; the host is checking it.
    pub(super) complete: bool,
}

impl<M: StateMachine> Node<M> {
    /// At start: adopts the durable snapshot (the host restored it into its state machine),
    /// reconciles the log with it, and sets commit and applied to its index. The rest of the
    /// log is applied as the node learns that it is committed.
    pub(super) fn restore_from(&mut self, snapshot: Option<SnapshotInfo>) -> Result<(), RaftError> {
        let Some(info) = snapshot else {
            if self.log.base().last_included_index > 0 {
                return Err(RaftError::Corrupt(
                    "the log is compacted but there is no snapshot".into(),
                ));
            }
            return Ok(());
        };
        let meta = info.meta;
        if self.log.base().last_included_index > meta.last_included_index {
            return Err(RaftError::Corrupt(format!(
                "the log is compacted past the snapshot at {}",
                meta.last_included_index
            )));
        }
        self.adopt_snapshot(info)?;
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

    /// One chunk of a snapshot from the leader of our term. A chunk that continues what we
    /// have is written (through the host) and acknowledged; any other is answered with the
    /// offset we expect, so the leader goes back or jumps ahead to it.
    pub(super) fn handle_install_snapshot(
        &mut self,
        now: Millis,
        from: &NodeId,
        m: InstallSnapshot,
    ) -> Result<(), RaftError> {
        if m.leader_id != *from || !self.accept_leader(now, from)? {
            return Ok(());
        }
        let size = m.total_size();
        let checksum = m.total_checksum();
        let index = m.last_included_index;
        if index <= self.commit_index {
            // We already have all of it, committed; committed entries match the leader's.
            if self
                .incoming
                .as_ref()
                .is_some_and(|i| i.info.meta.last_included_index <= self.commit_index)
            {
                self.incoming = None;
                self.receive_ops.push(ReceiveOp::Abort);
            }
            self.answer_snapshot(from, index, size, true);
            return Ok(());
        }
        if m.last_included_term > m.term {
            return Ok(()); // Cannot be right: its term is from the future.
        }
        let len = m.data.len() as u64;
        let Some(end) = m.offset.checked_add(len) else {
            return Ok(());
        };
        if end > size || m.done != (end == size) {
            return Ok(()); // Malformed: runs past its snapshot, or ends without saying so.
        }
        let info = SnapshotInfo {
            meta: SnapshotMeta {
                last_included_index: index,
                last_included_term: m.last_included_term,
            },
            membership: m.membership,
            size,
            checksum,
        };
        let same = self.incoming.as_ref().is_some_and(|i| {
            i.info.meta == info.meta && i.info.size == size && i.info.checksum == checksum
        });
        if !same {
            if self.incoming.as_ref().is_some_and(|i| i.received > 0) {
                self.snapshot_stats.receptions_restarted += 1;
            }
            self.incoming = Some(Incoming {
                leader: from.clone(),
                term: m.term,
                info: info.clone(),
                received: 0,
                crc: crc32fast::Hasher::new(),
                complete: false,
            });
            self.receive_ops.push(ReceiveOp::Begin(info.clone()));
        }
        let any_offset = self.breaks_any_offset();
        let Some(inc) = self.incoming.as_mut() else {
            return Ok(());
        };
        inc.leader = from.clone();
        inc.term = m.term;
        if inc.complete {
            return Ok(()); // The host is checking it: the answer follows.
        }
        let continues = m.offset == inc.received || (any_offset && m.offset > inc.received);
        if !continues {
            let received = inc.received;
            self.answer_snapshot(from, index, received, false);
            return Ok(());
        }
        // Under the `snapshot_chunk_any_offset` break a chunk ahead of our bytes is written
        // right after them, as if it continued them.
        let len = len.min(size - inc.received);
        inc.crc.update(&m.data[..len as usize]);
        inc.received += len;
        debug_assert!(inc.received <= inc.info.size);
        let received = inc.received;
        let matches = any_offset || inc.crc.clone().finalize() == checksum;
        self.snapshot_stats.chunks_received += 1;
        let mut data = m.data;
        data.truncate(len as usize);
        self.receive_ops.push(ReceiveOp::Append(data));
        if !m.done {
            self.answer_snapshot(from, index, received, false);
            return Ok(());
        }
        if !matches || (received != size && !any_offset) {
            // Not the bytes the leader has: nothing of it is adopted; it starts over.
            self.refuse_reception(from, index);
            return Ok(());
        }
        if let Some(inc) = self.incoming.as_mut() {
            inc.complete = true;
        }
        self.receive_ops.push(ReceiveOp::Complete(info));
        Ok(())
    }

    fn breaks_any_offset(&self) -> bool {
        #[cfg(feature = "protocol-breaks")]
        if self.cfg.breaks.snapshot_chunk_any_offset {
            return true;
        }
        false
    }

    /// Discards the reception and tells the leader to start again from offset 0.
    fn refuse_reception(&mut self, to: &NodeId, index: Index) {
        self.incoming = None;
        self.snapshot_stats.receptions_restarted += 1;
        self.receive_ops.push(ReceiveOp::Abort);
        self.answer_snapshot(to, index, 0, false);
    }

    /// Answers a chunk of the snapshot at `index`: we hold every byte before `offset`, and with
    /// `done` everything the snapshot covers.
    fn answer_snapshot(&mut self, to: &NodeId, index: Index, offset: u64, done: bool) {
        let resp = InstallSnapshotResponse {
            term: self.term,
            last_included_index: index,
            offset,
            done,
        };
        self.send(to, Message::InstallSnapshotResponse(resp));
    }

    /// What the host must do with its snapshot store for the chunks stepped since the last
    /// call, in order (right after [`step`](Self::step)). The node holds no snapshot bytes.
    pub fn take_receive_ops(&mut self) -> Vec<ReceiveOp> {
        std::mem::take(&mut self.receive_ops)
    }

    /// The host checked the snapshot [`ReceiveOp::Complete`] announced: with `ok` it is now
    /// the stored snapshot and the node adopts it (the next Ready installs it into the state
    /// machine); otherwise (the state machine found its bytes invalid) it was discarded and
    /// the leader is told to start again.
    pub fn snapshot_received(&mut self, ok: bool) -> Result<(), RaftError> {
        let Some(inc) = self.incoming.take().filter(|i| i.complete) else {
            return Ok(());
        };
        let index = inc.info.meta.last_included_index;
        if !ok {
            self.snapshot_stats.receptions_restarted += 1;
            self.answer_snapshot(&inc.leader, index, 0, false);
        } else {
            // The host answers right after the step that completed it: nothing changed since.
            debug_assert!(inc.term == self.term && self.role == Role::Follower);
            self.install_snapshot(inc.info)?;
            self.snapshot_stats.receptions_completed += 1;
            self.answer_snapshot(&inc.leader, index, inc.received, true);
        }
        self.check_invariants();
        Ok(())
    }

    /// Installs a snapshot newer than our commit index, whose bytes the host stored and
    /// checked; the host restores it when it takes the Ready.
    fn install_snapshot(&mut self, info: SnapshotInfo) -> Result<(), RaftError> {
        let meta = info.meta;
        if meta.last_included_index <= self.commit_index {
            return Ok(());
        }
        self.pending.snapshot = Some(ReadySnapshot {
            meta,
            membership: info.membership.clone(),
            install: true,
        });
        self.adopt_snapshot(info)?;
        self.pending.events.push(Event::Committed {
            index: meta.last_included_index,
        });
        Ok(())
    }

    /// Takes `info` as this node's snapshot (loaded at start or received from the leader):
    /// the log is aligned with it, and everything up to it counts as committed and applied.
    /// A snapshot without a configuration (from before membership changes) leaves the one in
    /// force as it is.
    fn adopt_snapshot(&mut self, info: SnapshotInfo) -> Result<(), RaftError> {
        let meta = info.meta;
        let membership: Membership = info.membership.clone();
        self.align_log_with_snapshot(meta)?;
        self.snapshot = meta;
        self.snapshot_info = Some(info);
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

    /// A follower's answer to a chunk of our snapshot: it installed it (then it matches the
    /// snapshot's index), or it holds the bytes before `offset`, and the transfer moves on
    /// from there.
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
        if m.done {
            pr.maybe_update(m.last_included_index);
            pr.become_probe();
            self.maybe_commit()?;
            self.flush = true;
            return Ok(());
        }
        let Some(send) = pr
            .snapshot_send
            .as_mut()
            .filter(|s| s.index == m.last_included_index && m.offset <= s.size)
        else {
            return Ok(()); // An answer about a transfer no longer under way.
        };
        pr.snapshot_heard = Some(now);
        if m.offset > send.acked {
            if m.offset > send.next {
                self.snapshot_stats.transfers_resumed += 1;
            }
            send.acknowledge(m.offset);
        } else if m.offset < send.acked {
            // It lost what it had (restarted, or refused the bytes): back to its offset.
            send.rewind(m.offset);
        } else if m.offset < send.next && send.rewound_to != Some(m.offset) {
            // No progress while chunks are in flight: one before them was lost. Send again
            // from it, once per offset.
            send.rewound_to = Some(m.offset);
            send.rewind(m.offset);
        }
        self.pump_snapshot(now, from)
    }
}
