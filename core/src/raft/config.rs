//! What a node is configured with.

use super::Millis;
use crate::types::NodeId;

/// A node's static configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node.
    pub id: NodeId,
    /// Every voting member, this node included. Invariant: contains `id`, no duplicates.
    pub voters: Vec<NodeId>,
    /// The election timeout is drawn uniformly from `[election_timeout_min, election_timeout_max]`
    /// each time the timer is reset. Invariant: heartbeat_interval < election_timeout_min <= max.
    pub election_timeout_min: Millis,
    /// See `election_timeout_min`.
    pub election_timeout_max: Millis,
    /// How often a leader sends AppendEntries (possibly empty) to each follower.
    pub heartbeat_interval: Millis,
    /// Run a pre-vote round before bumping the term: a node that cannot win does not disrupt.
    pub pre_vote: bool,
    /// A leader that has not heard from a majority within an election timeout steps down.
    pub check_quorum: bool,
    /// The most entries one AppendEntries carries.
    pub max_entries_per_append: usize,
    /// Snapshot once this many entries were applied since the last snapshot; 0 disables.
    pub snapshot_threshold: u64,
    /// How many entries up to the snapshot's index stay in the log when it is compacted, so
    /// that a follower only a little behind catches up with AppendEntries instead of a whole
    /// snapshot (etcd's "catch-up entries"). 0 compacts right up to the snapshot.
    pub snapshot_trailing: u64,
    /// Deliberate protocol violations, to prove the simulator's checks can fail.
    #[cfg(feature = "protocol-breaks")]
    pub breaks: ProtocolBreaks,
}

impl Config {
    /// A configuration with the defaults used by kvserver and the playground.
    pub fn new(id: NodeId, voters: Vec<NodeId>) -> Self {
        Config {
            id,
            voters,
            election_timeout_min: 150,
            election_timeout_max: 300,
            heartbeat_interval: 50,
            pre_vote: true,
            check_quorum: true,
            max_entries_per_append: 64,
            snapshot_threshold: 0,
            snapshot_trailing: 0,
            #[cfg(feature = "protocol-breaks")]
            breaks: ProtocolBreaks::default(),
        }
    }
}

/// Switches that break Raft on purpose. Compiled only with the `protocol-breaks` feature, which
/// only tests enable.
#[cfg(feature = "protocol-breaks")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProtocolBreaks {
    /// Commit any entry stored on a majority, whatever its term (the figure 8 bug).
    pub skip_current_term_commit_rule: bool,
    /// Grant votes without checking that the candidate's log is at least as up to date.
    pub skip_log_completeness_check: bool,
    /// Grant votes without persisting the vote, so a restarted node can vote twice in a term.
    pub forget_to_persist_vote: bool,
}
