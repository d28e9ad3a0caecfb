//! Raft messages between nodes, on the peer listener (`--peer-addr`): persistent streams of
//! batched binary frames ([`stream`], the default), or the seed's HTTP routes ([`server`]) and
//! sender ([`client`]) with the JSON they exchange ([`wire`]) (`--peer-protocol http`); how
//! peers prove who they are ([`auth`], [`tls`]).
//!
//! The rest of this page is about the HTTP form.
//!
//! Fire and forget, like core's [`Transport`](raftkv_core::raft::Transport): every message is
//! one `POST` whose answer only says "received" (202); a Raft reply is a separate message sent
//! back the same way. The transport holds no Raft logic: it decodes `(from, Message)` and hands
//! it to a [`RaftInbox`].
//!
//! Routes, one per RPC; a request and its response travel on the same route:
//!
//! | route                      | messages                                      |
//! |----------------------------|-----------------------------------------------|
//! | `POST /raft/request_vote`  | `request_vote`, `request_vote_response`       |
//! | `POST /raft/append_entries`| `append_entries`, `append_entries_response`   |
//! | `POST /raft/install_snapshot` | `install_snapshot`, `install_snapshot_response` |

pub mod auth;
mod budget;
pub mod client;
pub mod inbox;
mod queue;
pub mod server;
pub mod stream;
pub mod tls;
pub mod wire;

use raftkv_core::kvraft::Message;
use raftkv_core::types::NodeId;

use crate::failpoints;

pub use auth::PeerAuth;
pub use client::{HttpTransport, PeerResolver, StaticPeers, TransportConfig, TransportError};
pub use queue::{PeerStats, SendCounters};
pub use server::router;
pub use stream::StreamTransport;
pub use tls::PeerTls;
pub use wire::Envelope;

/// The transport a node sends with: streams (the default) or one HTTP POST per message.
pub enum PeerTransport {
    /// See [`HttpTransport`].
    Http(HttpTransport),
    /// See [`StreamTransport`].
    Stream(StreamTransport),
}

impl PeerTransport {
    /// Ends the workers of peers not in `keep`; returns the peers dropped.
    pub fn retain_peers(&mut self, keep: &std::collections::BTreeSet<NodeId>) -> Vec<NodeId> {
        match self {
            PeerTransport::Http(t) => t.retain_peers(keep),
            PeerTransport::Stream(t) => t.retain_peers(keep),
        }
    }

    /// The counters of every peer sent to so far.
    pub fn all_stats(&self) -> std::collections::BTreeMap<NodeId, PeerStats> {
        match self {
            PeerTransport::Http(t) => t.all_stats(),
            PeerTransport::Stream(t) => t.all_stats(),
        }
    }
}

impl raftkv_core::raft::Transport<raftkv_core::Command> for PeerTransport {
    fn send(&mut self, to: &NodeId, msg: Message) {
        if failpoints::fires("before-send") {
            // As if the network lost it: Raft resends what matters.
            return;
        }
        match self {
            PeerTransport::Http(t) => t.send(to, msg),
            PeerTransport::Stream(t) => t.send(to, msg),
        }
    }
}

/// The path of the RequestVote route.
pub const REQUEST_VOTE_PATH: &str = "/raft/request_vote";
/// The path of the AppendEntries route.
pub const APPEND_ENTRIES_PATH: &str = "/raft/append_entries";
/// The path of the InstallSnapshot route.
pub const INSTALL_SNAPSHOT_PATH: &str = "/raft/install_snapshot";

/// The route a message travels on.
pub fn path_for(msg: &Message) -> &'static str {
    match msg {
        // TimeoutNow starts an election: it travels with the votes.
        Message::RequestVote(_) | Message::RequestVoteResponse(_) | Message::TimeoutNow(_) => {
            REQUEST_VOTE_PATH
        }
        Message::AppendEntries(_) | Message::AppendEntriesResponse(_) => APPEND_ENTRIES_PATH,
        Message::InstallSnapshot(_) | Message::InstallSnapshotResponse(_) => INSTALL_SNAPSHOT_PATH,
    }
}

/// Why an inbox did not take a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InboxError {
    /// The consumer is behind; the message is dropped (Raft retries what matters).
    #[error("raft inbox is full")]
    Full,
    /// The consumer is gone (the node is shutting down).
    #[error("raft inbox is closed")]
    Closed,
}

/// Where the server hands decoded messages: the node's driver. Must not block (it is called
/// from the HTTP handler).
pub trait RaftInbox: Send + Sync + 'static {
    /// Takes one message `msg` sent by `from`, whose wire body was `size` bytes.
    fn deliver(&self, from: NodeId, msg: Message, size: usize) -> Result<(), InboxError>;
    /// Whether a message of `size` wire bytes would fit now: lets the server refuse one before
    /// spending the time to decode it (`deliver` still decides).
    fn has_room(&self, _size: usize) -> bool {
        true
    }
}

/// Unbounded (tests): never full.
impl RaftInbox for tokio::sync::mpsc::UnboundedSender<(NodeId, Message)> {
    fn deliver(&self, from: NodeId, msg: Message, _size: usize) -> Result<(), InboxError> {
        self.send((from, msg)).map_err(|_| InboxError::Closed)
    }
}
