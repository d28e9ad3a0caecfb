//! What a leader knows about one member's log, as a small state machine with named
//! transitions (etcd-io/raft `tracker/progress.go`; the diagram is in
//! docs/progress-states.md):
//!
//! | from | to | when |
//! |---|---|---|
//! | Probe | Replicate | an AppendEntries is accepted |
//! | Replicate | Probe | a rejection, or the window is still full when the heartbeat fires |
//! | any | Snapshot | the entry before `next_index` was compacted: the snapshot is sent |
//! | Snapshot | Probe | the snapshot is installed, or the follower was silent for `Config::snapshot_abandon_after` |
//! | Snapshot | Replicate | an AppendEntries is accepted at or past the snapshot's index |
//!
//! - **Probe**: where the follower's log stops matching ours is unknown. One AppendEntries at
//!   a time; the next waits for its answer (or the next heartbeat).
//! - **Replicate**: the follower matches `match_index`. Entries stream, `next_index` moving as
//!   they are sent, within the [`Inflights`] window.
//! - **Snapshot**: the follower needs entries we compacted; a snapshot is on its way, chunk by
//!   chunk ([`SnapshotSend`]).

use super::inflights::Inflights;
use crate::raft::{Index, Millis};

/// How the leader feeds one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// Find the match point, one message at a time.
    Probe,
    /// Stream entries optimistically.
    Replicate,
    /// A snapshot covering `index` is being sent since `sent_at`, chunk by chunk (the
    /// transfer is [`Progress::snapshot_send`]). Rejections of heartbeats are expected
    /// meanwhile.
    Snapshot {
        /// The snapshot's last index.
        index: Index,
        /// When its transfer started.
        sent_at: Millis,
    },
}

impl ProgressState {
    /// `probe`, `replicate` or `snapshot`, for status pages.
    pub fn name(&self) -> &'static str {
        match self {
            ProgressState::Probe => "probe",
            ProgressState::Replicate => "replicate",
            ProgressState::Snapshot { .. } => "snapshot",
        }
    }
}

/// One member's progress, as the leader sees it. The leader has one for itself too: its
/// `match_index` is how far its own log is durable.
#[derive(Clone, Debug)]
pub struct Progress {
    /// The highest index known to be stored on the member. Never decreases within a term.
    pub match_index: Index,
    /// The next entry to send. Invariant: `match_index < next_index`.
    pub next_index: Index,
    /// How entries are sent.
    pub state: ProgressState,
    /// In Probe: a probe is out and unanswered.
    pub probe_sent: bool,
    /// In Replicate: the messages sent and not yet acknowledged.
    pub inflights: Inflights,
    /// When the member last answered in this term (check-quorum); `Millis::MAX` for the
    /// leader itself, which is always in touch with itself.
    pub last_ack: Millis,
    /// The highest ReadIndex round the member acknowledged.
    pub read_ack: u64,
    /// The latest send time (the leader's clock) of an AppendEntries the member answered in
    /// this term: the lease runs from the quorum's value. 0 before any answer (no lease);
    /// `Millis::MAX` for the leader itself, like `last_ack`. Invariant: for every other member
    /// at most the leader's latest time.
    pub lease_ack: Millis,
    /// In Snapshot: the transfer. Invariant: `Some` exactly in Snapshot state.
    pub snapshot_send: Option<SnapshotSend>,
    /// When the member last answered a snapshot chunk in this term (or, before any answer, when
    /// the first transfer to it started): a transfer whose member has been silent longer than
    /// [`Config::snapshot_abandon_after`](crate::raft::Config::snapshot_abandon_after) no
    /// longer keeps the leader from replacing its snapshot.
    pub snapshot_heard: Option<Millis>,
}

