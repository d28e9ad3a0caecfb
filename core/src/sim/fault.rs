//! Faults the simulator can inject: what a fault schedule is made of, and what the playground's
//! buttons do.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::network::{MsgFilter, node_name};
use crate::raft::Millis;

/// One fault (or its healing).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Fault {
    /// Crash a node: only its stores survive; messages in flight to it are dropped.
    Kill {
        /// The node's index.
        node: usize,
    },
    /// Kill whichever node leads when the fault fires (nothing if none does).
    KillLeader,
    /// Isolate whichever node leads when the fault fires (nothing if none does).
    IsolateLeader,
    /// Kill a follower of whichever node leads when the fault fires: the node after the leader
    /// in index order (node 0 if nobody leads; nothing in a one-node cluster). Kept down long
    /// enough, it lags behind the leader's snapshot and must catch up through InstallSnapshot.
    KillFollower,
    /// Isolate a follower, chosen as for [`Fault::KillFollower`].
    IsolateFollower,
    /// Start a killed node again from its stores.
    Restart {
        /// The node's index.
        node: usize,
    },
    /// Restart every killed node.
    RestartAll,
    /// Cut every link into and out of a node (clients still reach it).
    Isolate {
        /// The node's index.
        node: usize,
    },
    /// Cut the links between groups (nodes in no group form one more group).
    Partition {
        /// The groups of node indices.
        groups: Vec<Vec<usize>>,
    },
    /// Cut the directed link `from -> to`.
    Cut {
        /// The sender side.
        from: usize,
        /// The receiver side.
        to: usize,
    },
    /// Restore the directed link `from -> to`.
    Heal {
        /// The sender side.
        from: usize,
        /// The receiver side.
        to: usize,
    },
    /// Restore every link.
    HealAll,
    /// Set the loss probability of every node link.
    Loss {
        /// The probability.
        p: f64,
    },
    /// Set the duplication probability of every node link.
    Duplicate {
        /// The probability.
        p: f64,
    },
    /// Set the latency range of every link into and out of a node (all node links if `None`).
    Latency {
        /// The node, or every link.
        node: Option<usize>,
        /// The least latency.
        min: Millis,
        /// The greatest latency.
        max: Millis,
    },
    /// Set one directed node link's loss and latency (its duplication is kept).
    Link {
        /// The sender side.
        from: usize,
        /// The receiver side.
        to: usize,
        /// The loss probability.
        loss: f64,
        /// The least latency.
        min: Millis,
        /// The greatest latency.
        max: Millis,
    },
    /// Put every node link back to the configured behaviour (loss, duplication, latency).
    ResetLinks,
    /// Drop every node-to-node message a filter matches, from now on (and those in flight when
    /// they arrive), until [`Fault::Unfilter`].
    Filter {
        /// Which messages.
        filter: MsgFilter,
    },
    /// Stop a filter set by [`Fault::Filter`].
    Unfilter {
        /// The filter.
        filter: MsgFilter,
    },
    /// From now on a node's clock runs `ppm` parts per million off the global clock
    /// (positive: fast). See [`clock`](super::clock).
    ClockRate {
        /// The node's index.
        node: usize,
        /// The rate offset, clamped to ±50%.
        ppm: i32,
    },
    /// A node's clock jumps forward.
    ClockJump {
        /// The node's index.
        node: usize,
        /// By how many ms.
        ms: Millis,
    },
    /// Start a fresh node (empty stores, no configuration: it waits for the leader) and have
    /// the leader add it as a learner; with `promote`, then make it a voter once it caught up.
    /// Membership faults are retried (a refusal such as "in progress" or "not caught up" is
    /// tried again a little later) for a while, and resolved at each try: which node leads,
    /// which members there are.
    AddNode {
        /// Promote it to voter after adding it.
        promote: bool,
    },
    /// Promote a random learner to voter.
    Promote,
    /// Remove a random voter other than the leader.
    RemoveVoter,
    /// Remove the leader (it hands over and steps down).
    RemoveLeader,
    /// Remove a random learner.
    RemoveLearner,
    /// Replace a random voter by a fresh node, through a joint configuration.
    ReplaceVoter,
    /// Hand leadership to a random other voter.
    TransferLeader,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Kill { node } => write!(f, "kill {}", node_name(*node)),
            Fault::KillLeader => f.write_str("kill_leader"),
            Fault::IsolateLeader => f.write_str("isolate_leader"),
            Fault::KillFollower => f.write_str("kill_follower"),
            Fault::IsolateFollower => f.write_str("isolate_follower"),
            Fault::Restart { node } => write!(f, "restart {}", node_name(*node)),
            Fault::RestartAll => f.write_str("restart_all"),
            Fault::Isolate { node } => write!(f, "isolate {}", node_name(*node)),
            Fault::Partition { groups } => {
                f.write_str("partition")?;
                for g in groups {
                    let names: Vec<String> = g.iter().map(|n| node_name(*n)).collect();
                    write!(f, " [{}]", names.join(" "))?;
                }
                Ok(())
            }
            Fault::Cut { from, to } => write!(f, "cut {}->{}", node_name(*from), node_name(*to)),
            Fault::Heal { from, to } => {
                write!(f, "heal {}->{}", node_name(*from), node_name(*to))
            }
            Fault::HealAll => f.write_str("heal_all"),
            Fault::Loss { p } => write!(f, "loss {p:.3}"),
            Fault::Duplicate { p } => write!(f, "duplicate {p:.3}"),
            Fault::Latency {
                node: Some(n),
                min,
                max,
            } => write!(f, "latency {} {min}..{max}", node_name(*n)),
            Fault::Latency {
                node: None,
                min,
                max,
            } => write!(f, "latency all {min}..{max}"),
            Fault::Link {
                from,
                to,
                loss,
                min,
                max,
            } => write!(
                f,
                "link {}->{} loss {loss:.3} latency {min}..{max}",
                node_name(*from),
                node_name(*to)
            ),
            Fault::ResetLinks => f.write_str("reset_links"),
            Fault::Filter { filter } => write!(f, "filter {filter}"),
            Fault::Unfilter { filter } => write!(f, "unfilter {filter}"),
            Fault::ClockRate { node, ppm } => {
                write!(f, "clock_rate {} {ppm:+}ppm", node_name(*node))
            }
            Fault::ClockJump { node, ms } => write!(f, "clock_jump {} +{ms}ms", node_name(*node)),
            Fault::AddNode { promote: false } => f.write_str("add_learner"),
            Fault::AddNode { promote: true } => f.write_str("add_voter"),
            Fault::Promote => f.write_str("promote"),
            Fault::RemoveVoter => f.write_str("remove_voter"),
            Fault::RemoveLeader => f.write_str("remove_leader"),
            Fault::RemoveLearner => f.write_str("remove_learner"),
            Fault::ReplaceVoter => f.write_str("replace_voter"),
            Fault::TransferLeader => f.write_str("transfer_leader"),
        }
    }
}
