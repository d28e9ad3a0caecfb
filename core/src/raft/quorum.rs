//! Quorum arithmetic, and nothing else: the one place in core that knows what a majority is.
//!
//! A [`MajorityConfig`] is a set of voters; a [`JointConfig`] is two of them (the incoming and
//! the outgoing configuration during a membership change, Raft thesis §4.3), and a decision
//! needs a majority of *each*. With the outgoing half empty a joint configuration is just its
//! incoming majority, so callers always use [`JointConfig`]. Modelled on etcd-io/raft's
//! `quorum/` package.
//!
//! Three questions are answered, all from per-voter values the caller looks up:
//! - [`JointConfig::committed_index`]: the highest value a quorum has reached (the commit
//!   index from match indices, the confirmed ReadIndex round from acknowledged rounds, and the
//!   time since which a quorum was active from acknowledgement times);
//! - [`JointConfig::vote_result`]: whether an election is won, lost or still open.

use std::collections::{BTreeMap, BTreeSet};

use crate::types::NodeId;

/// Where an election stands after counting the ballots so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// A quorum granted.
    Won,
    /// Enough voters refused that no quorum can grant any more.
    Lost,
    /// Neither yet.
    Pending,
}

/// One set of voters; a decision needs more than half of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MajorityConfig(BTreeSet<NodeId>);

impl MajorityConfig {
    /// The configuration of exactly these voters (duplicates collapse).
    pub fn new(voters: impl IntoIterator<Item = NodeId>) -> Self {
        MajorityConfig(voters.into_iter().collect())
    }

    /// The voters, in order.
    pub fn ids(&self) -> impl Iterator<Item = &NodeId> {
        self.0.iter()
    }

    /// Whether `id` votes here.
    pub fn contains(&self, id: &NodeId) -> bool {
        self.0.contains(id)
    }

    /// How many voters there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no voter.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The largest value `v` such that a majority of voters have a value `>= v`. A voter the
    /// lookup does not know counts as 0. An empty configuration answers `u64::MAX`, so that it
    /// never holds back the other half of a joint configuration.
    pub fn committed_index(&self, acked: impl Fn(&NodeId) -> Option<u64>) -> u64 {
        if self.0.is_empty() {
            return u64::MAX;
        }
        let mut values: Vec<u64> = self.0.iter().map(|id| acked(id).unwrap_or(0)).collect();
        values.sort_unstable_by(|a, b| b.cmp(a));
        // values[q - 1] is reached by the q highest, a majority.
        values[self.0.len() / 2]
    }

    /// The election's state given the ballots: `true` granted, `false` refused, missing not
    /// answered yet. Ballots from non-voters are ignored. An empty configuration wins.
    pub fn vote_result(&self, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
        if self.0.is_empty() {
            return VoteResult::Won;
        }
        let (mut granted, mut missing) = (0, 0);
        for id in &self.0 {
            match votes.get(id) {
                Some(true) => granted += 1,
                Some(false) => {}
                None => missing += 1,
            }
        }
        let quorum = self.0.len() / 2 + 1;
        if granted >= quorum {
            VoteResult::Won
        } else if granted + missing >= quorum {
            VoteResult::Pending
        } else {
            VoteResult::Lost
        }
    }
}

/// Two majority configurations that must both agree: `incoming` alone outside a membership
/// change (`outgoing` empty), both during one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JointConfig {
    /// The configuration being moved to (the only one outside a change).
    pub incoming: MajorityConfig,
    /// The configuration being left; empty outside a change.
    pub outgoing: MajorityConfig,
}

impl JointConfig {
    /// A plain (non-joint) configuration of these voters.
    pub fn simple(voters: impl IntoIterator<Item = NodeId>) -> Self {
        JointConfig {
            incoming: MajorityConfig::new(voters),
            outgoing: MajorityConfig::default(),
        }
    }

    /// A joint configuration: decisions need a majority of `incoming` and of `outgoing`
    /// (an empty `outgoing` makes it a plain configuration).
    pub fn joint(
        incoming: impl IntoIterator<Item = NodeId>,
        outgoing: impl IntoIterator<Item = NodeId>,
    ) -> Self {
        JointConfig {
            incoming: MajorityConfig::new(incoming),
            outgoing: MajorityConfig::new(outgoing),
        }
    }

    /// Whether `id` votes in either half.
    pub fn contains(&self, id: &NodeId) -> bool {
        self.incoming.contains(id) || self.outgoing.contains(id)
    }

    /// Every voter of either half, once each, in order.
    pub fn ids(&self) -> BTreeSet<NodeId> {
        self.incoming
            .ids()
            .chain(self.outgoing.ids())
            .cloned()
            .collect()
    }

    /// The largest value both halves reached (see [`MajorityConfig::committed_index`]).
    pub fn committed_index(&self, acked: impl Fn(&NodeId) -> Option<u64>) -> u64 {
        let a = self.incoming.committed_index(&acked);
        let b = self.outgoing.committed_index(&acked);
        a.min(b)
    }

