//! What a node tells its host besides messages: role changes, commits, applied proposals.

use serde::{Deserialize, Serialize};

use super::{Index, Membership, Millis, ReadId, Term};
use crate::types::NodeId;

/// A node's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asking for pre-votes, without having bumped its term.
    PreCandidate,
    /// Asking for votes in a new term.
    Candidate,
    /// Leads its term.
    Leader,
}

/// Something the host may act on, in the order it happened. The node reports role, leader,
/// commit, read and snapshot events in each [`Ready`](super::Ready); the [`Host`](super::Host)
/// adds the ones about applying (`Applied`, and a proposal's outcome), whose reply type `R` is
/// the state machine's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event<R> {
    /// The role or term changed.
    RoleChanged {
        /// The new role.
        role: Role,
        /// The term it holds.
        term: Term,
    },
    /// The node learnt who leads (or that nobody does, as far as it knows).
    LeaderChanged {
        /// The leader, if known.
        leader: Option<NodeId>,
        /// The term.
        term: Term,
    },
    /// The commit index advanced to `index`.
    Committed {
        /// The new commit index.
        index: Index,
    },
    /// An entry was applied to the state machine (every node emits this for every entry,
    /// no-ops included, so hosts and the simulator can check state machine safety).
    Applied {
        /// Its index.
        index: Index,
        /// Its term.
        term: Term,
    },
    /// A proposal this node accepted (see [`Proposal`](super::Proposal)) was applied.
    ProposalApplied {
        /// The proposal's index.
        index: Index,
        /// The proposal's term.
        term: Term,
        /// What the state machine answered.
        result: R,
    },
    /// A proposal this node accepted can never be applied at its index: another leader's entry
    /// replaced it. (The same command may still be applied through a retry.)
    ProposalLost {
        /// The proposal's index.
        index: Index,
        /// The proposal's term.
        term: Term,
    },
    /// A proposal this node accepted was covered by a snapshot installed from a leader before
    /// this node applied it: whether it took effect is unknown here (the client should retry;
    /// the state machine's dedupe table makes the retry safe).
    ProposalUnknown {
        /// The proposal's index.
        index: Index,
        /// The proposal's term.
        term: Term,
    },
    /// A read requested with [`Node::read_index`](super::Node::read_index) is confirmed: the
    /// host may answer it from the state machine once `last_applied >= index`.
    ReadReady {
        /// The read.
        id: ReadId,
        /// Its read index: the leader's commit index when it was confirmable.
        index: Index,
    },
    /// A read can no longer be confirmed here (leadership lost, or no majority answered within
    /// an election timeout). The client should retry, at the leader.
    ReadFailed {
        /// The read.
        id: ReadId,
    },
    /// A configuration took effect here: its entry at `index` was committed and handed out to
    /// apply (or it came with a snapshot).
    MembershipChanged {
        /// The configuration entry's index (the snapshot's for one that came with a snapshot).
        index: Index,
        /// The configuration now in force.
        membership: Membership,
    },
    /// A configuration change this node proposed as leader (see
    /// [`Node::propose_conf_change`](super::Node::propose_conf_change)) was applied.
    ConfChangeApplied {
        /// The proposal's index.
        index: Index,
        /// The proposal's term.
        term: Term,
    },
    /// This leader started handing its leadership to `to`.
    TransferStarted {
        /// The chosen voter.
        to: NodeId,
    },
    /// A transfer ended without `to` taking over within an election timeout; this node
    /// leads on and accepts proposals again.
    TransferAbandoned {
        /// The voter that did not take over.
        to: NodeId,
    },
    /// The state machine was replaced by a snapshot (received from the leader, or loaded at
    /// start): every entry up to `index` counts as applied without an `Applied` event each.
    SnapshotRestored {
        /// The last index the snapshot covers.
        index: Index,
        /// The term of that index.
        term: Term,
    },
}

/// A snapshot of a node's state for status pages, the playground and invariant checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Status {
    /// The node.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its current term.
    pub term: Term,
    /// Whom it voted for in `term`.
    pub voted_for: Option<NodeId>,
    /// The leader it knows of in `term`.
    pub leader_id: Option<NodeId>,
    /// Invariant: last_applied <= commit_index <= last_log_index, snapshot_index <= commit_index.
    pub commit_index: Index,
    /// The last entry applied to the state machine.
    pub last_applied: Index,
    /// The last entry in the log (or the snapshot's last index when the log is empty).
    pub last_log_index: Index,
    /// The term of `last_log_index`.
    pub last_log_term: Term,
    /// The last index the latest snapshot covers; 0 without one.
    pub snapshot_index: Index,
    /// When the current election timer started (for drawing its progress).
    pub election_timer_start: Millis,
    /// When the election timer fires, unless reset. For a leader: the next check-quorum point.
    pub election_deadline: Millis,
    /// The configuration in force here.
    pub membership: Membership,
    /// A leader handing over its leadership: to whom.
    pub transfer_to: Option<NodeId>,
    /// A leader's read lease: lease reads are served until this time (its clock), if any.
    pub lease_until: Option<Millis>,
}
