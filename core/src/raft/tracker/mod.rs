//! The leader's view of every member: the voter configuration (joint-capable), the learners,
//! and a [`Progress`] for each member, the leader included. Every quorum decision of the node
//! goes through here, and from here through [`quorum`](super::quorum): the commit index, the
//! confirmed ReadIndex round, whether a quorum was active since a time, and vote counting.
//! (Modelled on etcd-io/raft `tracker/tracker.go`.)

pub mod inflights;
pub mod progress;

use std::collections::{BTreeMap, BTreeSet};

pub use inflights::Inflights;
pub use progress::{Progress, ProgressState, SnapshotSend};

use super::quorum::{JointConfig, VoteResult};
use super::{Index, Millis};
use crate::types::NodeId;

/// Members and their progress.
#[derive(Clone, Debug)]
pub struct Tracker {
    /// Who votes. Invariant: not empty, unless the node has no configuration yet (it joins
    /// a running cluster) and then there are no learners either.
    voters: JointConfig,
    /// Who receives the log without voting. Invariant: disjoint from `voters`.
    learners: BTreeSet<NodeId>,
    /// One entry per member (voters and learners), reset when this node becomes leader.
    /// Meaningful only while leading. Invariant: keys are exactly the members.
    progress: BTreeMap<NodeId, Progress>,
}

impl Tracker {
    /// A tracker for a plain configuration of `voters`, with fresh progress.
    pub fn new(voters: JointConfig, learners: BTreeSet<NodeId>) -> Self {
        let mut t = Tracker {
            voters,
            learners,
            progress: BTreeMap::new(),
        };
        t.reset_progress(1, 0, Inflights::new(1, 0));
        t.check();
        t
    }

    /// Switches to a new configuration. Members that stay keep their progress; new ones get
    /// `fresh` (a leader sends them entries from its log's end and backs off from there).
    pub fn set_config(
        &mut self,
        voters: JointConfig,
        learners: BTreeSet<NodeId>,
        fresh: impl Fn() -> Progress,
    ) {
        let mut progress = std::mem::take(&mut self.progress);
        self.progress = voters
            .ids()
            .into_iter()
            .chain(learners.iter().cloned())
            .map(|id| {
                let pr = progress.remove(&id).unwrap_or_else(&fresh);
                (id, pr)
            })
            .collect();
        self.voters = voters;
        self.learners = learners;
        self.check();
    }

    /// The learners.
    pub fn learners(&self) -> &BTreeSet<NodeId> {
        &self.learners
    }

    /// The voters.
    pub fn voters(&self) -> &JointConfig {
        &self.voters
    }

    /// Whether `id` is a member (voter or learner).
    pub fn is_member(&self, id: &NodeId) -> bool {
        self.voters.contains(id) || self.learners.contains(id)
    }

    /// Every member except `me`, in order.
    pub fn peers_of(&self, me: &NodeId) -> Vec<NodeId> {
        self.progress
            .keys()
            .filter(|id| *id != me)
            .cloned()
            .collect()
    }

    /// Fresh progress for every member (a new term's leader): `next_index` optimistic,
    /// nothing matched, everyone counted as heard from `now`.
    pub fn reset_progress(&mut self, next_index: Index, now: Millis, window: Inflights) {
        let members: Vec<NodeId> = self
            .voters
            .ids()
            .into_iter()
            .chain(self.learners.iter().cloned())
            .collect();
        self.progress = members
            .into_iter()
            .map(|id| (id, Progress::new(next_index, now, window.clone())))
            .collect();
    }

    /// Asserts the invariants on the fields (debug builds).
    pub fn check(&self) {
        debug_assert!(
            !self.voters.ids().is_empty() || self.learners.is_empty(),
            "a configuration needs a voter"
        );
        debug_assert!(self.voters.ids().is_disjoint(&self.learners));
        debug_assert!(
            self.progress
                .keys()
                .all(|id| self.voters.contains(id) || self.learners.contains(id))
                && self.progress.len() == self.voters.ids().len() + self.learners.len(),
            "progress is kept for exactly the members"
        );
    }

    /// A member's progress.
    pub fn progress(&self, id: &NodeId) -> Option<&Progress> {
        self.progress.get(id)
    }

