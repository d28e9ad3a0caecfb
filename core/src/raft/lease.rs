//! Lease reads: a leader that a quorum acknowledged recently knows nobody else can lead yet,
//! and answers a read from its own state without a confirmation round (Raft thesis §6.4.1;
//! docs/leadership-transfer-and-lease.md in the repository).
//!
//! The lease starts at the **send time** of the latest AppendEntries a quorum answered
//! ([`Tracker::lease_start`](super::tracker::Tracker::lease_start), from the `sent_at` each
//! answer echoes) and lasts `election_timeout_min - lease_drift_margin` of the leader's clock.
//! Why that is safe: with check-quorum every follower that answered refuses votes until an
//! election timeout after it last heard the leader, which is after the send time, so no other
//! node can win an election before the lease ends, if clocks drift apart by less than the
//! margin over that time. A restarted follower, which has forgotten when it heard the leader,
//! refuses votes for an election timeout after it starts (the vote barrier in `check_term`).
//!
//! No lease is served without check-quorum, before an entry of the leader's term is committed
//! (its commit index may lag what an earlier leader committed), while a leadership transfer is
//! pending, or once TimeoutNow has left in this term: the target's votes skip stickiness.

use super::node::Node;
use super::{Config, Index, Millis};
use crate::state_machine::StateMachine;

impl<M: StateMachine> Node<M> {
    /// The read index of a lease read at `now`, if this leader holds a valid lease: the host
    /// answers once `last_applied() >= index`. `None` when there is no lease (not leading, no
    /// entry of this term committed, a transfer pending or TimeoutNow sent in this term, the
    /// lease expired, check-quorum off, a drift margin that leaves no lease): read with
    /// [`read_index`](Self::read_index) instead.
    pub fn read_lease(&self, now: Millis) -> Option<Index> {
        let until = self.lease_end()?;
        (now < until).then_some(self.commit_index)
    }

    /// Until when (this node's clock) the lease lasts, if it holds one at the latest time it
    /// was given.
    pub fn lease_until(&self) -> Option<Millis> {
        self.lease_end().filter(|until| self.now < *until)
    }

    /// When the current lease ends, expired or not, if this leader may hold one at all.
    fn lease_end(&self) -> Option<Millis> {
        let ls = self.leader.as_ref()?;
        if !self.cfg.check_quorum || ls.transfer.is_some() || ls.timeout_now_sent {
            return None;
        }
        if !self.committed_in_current_term().unwrap_or(false) {
            return None;
        }
        let length = lease_length(&self.cfg)?;
        let start = self.tracker.lease_start();
        // 0: no quorum answered an AppendEntries that carried its send time.
        (start > 0).then(|| start.saturating_add(length))
    }
}

/// How long a lease lasts from its start: `election_timeout_min - lease_drift_margin`, or
/// `None` when the margin leaves nothing (a lease is then never served). With the
/// `lease_without_drift_margin` break, the whole `election_timeout_min`.
pub(super) fn lease_length(cfg: &Config) -> Option<Millis> {
    #[cfg(feature = "protocol-breaks")]
    if cfg.breaks.lease_without_drift_margin {
        return Some(cfg.election_timeout_min);
    }
    cfg.election_timeout_min
        .checked_sub(cfg.lease_drift_margin)
        .filter(|l| *l > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::NodeId;

    fn cfg(eto_min: Millis, margin: Millis) -> Config {
        let mut c = Config::new(NodeId::from("n1"), vec![NodeId::from("n1")]);
        c.election_timeout_min = eto_min;
        c.election_timeout_max = eto_min * 2;
        c.lease_drift_margin = margin;
        c
    }

    #[test]
    fn lease_lasts_the_election_timeout_less_the_drift_margin_and_never_with_no_room_left() {
        assert_eq!(lease_length(&cfg(150, 30)), Some(120));
        assert_eq!(lease_length(&cfg(150, 0)), Some(150));
        assert_eq!(lease_length(&cfg(150, 149)), Some(1));
        assert_eq!(lease_length(&cfg(150, 150)), None);
        assert_eq!(lease_length(&cfg(150, 1_000)), None);
    }

    #[cfg(feature = "protocol-breaks")]
    #[test]
    fn lease_without_drift_margin_break_lengthens_the_lease_to_the_election_timeout() {
        for margin in [30, 150, 1_000] {
            let mut c = cfg(150, margin);
            let honest = lease_length(&c);
            c.breaks.lease_without_drift_margin = true;
            assert_eq!(lease_length(&c), Some(150), "margin {margin}");
            assert_ne!(lease_length(&c), honest, "margin {margin}");
        }
    }
}
