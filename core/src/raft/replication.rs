//! The leader's side of replication: per-follower progress, sending AppendEntries (or a
//! snapshot), handling the answers with fast backtracking, heartbeats, check-quorum, and the
//! commit rule.

use super::node::Node;
use super::tracker::{ProgressState, SnapshotSend};
use super::{
    AppendEntries, AppendEntriesResponse, Config, Index, InstallSnapshot, LogEntry, LogStore,
    Message, Millis, NodeId, RaftError, StorageError,
};
use crate::state_machine::StateMachine;

/// Everything only a leader keeps besides the tracker's progress.
#[derive(Clone, Debug)]
pub(super) struct LeaderState {
    /// When the next round of heartbeats is due.
    pub(super) heartbeat_deadline: Millis,
    /// ReadIndex bookkeeping.
    pub(super) reads: super::read::ReadState,
    /// A leadership transfer under way, if any (see `transfer`).
    pub(super) transfer: Option<super::transfer::Transfer>,
    /// This leader sent TimeoutNow in its term: its read lease is off for the rest of the
    /// term, even once the transfer is abandoned. Never goes back to false.
    pub(super) timeout_now_sent: bool,
}

impl LeaderState {
    /// A new term's leader state: heartbeats due one interval from `now`.
    pub(super) fn new(now: Millis, cfg: &Config) -> Self {
        LeaderState {
            heartbeat_deadline: now.saturating_add(cfg.heartbeat_interval),
            reads: super::read::ReadState::default(),
            transfer: None,
            timeout_now_sent: false,
        }
    }
}

impl<M: StateMachine> Node<M> {
    /// The leader's timer: check-quorum first (a leader cut off from a majority steps down),
    /// then a transfer past its deadline, then reads that waited too long, then heartbeats.
    pub(super) fn tick_leader(&mut self, now: Millis) -> Result<(), RaftError> {
        if self.cfg.check_quorum && !self.in_leader_lease(now) {
            return self.become_follower(now, self.term, None);
        }
        self.tick_transfer(now);
        self.expire_reads(now);
        let due = self
            .leader
            .as_ref()
            .is_some_and(|ls| now >= ls.heartbeat_deadline);
        if due {
            if let Some(ls) = self.leader.as_mut() {
                ls.heartbeat_deadline = now.saturating_add(self.cfg.heartbeat_interval);
            }
            self.broadcast_append(now, Send::Heartbeat)?;
        }
        Ok(())
    }

