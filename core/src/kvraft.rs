//! The Raft types instantiated for the KV state machine: what kvserver, the simulator and the
//! playground exchange and store. Raft itself (`crate::raft`) knows nothing of KV commands.

use crate::{ApplyResult, Command, KvStateMachine};

/// A message between KV nodes.
pub type Message = crate::raft::Message<Command>;
/// An AppendEntries carrying KV commands.
pub type AppendEntries = crate::raft::AppendEntries<Command>;
/// A log entry carrying a KV command.
pub type LogEntry = crate::raft::LogEntry<Command>;
/// What a KV log entry carries.
pub type Payload = crate::raft::Payload<Command>;
/// A KV node's stores.
pub type Stores = crate::raft::Stores<Command>;
/// An in-memory KV log.
pub type MemLogStore = crate::raft::MemLogStore<Command>;
/// What a KV node tells its host.
pub type Event = crate::raft::Event<ApplyResult>;
/// A KV node's output batch.
pub type Ready = crate::raft::Ready<Command, ApplyResult>;
/// A KV node.
pub type Node = crate::raft::Node<KvStateMachine>;
/// A KV node with its stores and state machine.
pub type Host = crate::raft::Host<KvStateMachine>;
