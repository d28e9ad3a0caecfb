//! Cluster configurations and the changes an operator asks for.
//!
//! A [`Membership`] is a whole configuration: the voters, the outgoing voters while a joint
//! change is under way, the learners, and each member's address (opaque to core; kvserver's
//! peer URL). A configuration entry in the log carries the whole configuration it switches to,
//! not a delta, so a node that joins late learns the full configuration from the first such
//! entry (or snapshot) it receives.
//!
//! A configuration takes effect on a node when its entry is committed and handed out to apply
//! (docs/membership.md says why this rule and not "on append"). The leader turns an operator's
//! [`ConfChange`] into the next configuration: a change of at most one voter is a simple
//! change; anything larger enters a joint configuration, which the leader leaves on its own
//! once the joint entry is applied (modelled on etcd-io/raft `confchange/`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::Index;
use super::quorum::JointConfig;
use crate::types::NodeId;

/// A cluster configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Membership {
    /// Who votes (the incoming half while joint). Invariant: not empty once the cluster has
    /// a configuration.
    pub voters: BTreeSet<NodeId>,
    /// The outgoing voters of a joint configuration; empty otherwise. A decision needs a
    /// majority of `voters` and, while this is not empty, of `outgoing` too.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub outgoing: BTreeSet<NodeId>,
    /// Members that receive the log but never vote or campaign. Invariant: disjoint from
    /// `voters` and `outgoing`.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub learners: BTreeSet<NodeId>,
    /// Each member's address, as the host gave it (empty in the simulator).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub addrs: BTreeMap<NodeId, String>,
    /// Nodes that were members and were removed (ids are never reused). Their messages are
    /// dropped; messages from nodes never heard of are not, since they may be members added
    /// while this node was away (etcd keeps the same list). Invariant: disjoint from the
    /// members.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub removed: BTreeSet<NodeId>,
}

impl Membership {
    /// A plain configuration of `voters`, without addresses.
    pub fn with_voters(voters: impl IntoIterator<Item = NodeId>) -> Self {
        Membership {
            voters: voters.into_iter().collect(),
            ..Default::default()
        }
    }

    /// Whether this is a joint configuration (a change of several voters under way).
    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Whether `id` votes (in either half).
    pub fn is_voter(&self, id: &NodeId) -> bool {
        self.voters.contains(id) || self.outgoing.contains(id)
    }

    /// Whether `id` is a learner.
    pub fn is_learner(&self, id: &NodeId) -> bool {
        self.learners.contains(id)
    }

    /// Whether `id` is a member at all.
    pub fn is_member(&self, id: &NodeId) -> bool {
        self.is_voter(id) || self.is_learner(id)
    }

    /// Every member (voters of both halves and learners), in order.
    pub fn members(&self) -> BTreeSet<NodeId> {
        let mut m: BTreeSet<NodeId> = self.voters.union(&self.outgoing).cloned().collect();
        m.extend(self.learners.iter().cloned());
        m
    }

    /// The voters as the quorum arithmetic sees them.
    pub fn joint_config(&self) -> JointConfig {
        JointConfig::joint(self.voters.iter().cloned(), self.outgoing.iter().cloned())
    }

    /// Whether there is no configuration at all (a node that joins and has not heard yet).
    pub fn is_empty(&self) -> bool {
        self.voters.is_empty() && self.outgoing.is_empty() && self.learners.is_empty()
    }

    /// Whether the invariants on the fields hold: what a configuration from the wire must
    /// satisfy before a node adopts it.
    pub fn is_valid(&self) -> bool {
        self.learners.is_disjoint(&self.voters)
            && self.learners.is_disjoint(&self.outgoing)
            && !self.voters.is_empty()
            && self.removed.iter().all(|id| !self.is_member(id))
    }

    /// Asserts the invariants on the fields (debug builds).
    pub fn check(&self) {
        debug_assert!(
            self.learners.is_disjoint(&self.voters) && self.learners.is_disjoint(&self.outgoing),
            "learners vote: {self:?}"
        );
        debug_assert!(
            self.removed.iter().all(|id| !self.is_member(id)),
            "a removed node is a member: {self:?}"
        );
        debug_assert!(
            self.is_empty() || !self.voters.is_empty(),
            "a configuration without voters: {self:?}"
        );
    }
}