    /// Sends to every follower what it needs. Unless `why` is [`Send::NewEntries`] a message
    /// goes out even when there is nothing new, so followers keep their leader and learn the
    /// commit index and the read round.
    pub(super) fn broadcast_append(&mut self, now: Millis, why: Send) -> Result<(), RaftError> {
        for peer in self.peers() {
            self.replicate_to_peer(now, &peer, why)?;
            if why == Send::Heartbeat {
                continue;
            }
            // A backlog larger than one message streams on, as far as the window allows
            // (`replicate_to_peer` sends nothing to a peer that is paused or has it all).
            loop {
                let before = self.tracker.progress(&peer).map(|p| p.next_index);
                self.replicate_to_peer(now, &peer, Send::NewEntries)?;
                if self.tracker.progress(&peer).map(|p| p.next_index) == before {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Sends one follower what its progress calls for, if anything.
    pub(super) fn replicate_to_peer(
        &mut self,
        now: Millis,
        peer: &NodeId,
        why: Send,
    ) -> Result<(), RaftError> {
        let heartbeat = why != Send::NewEntries;
        let last = self.last_index();
        let Some(pr) = self.tracker.progress_mut(peer) else {
            return Ok(());
        };
        match pr.state {
            // The transfer goes on at its own pace (answers and chunk timeouts); the heartbeat
            // keeps the follower with its leader meanwhile.
            ProgressState::Snapshot { .. } if heartbeat => {
                self.pump_snapshot(now, peer)?;
                if self
                    .tracker
                    .progress(peer)
                    .is_some_and(|p| matches!(p.state, ProgressState::Snapshot { .. }))
                {
                    self.send_append(now, peer, false)
                } else {
                    Ok(())
                }
            }
            // A window still full when the heartbeat timer fires: answers were lost (or the
            // follower is stuck). Probe again from the match point rather than wait forever.
            ProgressState::Replicate if why == Send::Heartbeat && pr.inflights.full() => {
                pr.become_probe();
                pr.next_index = pr.match_index + 1;
                self.send_append(now, peer, true)
            }
            // A probe is out and unanswered: the heartbeat only asks where the follower is,
            // without entries, so a follower too busy to answer (installing a snapshot) is not
            // sent the same entries again every interval; its answer sends what comes next.
            ProgressState::Probe if heartbeat && pr.probe_sent => {
                self.send_append(now, peer, false)
            }
            _ if !heartbeat && pr.is_paused() => Ok(()),
            ProgressState::Replicate if !heartbeat && pr.next_index > last => Ok(()),
            _ => self.send_append(now, peer, true),
        }
    }

    /// Sends an AppendEntries starting at the follower's `next_index`, or the snapshot when
    /// the entry before it was compacted. With `with_entries` it carries as many entries as fit
    /// `max_bytes_per_append` and `max_entries_per_append` (at least one, however large).
    fn send_append(
        &mut self,
        now: Millis,
        peer: &NodeId,
        with_entries: bool,
    ) -> Result<(), RaftError> {
        let Some(next_index) = self.tracker.progress(peer).map(|p| p.next_index) else {
            return Ok(());
        };
        let prev_log_index = next_index - 1;
        let prev_log_term = match self.log.term_at(prev_log_index) {
            Ok(t) => t,
            Err(StorageError::Compacted(_)) => return self.send_snapshot(now, peer),
            Err(e) => return Err(e.into()),
        };
        let (entries, bytes) = if with_entries {
            self.entries_for_message(next_index)?
        } else {
            (Vec::new(), 0)
        };
        debug_assert!(
            entries.iter().zip(next_index..).all(|(e, i)| e.index == i),
            "an AppendEntries' entries are contiguous from prev_log_index + 1"
        );
        let last_sent = prev_log_index + entries.len() as Index;
        if let Some(pr) = self.tracker.progress_mut(peer) {
            pr.sent(last_sent, bytes);
        }
        let msg = AppendEntries {
            term: self.term,
            leader_id: self.cfg.id.clone(),
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit: self.commit_index,
            read_seq: self.current_read_seq(),
            sent_at: now,
        };
        self.send(peer, Message::AppendEntries(msg));
        Ok(())
    }

    /// The entries from `from` on that fit one message, and their bytes.
    fn entries_for_message(&self, from: Index) -> Result<Batch<M::Command>, RaftError> {
        let last = self
            .last_index()
            .min(from.saturating_add(self.cfg.max_entries_per_append as Index) - 1);
        let candidates = self.log.slice(from, last + 1)?;
        // Stop at the byte budget, but always carry the first entry, however large.
        let mut bytes = 0u64;
        let mut fit = 0;
        for e in candidates {
            let size = entry_size::<M>(e);
            if fit > 0 && bytes + size > self.cfg.max_bytes_per_append {
                break;
            }
            bytes += size;
            fit += 1;
        }
        Ok((candidates[..fit].to_vec(), bytes))
    }

    /// Starts sending the latest snapshot to a follower that needs compacted entries: its
    /// first chunks go out at once, as many as the window holds.
    pub(super) fn send_snapshot(&mut self, now: Millis, peer: &NodeId) -> Result<(), RaftError> {
        let Some(info) = self.snapshot_info.as_ref() else {
            return Err(RaftError::Corrupt(
                "the log is compacted but there is no snapshot".into(),
            ));
        };
        let send = SnapshotSend {
            index: info.meta.last_included_index,
            term: info.meta.last_included_term,
            size: info.size,
            checksum: info.checksum,
            acked: 0,
            next: 0,
            final_sent: false,
            inflight: Default::default(),
            rewound_to: None,
            started: now,
            chunks_sent: 0,
            bytes_sent: 0,
        };
        let Some(pr) = self.tracker.progress_mut(peer) else {
            return Ok(());
        };
        pr.become_snapshot(send, now);
        self.pump_snapshot(now, peer)
    }

    /// Moves a follower's snapshot transfer on: gives it up after a long silence (back to
    /// probing, which starts it again if the follower still needs it), restarts it when the
    /// snapshot was replaced meanwhile, sends again from the acknowledged offset when the
    /// oldest chunk in flight timed out, and fills the window with the next chunks.
    pub(super) fn pump_snapshot(&mut self, now: Millis, peer: &NodeId) -> Result<(), RaftError> {
        let abandon_after = self.cfg.snapshot_abandon_after();
        let timeout = self.cfg.snapshot_chunk_timeout;
        let window = self.cfg.snapshot_window;
        let chunk = self.cfg.snapshot_chunk_size;
        let current = self
            .snapshot_info
            .as_ref()
            .map(|i| i.meta.last_included_index);
        let Some(pr) = self.tracker.progress_mut(peer) else {
            return Ok(());
        };
        let heard = pr.snapshot_heard.unwrap_or(now);
        let Some(send) = pr.snapshot_send.as_mut() else {
            return Ok(());
        };
        if now.saturating_sub(heard.max(send.started)) >= abandon_after {
            pr.become_probe();
            self.snapshot_stats.transfers_abandoned += 1;
            return Ok(());
        }
        if current != Some(send.index) {
            // A newer snapshot replaced the one being sent: send that one instead.
            return self.send_snapshot(now, peer);
        }
        if send
            .inflight
            .front()
            .is_some_and(|(_, _, at)| now >= at.saturating_add(timeout))
        {
            let acked = send.acked;
            send.rewind(acked);
        }
        let mut chunks = Vec::new();
        while send.inflight.len() < window && !send.final_sent {
            let offset = send.next;
            let len = chunk.min(send.size - offset);
            let done = offset + len == send.size;
            send.inflight.push_back((offset, len, now));
            send.next += len;
            send.final_sent = done;
            send.chunks_sent += 1;
            send.bytes_sent += len;
            self.snapshot_stats.chunks_sent += 1;
            self.snapshot_stats.bytes_sent += len;
            chunks.push((offset, done));
        }
        send.check();
        debug_assert!(
            send.inflight_bytes() <= window as u64 * chunk,
            "a snapshot transfer holds at most a window of chunks"
        );
        let (index, term, size, checksum) = (send.index, send.term, send.size, send.checksum);
        for (offset, done) in chunks {
            let msg = InstallSnapshot {
                term: self.term,
                leader_id: self.cfg.id.clone(),
                last_included_index: index,
                last_included_term: term,
                membership: self.membership_at(index),
                size,
                checksum: Some(checksum),
                offset,
                // The host fills the bytes from its snapshot store as the message leaves.
                data: Vec::new(),
                done,
            };
            self.send(peer, Message::InstallSnapshot(msg));
        }
        Ok(())
    }

    /// A follower's answer to AppendEntries.
    pub(super) fn handle_append_response(
        &mut self,
        now: Millis,
        from: &NodeId,
        m: AppendEntriesResponse,
    ) -> Result<(), RaftError> {
        // An answer that reaches a node no longer leading (it just stepped down on this very
        // answer's term) must not make it send AppendEntries in a term it does not lead.
        if self.leader.is_none() {
            return Ok(());
        }
        let seq = self.current_read_seq();
        let latest = self.now;
        let Some(pr) = self.tracker.progress_mut(from) else {
            return Ok(());
        };
        pr.last_ack = now;
        pr.read_ack = pr.read_ack.max(m.read_seq.min(seq));
        // No message of ours was sent later than our latest time: a larger echo is forged.
        pr.lease_ack = pr.lease_ack.max(m.sent_at.min(latest));
        if m.success {
            self.on_append_success(from, m.match_index)?;
        } else {
            self.on_append_rejected(now, from, &m)?;
        }
        self.confirm_reads();
        Ok(())
    }

    /// The follower stores everything up to `match_index`: record it, maybe commit, and send
    /// what comes next.
    fn on_append_success(&mut self, from: &NodeId, match_index: Index) -> Result<(), RaftError> {
        if match_index > self.last_index() {
            return Ok(()); // Claims entries we never had: not from a follower of ours.
        }
        let Some(pr) = self.tracker.progress_mut(from) else {
            return Ok(());
        };
        pr.maybe_update(match_index);
        match pr.state {
            ProgressState::Snapshot { index, .. } if pr.match_index < index => {}
            _ => pr.become_replicate(),
        }
        self.maybe_commit()?;
        // A transfer target that now has our whole log is told to campaign.
        self.maybe_send_timeout_now(from);
        // What comes next goes out when the host takes the Ready: one message for every
        // answer and proposal of this turn.
        self.flush = true;
        Ok(())
    }

    /// The follower's log does not match at `next_index - 1`: move `next_index` back using
    /// its hints (a whole conflicting term per round trip), then probe again.
    fn on_append_rejected(
        &mut self,
        now: Millis,
        from: &NodeId,
        m: &AppendEntriesResponse,
    ) -> Result<(), RaftError> {
        let Some(next_index) = self.tracker.progress(from).map(|p| p.next_index) else {
            return Ok(());
        };
        let hint = self.next_index_hint(m, next_index)?;
        let last = self.last_index();
        let Some(pr) = self.tracker.progress_mut(from) else {
            return Ok(());
        };
        if !pr.maybe_decrease_to(hint, last) {
            return Ok(()); // Expected until the snapshot is installed.
        }
        pr.become_probe();
        self.send_append(now, from, true)
    }

    /// Fast backtracking: if we have entries of the follower's conflicting term, retry right
    /// after our last one of that term; otherwise skip the follower's whole term (or, without
    /// a term, retry at the end of its log).
    fn next_index_hint(
        &self,
        m: &AppendEntriesResponse,
        next_index: Index,
    ) -> Result<Index, RaftError> {
        let fallback = m.conflict_index.unwrap_or(next_index.saturating_sub(1));
        match m.conflict_term {
            Some(t) => Ok(self.last_index_of_term(t)?.map_or(fallback, |i| i + 1)),
            None => Ok(fallback),
        }
    }

    /// The last index of our log with term `t`, if any (terms never decrease along a log, so
    /// a binary search does).
    fn last_index_of_term(&self, t: super::Term) -> Result<Option<Index>, RaftError> {
        let (mut lo, mut hi) = (self.snapshot.last_included_index, self.last_index());
        if self.term_at(lo)? > t {
            return Ok(None);
        }
        // Invariant: term_at(lo) <= t; the answer lies in lo..=hi.
        while lo < hi {
            debug_assert!(self.term_at(lo)? <= t);
            let mid = lo + (hi - lo).div_ceil(2);
            if self.term_at(mid)? <= t {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Ok((self.term_at(lo)? == t).then_some(lo))
    }

    /// The commit rule: the highest index stored on a quorum is committed, but only if its
    /// entry is from the current term (entries of earlier terms are committed with it,
    /// indirectly; counting them directly is the figure 8 bug).
    pub(super) fn maybe_commit(&mut self) -> Result<(), RaftError> {
        if self.leader.is_none() {
            return Ok(());
        }
        let n = self.tracker.committed();
        if n <= self.commit_index || !self.may_commit_by_counting(n)? {
            return Ok(());
        }
        self.advance_commit(n)?;
        self.on_commit_advanced_as_leader();
        Ok(())
    }

    /// Whether the entry at `n` may be committed by counting replicas.
    fn may_commit_by_counting(&self, n: Index) -> Result<bool, RaftError> {
        #[cfg(feature = "protocol-breaks")]
        if self.cfg.breaks.skip_current_term_commit_rule {
            return Ok(true);
        }
        Ok(self.term_at(n)? == self.term)
    }

    /// The leader's own log grew or became durable up to `index`: its progress says so.
    pub(super) fn self_ack(&mut self, index: Index) {
        let id = self.cfg.id.clone();
        if let Some(pr) = self.tracker.progress_mut(&id) {
            pr.maybe_update(index);
        }
    }

    /// Leaves the leader role: reads waiting for confirmation can no longer be answered here.
    pub(super) fn step_down_as_leader(&mut self) {
        self.fail_pending_reads();
        self.leader = None;
        self.uncommitted.clear();
        self.uncommitted_bytes = 0;
    }
}

/// Why the leader sends to its followers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Send {
    /// New entries (or answers that free the window): only to followers that can take them.
    NewEntries,
    /// The heartbeat timer (or a new term): to every follower.
    Heartbeat,
    /// A ReadIndex round: to every follower, carrying the new `read_seq`.
    ReadRound,
}

/// Entries for one message, and their bytes.
type Batch<C> = (Vec<LogEntry<C>>, u64);

/// How many bytes an entry counts for in a message: its command's size, or a small constant
/// for Raft's own entries.
pub(super) fn entry_size<M: StateMachine>(e: &LogEntry<M::Command>) -> u64 {
    const ENTRY_OVERHEAD: u64 = 32;
    ENTRY_OVERHEAD + e.payload.command().map_or(0, M::command_size)
}
