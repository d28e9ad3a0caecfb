//! The leader's side of replication: per-follower progress, sending AppendEntries (or a
//! snapshot), handling the answers with fast backtracking, heartbeats, check-quorum, and the
//! commit rule.

use std::collections::BTreeMap;

use super::node::Node;
use super::{
    AppendEntries, AppendEntriesResponse, Config, Index, InstallSnapshot, Message, Millis, NodeId,
    RaftError, StorageError, Transport,
};
use crate::state_machine::StateMachine;

/// How the leader feeds one follower (etcd's progress states).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// We do not know where the follower's log stops matching ours: one AppendEntries at a
    /// time, then wait for its answer (or the next heartbeat) before sending another.
    Probe {
        /// Whether a probe is out and unanswered.
        in_flight: bool,
    },
    /// The follower matches `match_index`: stream entries, advancing `next_index` as they are
    /// sent rather than as they are acknowledged.
    Replicate,
    /// The follower needs entries we compacted: a snapshot covering `index` went out at
    /// `sent_at`. Rejections of heartbeats are expected meanwhile and ignored.
    Snapshot {
        /// The snapshot's last index.
        index: Index,
        /// When it was sent; it is resent after an election timeout without an answer.
        sent_at: Millis,
    },
}

/// What the leader knows about one follower.
#[derive(Clone, Copy, Debug)]
pub(super) struct Progress {
    /// The next entry to send. Invariant: match_index < next_index <= last_index + 1.
    pub(super) next_index: Index,
    /// The highest index known to be stored on the follower. Never decreases within a term.
    pub(super) match_index: Index,
    /// How entries are sent to it.
    pub(super) mode: Mode,
    /// When it last answered us in this term (check-quorum).
    pub(super) last_ack: Millis,
    /// The highest ReadIndex round it acknowledged.
    pub(super) read_ack: u64,
}

/// Everything only a leader keeps.
#[derive(Clone, Debug)]
pub(super) struct LeaderState {
    /// One entry per follower (every voter but the leader).
    pub(super) progress: BTreeMap<NodeId, Progress>,
    /// When the next round of heartbeats is due.
    pub(super) heartbeat_deadline: Millis,
    /// ReadIndex bookkeeping.
    pub(super) reads: super::read::ReadState,
}

impl LeaderState {
    /// Fresh progress for a new term: optimistic `next_index`, nothing matched, and every
    /// follower counted as heard from now (a grace period for check-quorum).
    pub(super) fn new(peers: Vec<NodeId>, next_index: Index, now: Millis, cfg: &Config) -> Self {
        let progress = peers
            .into_iter()
            .map(|p| {
                let pr = Progress {
                    next_index,
                    match_index: 0,
                    mode: Mode::Probe { in_flight: false },
                    last_ack: now,
                    read_ack: 0,
                };
                (p, pr)
            })
            .collect();
        LeaderState {
            progress,
            heartbeat_deadline: now.saturating_add(cfg.heartbeat_interval),
            reads: super::read::ReadState::default(),
        }
    }

    /// When the leader stops having heard from a majority within an election timeout, unless
    /// more answers come: the oldest answer among the freshest quorum, plus the timeout.
    /// `None` when the leader alone is a majority.
    pub(super) fn quorum_deadline(&self, cfg: &Config) -> Option<Millis> {
        let needed = cfg.voters.len() / 2; // followers needed besides the leader
        if needed == 0 {
            return None;
        }
        let mut acks: Vec<Millis> = self.progress.values().map(|p| p.last_ack).collect();
        acks.sort_unstable_by(|a, b| b.cmp(a));
        acks.get(needed - 1)
            .map(|t| t.saturating_add(cfg.election_timeout_min))
    }

    /// Whether a majority answered within the last election timeout.
    pub(super) fn quorum_active(&self, now: Millis, cfg: &Config) -> bool {
        self.quorum_deadline(cfg).is_none_or(|d| now < d)
    }

    /// When the leader must be ticked next: a heartbeat, a check-quorum point, or a read that
    /// times out.
    pub(super) fn next_deadline(&self, cfg: &Config) -> Millis {
        let mut d = self.heartbeat_deadline;
        if cfg.check_quorum
            && let Some(q) = self.quorum_deadline(cfg)
        {
            d = d.min(q);
        }
        if let Some(r) = self.reads.next_deadline() {
            d = d.min(r);
        }
        d
    }

    /// The check-quorum window for status pages: (start, end).
    pub(super) fn quorum_window(&self, cfg: &Config) -> (Millis, Millis) {
        match self.quorum_deadline(cfg) {
            Some(d) => (d.saturating_sub(cfg.election_timeout_min), d),
            None => (
                self.heartbeat_deadline
                    .saturating_sub(cfg.heartbeat_interval),
                self.heartbeat_deadline,
            ),
        }
    }
}

