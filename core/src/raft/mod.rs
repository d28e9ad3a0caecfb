//! Raft as a deterministic state machine that does no I/O.
//!
//! The node never blocks, spawns, sleeps, reads a clock, draws OS randomness, writes storage
//! or applies entries. Its inputs are messages from peers, ticks carrying the current time,
//! proposals and read requests; all its outputs are gathered in a [`Ready`]: what to write
//! (term and vote, log entries, a snapshot), messages that may leave now and messages that may
//! leave only once those writes are durable, committed entries to apply, and [`Event`]s. The
//! host carries a Ready out and reports back with [`Node::advance`] (see docs/architecture.md
//! and docs/durability.md in the repository).
//!
//! [`Host`] is that host loop, shared by every host (the simulator, kvserver's driver, the
//! tests and the playground): it owns the stores and the state machine and does the Ready's
//! steps in order. [`Waiters`] is the bookkeeping of who waits for which proposal or read.

pub mod config;
pub mod event;
pub mod host;
pub mod membership;
pub mod message;
pub mod node;
pub mod quorum;
pub mod ready;
pub mod storage;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tracker;
pub mod waiters;

mod append;
mod apply;
mod election;
mod lease;
mod read;
mod reconfig;
mod replication;
mod snapshot;
mod transfer;

pub use config::{Config, ConfigError};
pub use event::{Event, Role, Status};
pub use host::{Feed, Host, SnapshotJob};
pub use membership::{ConfChange, ConfChangeError, ConfStep, Membership};
pub use message::{
    AppendEntries, AppendEntriesResponse, InstallSnapshot, InstallSnapshotResponse, Message,
    RequestVote, RequestVoteResponse, TimeoutNow,
};
pub use node::{
    InitialState, MemberProgress, Node, Proposal, ProposeError, RaftError, TransferError,
};
pub use read::ReadId;
pub use ready::{Ready, ReadySnapshot};
pub use snapshot::{ReceiveOp, SnapshotStats};
pub use storage::{
    HardState, LogEntry, LogStore, MemLogStore, MemSnapshotStore, MemStableStore, Payload,
    SnapshotInfo, SnapshotMeta, SnapshotStore, SnapshotWriter, Source, StableStore, StorageError,
    StoredSnapshot, Stores, WrittenSnapshot, chunk_of, snapshot_reader,
};
pub use tracker::SnapshotSend;
pub use waiters::{Outcome, Waiters};

use crate::types::NodeId;

/// A Raft term.
pub type Term = u64;
/// A 1-based log index; 0 is the sentinel "no entry".
pub type Index = u64;
/// Milliseconds since an epoch the host chooses (simulated or real). Only differences matter.
pub type Millis = u64;

/// Where a host sends the node's messages: fire and forget; a reply is just another message.
pub trait Transport<C> {
    /// Queues `msg` for `to`. Must not block and must not call back into the node.
    fn send(&mut self, to: &NodeId, msg: Message<C>);
}

/// Collecting messages in a vector is the simplest transport: tests and the simulator use it.
impl<C> Transport<C> for Vec<(NodeId, Message<C>)> {
    fn send(&mut self, to: &NodeId, msg: Message<C>) {
        self.push((to.clone(), msg));
    }
}
