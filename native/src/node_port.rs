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

use raftkv_core::raft::{Index, Status, TransferError};
use raftkv_core::{ApplyResult, Command, LeaderHint, NodeId};

/// A boxed future of a handle call: boxed so the trait stays object safe.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = Result<T, NodeError>> + Send + 'a>>;

/// What DistributedKV needs from the Raft node.
pub trait RaftHandle: Send + Sync + 'static {
    /// Proposes `cmd` and resolves once it was applied (with its result, whose `index` is the
    /// entry it was committed at) or cannot be.
    fn propose(&self, cmd: Command) -> BoxFut<'_, ApplyResult>;
    /// Whether this node currently leads.
    fn is_leader(&self) -> bool;
    /// Who leads, as far as this node knows.
    fn leader_hint(&self) -> LeaderHint;
    /// A confirmed read index (leader only).
    fn read_index(&self) -> BoxFut<'_, Index>;
    /// The read index of a lease read (leader only): at once from this leader's lease if it
    /// holds one now, else from a ReadIndex round, as [`read_index`](Self::read_index).
    fn read_lease(&self) -> BoxFut<'_, Index>;
    /// The index the state machine has applied, at least as high as every entry whose effect a
    /// read of the state machine could have shown before the call.
    fn applied_index(&self) -> BoxFut<'_, Index>;
    /// Resolves `true` once the local state machine has applied `index`, `false` if it has not
    /// within `timeout`.
    fn wait_applied(&self, index: Index, timeout: Duration) -> BoxFut<'_, bool>;
    /// Resolves once some leader is known, or after `timeout`.
    fn wait_for_leader(&self, timeout: Duration) -> BoxFut<'_, ()>;
    /// Hands this leader's leadership to `to` (with `None`, to the voter core picks) and
    /// resolves once this node knows another leader.
    fn transfer_leader(&self, to: Option<NodeId>) -> BoxFut<'_, TransferDone>;
    /// The node's status.
    fn status(&self) -> Status;
    /// Whether the node has stopped (storage failure or shutdown).
    fn is_stopped(&self) -> bool;
}

/// A leadership transfer that completed: this node knows another leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferDone {
    /// The voter the transfer was handed to.
    pub to: NodeId,
    /// The leader this node knows of now (normally `to`).
    pub leader: LeaderHint,
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
    /// The leader is handing its leadership over and takes no proposals meanwhile; the command
    /// never reached the log. Retry shortly (at the new leader once it is known).
    #[error("{0}")]
    Transferring(String),
    /// A linearizable read could not be confirmed: this node led when it took the read, but no
    /// quorum acknowledged its leadership in time and it knows no other leader. Retry.
    #[error("{0}")]
    ReadTimeout(String),
    /// The node had not applied the read's `min_index` within the wait: it lags (or the index
    /// was never written). Retry, here later or at another node.
    #[error("{0}")]
    NotCaughtUp(String),
    /// The leader refused to start a leadership transfer: the target is not a voter, or there
    /// is no other voter.
    #[error("{0}")]
    TransferRefused(TransferError),
    /// A leadership transfer ended without another leader taking over; this node still leads.
    #[error("{0}")]
    TransferAbandoned(String),
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
            NodeError::Transferring(_) => "transferring",
            NodeError::ReadTimeout(_) => "read_timeout",
            NodeError::NotCaughtUp(_) => "not_caught_up",
            NodeError::TransferRefused(e) => match e {
                TransferError::NotLeader { .. } => "not_leader",
                TransferError::NotVoter { .. } => "not_voter",
                TransferError::NoCandidate => "no_candidate",
            },
            NodeError::TransferAbandoned(_) => "transfer_abandoned",
        }
    }
}