impl<M: StateMachine> Node<M> {
    /// The leader's timer: check-quorum first (a leader cut off from a majority steps down),
    /// then reads that waited too long, then heartbeats.
    pub(super) fn tick_leader(
        &mut self,
        now: Millis,
        out: &mut impl Transport,
    ) -> Result<(), RaftError> {
        if self.cfg.check_quorum && !self.in_leader_lease(now) {
            return self.become_follower(now, self.term, None);
        }
        self.expire_reads(now);
        let due = self
            .leader
            .as_ref()
            .is_some_and(|ls| now >= ls.heartbeat_deadline);
        if due {
            if let Some(ls) = self.leader.as_mut() {
                ls.heartbeat_deadline = now.saturating_add(self.cfg.heartbeat_interval);
            }
            self.broadcast_append(now, true, out)?;
        }
        Ok(())
    }

    /// After the leader appended entries: send them, and commit at once if it is alone.
    pub(super) fn replicate_new_entries(
        &mut self,
        now: Millis,
        out: &mut impl Transport,
    ) -> Result<(), RaftError> {
        self.broadcast_append(now, false, out)?;
        self.maybe_commit()
    }

    /// Sends to every follower what it needs. A `heartbeat` goes out even when there is
    /// nothing new, so followers keep their leader and learn the commit index.
    pub(super) fn broadcast_append(
        &mut self,
        now: Millis,
        heartbeat: bool,
        out: &mut impl Transport,
    ) -> Result<(), RaftError> {
        for peer in self.peers() {
            self.replicate_to_peer(now, &peer, heartbeat, out)?;
        }
        Ok(())
    }

    /// Sends one follower what its progress calls for, if anything.
    pub(super) fn replicate_to_peer(
        &mut self,
        now: Millis,
        peer: &NodeId,
        heartbeat: bool,
        out: &mut impl Transport,
    ) -> Result<(), RaftError> {
        let Some(pr) = self.progress(peer) else {
            return Ok(());
        };
        match pr.mode {
            Mode::Snapshot { sent_at, .. } if heartbeat => {
                if now >= sent_at.saturating_add(self.cfg.election_timeout_min) {
                    self.send_snapshot(now, peer, out)
                } else {
                    self.send_append(now, peer, false, out)
                }
            }
            Mode::Snapshot { .. } | Mode::Probe { in_flight: true } if !heartbeat => Ok(()),
            Mode::Replicate if !heartbeat && pr.next_index > self.last_index() => Ok(()),
            _ => self.send_append(now, peer, true, out),
        }
    }

    /// Sends an AppendEntries starting at the follower's `next_index` (with up to
    /// `max_entries_per_append` entries when `with_entries`), or the snapshot when the entry
    /// before it was compacted.
    fn send_append(
        &mut self,
        now: Millis,
        peer: &NodeId,
        with_entries: bool,
        out: &mut impl Transport,
    ) -> Result<(), RaftError> {
        let Some(mut pr) = self.progress(peer) else {
            return Ok(());
        };
        let prev_log_index = pr.next_index - 1;
        let prev_log_term = match self.stores.log.term_at(prev_log_index) {
            Ok(t) => t,
            Err(StorageError::Compacted(_)) => return self.send_snapshot(now, peer, out),
            Err(e) => return Err(e.into()),
        };
        let last = self.last_index();
        let hi = if with_entries {
            last.min(prev_log_index.saturating_add(self.cfg.max_entries_per_append as Index))
        } else {
            prev_log_index
        };
        let entries = match self.stores.log.read_range(pr.next_index, hi + 1) {
            Ok(e) => e,
            Err(StorageError::Compacted(_)) => return self.send_snapshot(now, peer, out),
            Err(e) => return Err(e.into()),
        };
        match pr.mode {
            Mode::Probe { .. } => pr.mode = Mode::Probe { in_flight: true },
            // Optimistic: assume these arrive; a rejection sends us back to probing.
            Mode::Replicate => pr.next_index = hi + 1,
            Mode::Snapshot { .. } => {}
        }
        self.set_progress(peer, pr);
        let msg = AppendEntries {
            term: self.term,
            leader_id: self.cfg.id.clone(),
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit: self.commit_index,
            read_seq: self.current_read_seq(),
        };
        out.send(peer, Message::AppendEntries(msg));
        Ok(())
    }

    /// Sends the latest snapshot to a follower that needs compacted entries.
    pub(super) fn send_snapshot(
        &mut self,
        now: Millis,
        peer: &NodeId,
        out: &mut impl Transport,
    ) -> Result<(), RaftError> {
        let Some(mut pr) = self.progress(peer) else {
            return Ok(());
        };
        let Some((meta, data)) = self.stores.snapshot.load()? else {
            return Err(RaftError::Corrupt(
                "the log is compacted but there is no snapshot".into(),
            ));
        };
        pr.mode = Mode::Snapshot {
            index: meta.last_included_index,
            sent_at: now,
        };
        // As if the snapshot arrived: heartbeats meanwhile probe right after it.
        pr.next_index = pr.next_index.max(meta.last_included_index + 1);
        self.set_progress(peer, pr);
        let msg = InstallSnapshot {
            term: self.term,
            leader_id: self.cfg.id.clone(),
            last_included_index: meta.last_included_index,
            last_included_term: meta.last_included_term,
            data,
        };
        out.send(peer, Message::InstallSnapshot(msg));
        Ok(())
    }