    /// A member's progress, to change it through its transitions.
    pub fn progress_mut(&mut self, id: &NodeId) -> Option<&mut Progress> {
        self.progress.get_mut(id)
    }

    /// The highest index stored on a quorum of voters.
    pub fn committed(&self) -> Index {
        self.voters
            .committed_index(|id| self.progress.get(id).map(|p| p.match_index))
    }

    /// The highest ReadIndex round a quorum of voters acknowledged.
    pub fn read_confirmed(&self) -> u64 {
        self.voters
            .committed_index(|id| self.progress.get(id).map(|p| p.read_ack))
    }

    /// The time since which a quorum of voters has answered: the leader is sure nobody else
    /// leads until an election timeout after it. `Millis::MAX` when the leader alone is a
    /// quorum.
    pub fn quorum_active_since(&self) -> Millis {
        self.voters
            .committed_index(|id| self.progress.get(id).map(|p| p.last_ack))
    }

    /// The latest send time such that a quorum of voters (in both halves of a joint
    /// configuration) answered an AppendEntries sent at or after it: the start of the leader's
    /// read lease. 0 while no quorum answered one; `Millis::MAX` when the leader alone is a
    /// quorum.
    pub fn lease_start(&self) -> Millis {
        self.voters
            .committed_index(|id| self.progress.get(id).map(|p| p.lease_ack))
    }

    /// Counts ballots (`true` granted).
    pub fn vote_result(&self, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
        self.voters.vote_result(votes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(n: usize) -> Tracker {
        let ids = (1..=n).map(|i| NodeId::from(format!("n{i}").as_str()));
        Tracker::new(JointConfig::simple(ids), BTreeSet::new())
    }

    #[test]
    fn tracker_commits_what_a_majority_of_voters_stored_counting_the_leader() {
        let mut t = tracker(3);
        for (id, m) in [("n1", 9), ("n2", 4), ("n3", 2)] {
            t.progress_mut(&NodeId::from(id)).unwrap().maybe_update(m);
        }
        assert_eq!(t.committed(), 4);
    }

    #[test]
    fn tracker_quorum_active_since_is_the_oldest_answer_among_the_freshest_quorum() {
        let mut t = tracker(5);
        for (id, at) in [
            ("n1", Millis::MAX),
            ("n2", 50),
            ("n3", 40),
            ("n4", 10),
            ("n5", 0),
        ] {
            t.progress_mut(&NodeId::from(id)).unwrap().last_ack = at;
        }
        assert_eq!(t.quorum_active_since(), 40);
        let lone = tracker(1);
        let mut lone = lone;
        lone.progress_mut(&NodeId::from("n1")).unwrap().last_ack = Millis::MAX;
        assert_eq!(lone.quorum_active_since(), Millis::MAX);
    }

    #[test]
    fn tracker_lease_start_is_the_send_time_a_quorum_of_each_half_answered() {
        let mut t = tracker(3);
        for (id, at) in [("n1", Millis::MAX), ("n2", 50), ("n3", 0)] {
            t.progress_mut(&NodeId::from(id)).unwrap().lease_ack = at;
        }
        assert_eq!(t.lease_start(), 50);
        t.progress_mut(&NodeId::from("n2")).unwrap().lease_ack = 0;
        assert_eq!(t.lease_start(), 0, "the leader alone is no quorum of three");

        // Joint: n1 leads {n1, n2, n3} -> {n3, n4, n5}; both halves need a majority.
        let ids = |s: &str| s.split(' ').map(NodeId::from).collect::<Vec<_>>();
        let mut t = Tracker::new(
            JointConfig::joint(ids("n3 n4 n5"), ids("n1 n2 n3")),
            BTreeSet::new(),
        );
        for (id, at) in [
            ("n1", Millis::MAX),
            ("n2", 90),
            ("n3", 10),
            ("n4", 70),
            ("n5", 0),
        ] {
            t.progress_mut(&NodeId::from(id)).unwrap().lease_ack = at;
        }
        // The outgoing half reached 90, the incoming one only 10.
        assert_eq!(t.lease_start(), 10);
    }
}