/// One snapshot transfer to one follower: the leader's side of the chunk protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotSend {
    /// The snapshot's last index and term.
    pub index: Index,
    /// Its term.
    pub term: crate::raft::Term,
    /// Its size in bytes.
    pub size: u64,
    /// Its CRC-32.
    pub checksum: u32,
    /// The follower holds every byte before this.
    pub acked: u64,
    /// The next byte to send. Invariant: `acked <= next <= size`.
    pub next: u64,
    /// The chunk ending at `size` (the one marked done) went out since the last rewind.
    pub final_sent: bool,
    /// Chunks sent and not acknowledged: (offset, length, when sent), by offset. Invariant: at
    /// most the window, contiguous from `acked` (or later, after the follower jumped ahead) up
    /// to `next`.
    pub inflight: std::collections::VecDeque<(u64, u64, Millis)>,
    /// The offset the last fast rewind went back to (one per offset: several chunks past a
    /// lost one each draw the same answer, and only the first sends the window again).
    pub rewound_to: Option<u64>,
    /// When the transfer started.
    pub started: Millis,
    /// Chunks sent (for tests and statistics).
    pub chunks_sent: u64,
    /// Bytes sent (for tests and statistics).
    pub bytes_sent: u64,
}

impl SnapshotSend {
    /// Bytes in chunks sent and not acknowledged.
    pub fn inflight_bytes(&self) -> u64 {
        self.inflight.iter().map(|(_, len, _)| len).sum()
    }

    /// Sends again from `offset` (the follower holds everything before it): what is in flight
    /// is forgotten; answers to it are still taken.
    pub fn rewind(&mut self, offset: u64) {
        debug_assert!(offset <= self.size);
        self.acked = offset;
        self.next = offset;
        self.final_sent = false;
        self.inflight.clear();
    }

    /// The follower holds every byte before `offset` (its answer): chunks up to it leave the
    /// window; an offset past what we sent (it had them from an earlier transfer) moves the
    /// next chunk there.
    pub fn acknowledge(&mut self, offset: u64) {
        debug_assert!(offset <= self.size);
        self.acked = self.acked.max(offset);
        self.inflight.retain(|(o, len, _)| o + len > offset);
        if self.next < self.acked {
            self.rewind(self.acked);
        }
        self.check();
    }

    /// Asserts the invariants documented on the fields.
    pub fn check(&self) {
        debug_assert!(
            self.acked <= self.next && self.next <= self.size,
            "snapshot transfer offsets out of order: {self:?}"
        );
    }
}

impl Progress {
    /// Fresh progress at the start of a term: optimistic `next_index`, nothing matched, in
    /// probe, counted as heard from `now` (a grace period for check-quorum).
    pub fn new(next_index: Index, now: Millis, inflights: Inflights) -> Self {
        debug_assert!(next_index >= 1);
        Progress {
            match_index: 0,
            next_index,
            state: ProgressState::Probe,
            probe_sent: false,
            inflights,
            last_ack: now,
            read_ack: 0,
            lease_ack: 0,
            snapshot_send: None,
            snapshot_heard: None,
        }
    }

    /// Back to probing (after a rejection, a snapshot answered, or a window that never
    /// drained): the next message goes right after the known match point or `next_index`.
    pub fn become_probe(&mut self) {
        self.state = ProgressState::Probe;
        self.snapshot_send = None;
        self.probe_sent = false;
        self.inflights.reset();
        self.check();
    }

    /// Streaming: the follower accepted an AppendEntries.
    pub fn become_replicate(&mut self) {
        if self.state != ProgressState::Replicate {
            self.state = ProgressState::Replicate;
            self.snapshot_send = None;
            self.inflights.reset();
        }
        self.next_index = self.next_index.max(self.match_index + 1);
        self.check();
    }

    /// A snapshot covering `index` was sent at `now`: as if it arrived, heartbeats meanwhile
    /// probe right after it.
    pub fn become_snapshot(&mut self, send: SnapshotSend, now: Millis) {
        let index = send.index;
        self.state = ProgressState::Snapshot {
            index,
            sent_at: now,
        };
        self.snapshot_heard.get_or_insert(now);
        self.snapshot_send = Some(send);
        self.probe_sent = false;
        self.inflights.reset();
        self.next_index = self.next_index.max(index + 1);
        self.check();
    }

