//! The port between the KV service and the Raft node: what [`DistributedKv`] needs from a node
//! ([`RaftHandle`]) and the one error that crosses it ([`NodeError`]).
//!
//! The driver implements the port, DistributedKV uses it and tests fake it; none of them imports
//! another. The state machine both sides share is [`crate::shared_sm::SharedSm`].
//!
//! [`DistributedKv`]: crate::dkv::DistributedKv

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use raftkv_core::raft::{Index, Status};
use raftkv_core::{ApplyResult, Command, LeaderHint};

/// A boxed future of a handle call: boxed so the trait stays object safe.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = Result<T, NodeError>> + Send + 'a>>;

/// What DistributedKV needs from the Raft node.
pub trait RaftHandle: Send + Sync + 'static {
    /// Proposes `cmd` and resolves once it was applied (with its result) or cannot be.
    fn propose(&self, cmd: Command) -> BoxFut<'_, ApplyResult>;
    /// Whether this node currently leads.
    fn is_leader(&self) -> bool;
    /// Who leads, as far as this node knows.
    fn leader_hint(&self) -> LeaderHint;
    /// A confirmed read index (leader only).
    fn read_index(&self) -> BoxFut<'_, Index>;
    /// Resolves once the local state machine has applied `index`.
    fn wait_applied(&self, index: Index) -> BoxFut<'_, ()>;
    /// Resolves once some leader is known, or after `timeout`.
    fn wait_for_leader(&self, timeout: Duration) -> BoxFut<'_, ()>;
    /// The node's status.
    fn status(&self) -> Status;
    /// Whether the node has stopped (storage failure or shutdown).
    fn is_stopped(&self) -> bool;
}

/// A request the node (or the KV service over it) could not carry out. Semantic outcomes such
/// as `cas_failed` or `not_found` are not errors here: they are [`ApplyResult`]s with
/// `ok: false`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// The request is malformed; it never reached the log.
    #[error("{0}")]
    BadRequest(String),
    /// Only the leader serves this; it is elsewhere (or unknown). The command was not applied
    /// through this node: retry at the hint.
    #[error("this node is not the leader")]
    NotLeader(LeaderHint),
    /// The write may or may not take effect: leadership lost before apply, a timeout, the node
    /// stopped. A retry with the same (client_id, seq) is safe.
    #[error("{0}")]
    UnknownOutcome(String),
    /// The node cannot serve: stopped after a storage failure, or shutting down.
    #[error("{0}")]
    Unavailable(String),
    /// The leader refused a new proposal because too many uncommitted bytes are pending; the
    /// command never reached the log. Retry a little later (the same (client_id, seq) is fine).
    #[error("{0}")]
    Overloaded(String),
}

impl NodeError {
    /// The machine-readable `err_code`.
    pub fn code(&self) -> &'static str {
        match self {
            NodeError::BadRequest(_) => "bad_request",
            NodeError::NotLeader(_) => "not_leader",
            NodeError::UnknownOutcome(_) => "unknown_outcome",
            NodeError::Unavailable(_) => "unavailable",
            NodeError::Overloaded(_) => "overloaded",
        }
    }
}