    /// Won when both halves won, lost when either lost, otherwise pending.
    pub fn vote_result(&self, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
        let a = self.incoming.vote_result(votes);
        let b = self.outgoing.vote_result(votes);
        match (a, b) {
            (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
            (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
            _ => VoteResult::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &str) -> Vec<NodeId> {
        names.split_whitespace().map(NodeId::from).collect()
    }

    /// `"n1=5 n2=3"` as a lookup; voters not listed are unknown.
    fn acked(spec: &str) -> impl Fn(&NodeId) -> Option<u64> {
        let map: BTreeMap<NodeId, u64> = spec
            .split_whitespace()
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (NodeId::from(k), v.parse().unwrap())
            })
            .collect();
        move |id| map.get(id).copied()
    }

    /// `"n1=y n2=n"` as ballots.
    fn votes(spec: &str) -> BTreeMap<NodeId, bool> {
        spec.split_whitespace()
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (NodeId::from(k), v == "y")
            })
            .collect()
    }

    #[test]
    fn majority_committed_index_is_the_value_a_majority_reached() {
        // (voters, acked, expected), in the manner of etcd's majority_commit.txt.
        let table = [
            ("n1", "n1=7", 7),
            ("n1", "", 0),
            ("n1 n2", "n1=5 n2=3", 3),
            ("n1 n2 n3", "n1=5 n2=3 n3=1", 3),
            ("n1 n2 n3", "n1=5", 0),
            ("n1 n2 n3", "n1=5 n2=5", 5),
            ("n1 n2 n3 n4", "n1=9 n2=8 n3=2 n4=1", 2),
            ("n1 n2 n3 n4 n5", "n1=9 n2=8 n3=7 n4=1 n5=0", 7),
            ("n1 n2 n3 n4 n5", "n1=9 n2=8 n6=100 n7=100", 0),
            ("", "n1=3", u64::MAX),
        ];
        for (voters, spec, want) in table {
            let c = MajorityConfig::new(ids(voters));
            assert_eq!(c.committed_index(acked(spec)), want, "{voters} / {spec}");
        }
    }

    #[test]
    fn joint_committed_index_needs_both_majorities() {
        let table = [
            ("n1 n2 n3", "", "n1=5 n2=4 n3=1", 4),
            ("n1 n2 n3", "n4 n5 n6", "n1=5 n2=4 n3=1 n4=9 n5=2 n6=2", 2),
            ("n1 n2 n3", "n3 n4 n5", "n1=5 n2=5 n3=1 n4=1 n5=1", 1),
            ("n1 n2 n3", "n3 n4 n5", "n1=5 n2=5 n3=5 n4=5 n5=1", 5),
            ("n1", "n1 n2 n3", "n1=8", 0),
        ];
        for (inc, out, spec, want) in table {
            let c = JointConfig {
                incoming: MajorityConfig::new(ids(inc)),
                outgoing: MajorityConfig::new(ids(out)),
            };
            assert_eq!(
                c.committed_index(acked(spec)),
                want,
                "{inc} / {out} / {spec}"
            );
        }
    }

    #[test]
    fn majority_vote_result_is_won_lost_or_pending() {
        use VoteResult::*;
        let table = [
            ("n1", "n1=y", Won),
            ("n1", "n1=n", Lost),
            ("n1", "", Pending),
            ("n1 n2 n3", "n1=y", Pending),
            ("n1 n2 n3", "n1=y n2=y", Won),
            ("n1 n2 n3", "n1=y n2=n", Pending),
            ("n1 n2 n3", "n1=y n2=n n3=n", Lost),
            ("n1 n2 n3 n4", "n1=y n2=y", Pending),
            ("n1 n2 n3 n4", "n1=y n2=n n3=n", Lost),
            ("n1 n2 n3", "n1=y n7=y n8=y", Pending),
            ("", "", Won),
        ];
        for (voters, spec, want) in table {
            let c = MajorityConfig::new(ids(voters));
            assert_eq!(c.vote_result(&votes(spec)), want, "{voters} / {spec}");
        }
    }

    #[test]
    fn joint_vote_result_needs_both_halves() {
        use VoteResult::*;
        let table = [
            ("n1 n2 n3", "n3 n4 n5", "n1=y n2=y", Pending),
            ("n1 n2 n3", "n3 n4 n5", "n1=y n2=y n3=y", Pending),
            ("n1 n2 n3", "n3 n4 n5", "n1=y n3=y n4=y", Won),
            ("n1 n2 n3", "n3 n4 n5", "n1=y n2=y n4=n n5=n", Lost),
            ("n1 n2 n3", "", "n1=y n2=y", Won),
        ];
        for (inc, out, spec, want) in table {
            let c = JointConfig {
                incoming: MajorityConfig::new(ids(inc)),
                outgoing: MajorityConfig::new(ids(out)),
            };
            assert_eq!(c.vote_result(&votes(spec)), want, "{inc} / {out} / {spec}");
        }
    }
}