    /// The member stores everything up to `index`. Returns whether `match_index` moved.
    /// Acknowledged messages leave the window.
    pub fn maybe_update(&mut self, index: Index) -> bool {
        let updated = index > self.match_index;
        if updated {
            self.match_index = index;
            self.probe_sent = false;
        }
        self.next_index = self.next_index.max(self.match_index + 1);
        self.inflights.free_to(self.match_index);
        self.check();
        updated
    }

    /// The member rejected an AppendEntries: move `next_index` back to `hint` (from its
    /// conflict hints), never forward, never at or below what is known to match, never past
    /// `last_index + 1`. Returns false (and changes nothing) while a snapshot is pending, when
    /// rejections of heartbeats are expected.
    pub fn maybe_decrease_to(&mut self, hint: Index, last_index: Index) -> bool {
        if matches!(self.state, ProgressState::Snapshot { .. }) {
            return false;
        }
        self.next_index = hint
            .min(self.next_index)
            .min(last_index + 1)
            .max(self.match_index + 1);
        self.check();
        true
    }

    /// Whether nothing new should be sent now (heartbeats still go).
    pub fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflights.full(),
            ProgressState::Snapshot { .. } => true,
        }
    }

    /// An AppendEntries whose entries end at `last` (`bytes` of them; none when `last` is
    /// `next_index - 1`) went out.
    pub fn sent(&mut self, last: Index, bytes: u64) {
        match self.state {
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Replicate => {
                if last >= self.next_index {
                    self.next_index = last + 1;
                    self.inflights.add(last, bytes);
                }
            }
            ProgressState::Snapshot { .. } => {}
        }
        self.check();
    }

    fn check(&self) {
        debug_assert!(
            self.match_index < self.next_index,
            "progress invariant match < next broken: {self:?}"
        );
        debug_assert_eq!(
            self.snapshot_send.is_some(),
            matches!(self.state, ProgressState::Snapshot { .. }),
            "a transfer exactly in Snapshot state"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(index: Index) -> SnapshotSend {
        SnapshotSend {
            index,
            term: 1,
            size: 10,
            checksum: 0,
            acked: 0,
            next: 0,
            final_sent: false,
            inflight: Default::default(),
            rewound_to: None,
            started: 7,
            chunks_sent: 0,
            bytes_sent: 0,
        }
    }

    fn fresh(next: Index) -> Progress {
        Progress::new(next, 0, Inflights::new(2, 0))
    }

    #[test]
    fn probe_sends_one_message_until_it_is_answered() {
        let mut p = fresh(11);
        assert!(!p.is_paused());
        p.sent(12, 10);
        assert!(p.is_paused());
        assert_eq!(p.next_index, 11, "a probe does not move next_index");
        assert!(p.maybe_update(12));
        assert!(!p.is_paused());
    }

    #[test]
    fn replicate_moves_next_as_it_sends_and_pauses_on_a_full_window() {
        let mut p = fresh(11);
        p.maybe_update(10);
        p.become_replicate();
        p.sent(15, 50);
        assert_eq!(p.next_index, 16);
        p.sent(20, 50);
        assert!(p.is_paused(), "two messages fill a window of two");
        p.maybe_update(15);
        assert!(!p.is_paused());
        assert_eq!((p.match_index, p.next_index), (15, 21));
    }

    #[test]
    fn rejection_moves_next_back_but_never_below_the_match_point() {
        let mut p = fresh(30);
        p.maybe_update(10);
        assert!(p.maybe_decrease_to(5, 40));
        assert_eq!(p.next_index, 11);
        assert!(p.maybe_decrease_to(100, 40), "never forward");
        assert_eq!(p.next_index, 11);
    }

    #[test]
    fn snapshot_pauses_and_ignores_rejections_until_answered() {
        let mut p = fresh(5);
        p.become_snapshot(send(100), 7);
        assert!(p.is_paused());
        assert_eq!(p.next_index, 101);
        assert!(!p.maybe_decrease_to(3, 200));
        assert_eq!(p.next_index, 101);
        p.maybe_update(100);
        p.become_probe();
        assert_eq!((p.match_index, p.next_index), (100, 101));
        assert!(!p.is_paused());
    }
}