/// One step of a change an operator asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ConfStep {
    /// Add a learner: it receives the log and does not vote.
    AddLearner {
        /// The new member.
        id: NodeId,
        /// Its address.
        addr: String,
    },
    /// Add a voter directly (used by a replacement: the joint configuration keeps a quorum
    /// while the new voter catches up).
    AddVoter {
        /// The new member.
        id: NodeId,
        /// Its address.
        addr: String,
    },
    /// Make a caught-up learner a voter.
    Promote {
        /// The learner.
        id: NodeId,
    },
    /// Remove a voter or a learner (the leader too).
    Remove {
        /// The member.
        id: NodeId,
    },
}

/// A change of configuration: steps applied together. At most one voter changing makes a
/// simple change; more (a replacement, say) goes through a joint configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfChange {
    /// What changes.
    pub steps: Vec<ConfStep>,
}

impl ConfChange {
    /// Adds a learner.
    pub fn add_learner(id: NodeId, addr: impl Into<String>) -> Self {
        ConfChange {
            steps: vec![ConfStep::AddLearner {
                id,
                addr: addr.into(),
            }],
        }
    }

    /// Promotes a learner.
    pub fn promote(id: NodeId) -> Self {
        ConfChange {
            steps: vec![ConfStep::Promote { id }],
        }
    }

    /// Removes a member.
    pub fn remove(id: NodeId) -> Self {
        ConfChange {
            steps: vec![ConfStep::Remove { id }],
        }
    }

    /// Replaces voter `old` with a new voter `new` at `addr`, in one joint change.
    pub fn replace(old: NodeId, new: NodeId, addr: impl Into<String>) -> Self {
        ConfChange {
            steps: vec![
                ConfStep::AddVoter {
                    id: new,
                    addr: addr.into(),
                },
                ConfStep::Remove { id: old },
            ],
        }
    }
}

/// Why a configuration change was refused. Nothing was appended.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfChangeError {
    /// Only the leader changes the configuration.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
    },
    /// A change is still under way (its entry, or the joint configuration it entered, is not
    /// applied yet), or the leader has not committed an entry of its own term yet.
    #[error("a configuration change is in progress (entry {index})")]
    InProgress {
        /// The entry that must be applied first.
        index: Index,
    },
    /// A leadership transfer is pending.
    #[error("a leadership transfer is pending")]
    Transferring,
    /// The change names a node that is not a member (or, for a promotion, not a learner).
    #[error("unknown node {id}")]
    UnknownNode {
        /// The node.
        id: NodeId,
    },
    /// The change adds a node that is already a member.
    #[error("{id} is already a member")]
    AlreadyMember {
        /// The node.
        id: NodeId,
    },
    /// The change would leave no voter.
    #[error("cannot remove the last voter")]
    LastVoter,
    /// The learner is too far behind the leader to vote yet.
    #[error("{id} is not caught up: match index {match_index}, leader's last index {last_index}")]
    NotCaughtUp {
        /// The learner.
        id: NodeId,
        /// What it holds.
        match_index: Index,
        /// What the leader holds.
        last_index: Index,
    },
    /// Too few of the new configuration's voters answered the leader lately to form a
    /// quorum: the change would leave the cluster unable to commit.
    #[error("the new configuration would have no reachable quorum")]
    NoQuorum,
    /// The change has no step, or steps that contradict each other.
    #[error("invalid change: {0}")]
    Invalid(String),
    /// Storage failed: the node cannot go on.
    #[error(transparent)]
    Fatal(#[from] super::RaftError),
}

impl ConfChangeError {
    /// The machine-readable name of the refusal (`err_code` in kvserver's answers).
    pub fn code(&self) -> &'static str {
        match self {
            ConfChangeError::NotLeader { .. } => "not_leader",
            ConfChangeError::InProgress { .. } => "change_in_progress",
            ConfChangeError::Transferring => "transferring",
            ConfChangeError::UnknownNode { .. } => "unknown_node",
            ConfChangeError::AlreadyMember { .. } => "already_member",
            ConfChangeError::LastVoter => "last_voter",
            ConfChangeError::NotCaughtUp { .. } => "not_caught_up",
            ConfChangeError::NoQuorum => "no_quorum",
            ConfChangeError::Invalid(_) => "invalid_change",
            ConfChangeError::Fatal(_) => "internal",
        }
    }
}
