//! What a leader knows about one member's log, as a small state machine with named
//! transitions (etcd-io/raft `tracker/progress.go`; the diagram is in
//! docs/progress-states.md):
//!
//! | from | to | when |
//! |---|---|---|
//! | Probe | Replicate | an AppendEntries is accepted |
//! | Replicate | Probe | a rejection, or the window is still full when the heartbeat fires |
//! | any | Snapshot | the entry before `next_index` was compacted: the snapshot is sent |
//! | Snapshot | Probe | the snapshot is answered |
//! | Snapshot | Replicate | an AppendEntries is accepted at or past the snapshot's index |
//!
//! - **Probe**: where the follower's log stops matching ours is unknown. One AppendEntries at
//!   a time; the next waits for its answer (or the next heartbeat).
//! - **Replicate**: the follower matches `match_index`. Entries stream, `next_index` moving as
//!   they are sent, within the [`Inflights`] window.
//! - **Snapshot**: the follower needs entries we compacted; a snapshot is on its way.

use super::inflights::Inflights;
use crate::raft::{Index, Millis};

/// How the leader feeds one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// Find the match point, one message at a time.
    Probe,
    /// Stream entries optimistically.
    Replicate,
    /// A snapshot covering `index` went out at `sent_at`; it is resent after an election
    /// timeout without an answer. Rejections of heartbeats are expected meanwhile.
    Snapshot {
        /// The snapshot's last index.
        index: Index,
        /// When it was sent.
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
        }
    }

    /// Back to probing (after a rejection, a snapshot answered, or a window that never
    /// drained): the next message goes right after the known match point or `next_index`.
    pub fn become_probe(&mut self) {
        self.state = ProgressState::Probe;
        self.probe_sent = false;
        self.inflights.reset();
        self.check();
    }

    /// Streaming: the follower accepted an AppendEntries.
    pub fn become_replicate(&mut self) {
        if self.state != ProgressState::Replicate {
            self.state = ProgressState::Replicate;
            self.inflights.reset();
        }
        self.next_index = self.next_index.max(self.match_index + 1);
        self.check();
    }

    /// A snapshot covering `index` was sent at `now`: as if it arrived, heartbeats meanwhile
    /// probe right after it.
    pub fn become_snapshot(&mut self, index: Index, now: Millis) {
        self.state = ProgressState::Snapshot {
            index,
            sent_at: now,
        };
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        p.become_snapshot(100, 7);
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
