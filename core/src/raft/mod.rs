//! Raft as a deterministic state machine.
//!
//! The node never blocks, spawns, sleeps, reads a clock or draws OS randomness. Its inputs are
//! messages from peers, ticks carrying the current time, proposals and (later) read requests;
//! its outputs are messages handed to a [`Transport`], writes through the storage traits,
//! committed commands applied to a [`StateMachine`](crate::StateMachine), and [`Event`]s the host
//! turns into client replies or UI.
//!
//! Durability contract: during a call the node writes term, vote and log entries through the
//! storage traits *before* it hands out any message that depends on them. A host whose stores
//! buffer writes must call [`Node::persist`] after a call and before delivering the messages
//! that call produced (one sync for many inputs: group commit). In-memory stores are durable as
//! soon as they are written.

pub mod config;
pub mod event;
pub mod message;
pub mod node;
pub mod quorum;
pub mod storage;
pub mod tracker;

mod append;
mod apply;
mod election;
mod read;
mod replication;
mod snapshot;

pub use config::{Config, ConfigError};
pub use event::{Event, Role, Status};
pub use message::{
    AppendEntries, AppendEntriesResponse, InstallSnapshot, InstallSnapshotResponse, Message,
    RequestVote, RequestVoteResponse,
};
pub use node::{Node, Proposal, ProposeError, RaftError};
pub use read::ReadId;
pub use storage::{
    HardState, LogEntry, LogStore, MemLogStore, MemSnapshotStore, MemStableStore, SnapshotMeta,
    SnapshotStore, StableStore, StorageError, Stores,
};

use crate::types::NodeId;

/// A Raft term.
pub type Term = u64;
/// A 1-based log index; 0 is the sentinel "no entry".
pub type Index = u64;
/// Milliseconds since an epoch the host chooses (simulated or real). Only differences matter.
pub type Millis = u64;

/// Where the node sends messages: fire and forget; a reply is just another message.
pub trait Transport {
    /// Queues `msg` for `to`. Must not block and must not call back into the node.
    fn send(&mut self, to: &NodeId, msg: Message);
}

/// Collecting messages in a vector is the simplest transport: tests and the simulator use it.
impl Transport for Vec<(NodeId, Message)> {
    fn send(&mut self, to: &NodeId, msg: Message) {
        self.push((to.clone(), msg));
    }
}