    /// A follower's answer to AppendEntries.
    pub(super) fn handle_append_response(
        &mut self,
        now: Millis,
        from: &NodeId,
        m: AppendEntriesResponse,
        out: &mut impl Transport,
    ) -> Result<(), RaftError> {
        let Some(mut pr) = self.progress(from) else {
            return Ok(());
        };
        pr.last_ack = now;
        pr.read_ack = pr.read_ack.max(m.read_seq.min(self.current_read_seq()));
        self.set_progress(from, pr);
        if m.success {
            self.on_append_success(now, from, m.match_index, out)?;
        } else {
            self.on_append_rejected(now, from, &m, out)?;
        }
        self.confirm_reads();
        Ok(())
    }

    /// The follower stores everything up to `match_index`: record it, maybe commit, and send
    /// what comes next.
    fn on_append_success(
        &mut self,
        now: Millis,
        from: &NodeId,
        match_index: Index,
        out: &mut impl Transport,
    ) -> Result<(), RaftError> {
        let Some(mut pr) = self.progress(from) else {
            return Ok(());
        };
        if match_index > self.last_index() {
            return Ok(()); // Claims entries we never had: not from a follower of ours.
        }
        pr.match_index = pr.match_index.max(match_index);
        pr.next_index = pr.next_index.max(pr.match_index + 1);
        pr.mode = match pr.mode {
            Mode::Snapshot { index, .. } if pr.match_index < index => pr.mode,
            _ => Mode::Replicate,
        };
        self.set_progress(from, pr);
        self.maybe_commit()?;
        self.replicate_to_peer(now, from, false, out)
    }

    /// The follower's log does not match at `next_index - 1`: move `next_index` back using
    /// its hints (a whole conflicting term per round trip), then probe again.
    fn on_append_rejected(
        &mut self,
        now: Millis,
        from: &NodeId,
        m: &AppendEntriesResponse,
        out: &mut impl Transport,
    ) -> Result<(), RaftError> {
        let Some(mut pr) = self.progress(from) else {
            return Ok(());
        };
        if matches!(pr.mode, Mode::Snapshot { .. }) {
            return Ok(()); // Expected until the snapshot is installed.
        }
        let hint = self.next_index_hint(m, &pr)?;
        // Never forward, never at or below what is known to match, never past our log.
        pr.next_index = hint
            .min(pr.next_index)
            .min(self.last_index() + 1)
            .max(pr.match_index + 1);
        pr.mode = Mode::Probe { in_flight: false };
        self.set_progress(from, pr);
        self.send_append(now, from, true, out)
    }

    /// Fast backtracking: if we have entries of the follower's conflicting term, retry right
    /// after our last one of that term; otherwise skip the follower's whole term (or, without
    /// a term, retry at the end of its log).
    fn next_index_hint(
        &self,
        m: &AppendEntriesResponse,
        pr: &Progress,
    ) -> Result<Index, RaftError> {
        let fallback = m.conflict_index.unwrap_or(pr.next_index.saturating_sub(1));
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
            let mid = lo + (hi - lo).div_ceil(2);
            if self.term_at(mid)? <= t {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Ok((self.term_at(lo)? == t).then_some(lo))
    }

    /// The commit rule: the highest index stored on a majority is committed, but only if its
    /// entry is from the current term (entries of earlier terms are committed with it,
    /// indirectly; counting them directly is the figure 8 bug).
    pub(super) fn maybe_commit(&mut self) -> Result<(), RaftError> {
        let Some(ls) = &self.leader else {
            return Ok(());
        };
        let mut matches: Vec<Index> = ls.progress.values().map(|p| p.match_index).collect();
        matches.push(self.last_index());
        matches.sort_unstable_by(|a, b| b.cmp(a));
        let Some(&n) = matches.get(self.quorum() - 1) else {
            return Ok(());
        };
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

    /// A copy of a follower's progress.
    pub(super) fn progress(&self, peer: &NodeId) -> Option<Progress> {
        self.leader.as_ref()?.progress.get(peer).copied()
    }

    /// Writes back a follower's progress.
    pub(super) fn set_progress(&mut self, peer: &NodeId, pr: Progress) {
        if let Some(slot) = self
            .leader
            .as_mut()
            .and_then(|ls| ls.progress.get_mut(peer))
        {
            *slot = pr;
        }
    }

    /// Leaves the leader role: reads waiting for confirmation can no longer be answered here.
    pub(super) fn step_down_as_leader(&mut self) {
        self.fail_pending_reads();
        self.leader = None;
    }
}
