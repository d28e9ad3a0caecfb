//! The messages Raft nodes exchange. Every message carries the sender's term.

use serde::{Deserialize, Serialize};

use super::{Index, LogEntry, Membership, Millis, Term};
use crate::types::NodeId;

/// A message between two nodes. The sender is known to the transport, not carried here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message<C> {
    /// A (pre-)candidate asks for a vote.
    RequestVote(RequestVote),
    /// The answer to a RequestVote.
    RequestVoteResponse(RequestVoteResponse),
    /// A leader replicates entries, or sends a heartbeat (no entries).
    AppendEntries(AppendEntries<C>),
    /// The answer to an AppendEntries.
    AppendEntriesResponse(AppendEntriesResponse),
    /// A leader sends its snapshot to a follower that needs compacted entries.
    InstallSnapshot(InstallSnapshot),
    /// The answer to an InstallSnapshot.
    InstallSnapshotResponse(InstallSnapshotResponse),
    /// A leader hands its leadership over: the receiver campaigns at once, without pre-vote.
    TimeoutNow(TimeoutNow),
}

impl<C> Message<C> {
    /// The term the sender was in (for a pre-vote request: the term it would campaign in).
    pub fn term(&self) -> Term {
        match self {
            Message::RequestVote(m) => m.term,
            Message::RequestVoteResponse(m) => m.term,
            Message::AppendEntries(m) => m.term,
            Message::AppendEntriesResponse(m) => m.term,
            Message::InstallSnapshot(m) => m.term,
            Message::InstallSnapshotResponse(m) => m.term,
            Message::TimeoutNow(m) => m.term,
        }
    }

    /// A short name of the message type, for traces and the playground.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::RequestVote(m) if m.pre_vote => "pre_vote",
            Message::RequestVote(_) => "request_vote",
            Message::RequestVoteResponse(m) if m.pre_vote => "pre_vote_response",
            Message::RequestVoteResponse(_) => "request_vote_response",
            Message::AppendEntries(_) => "append_entries",
            Message::AppendEntriesResponse(_) => "append_entries_response",
            Message::InstallSnapshot(_) => "install_snapshot",
            Message::InstallSnapshotResponse(_) => "install_snapshot_response",
            Message::TimeoutNow(_) => "timeout_now",
        }
    }
}

/// RequestVote (and, with `pre_vote`, its non-binding rehearsal).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestVote {
    /// The candidate's term (for a pre-vote: its current term + 1, not persisted).
    pub term: Term,
    /// The candidate.
    pub candidate_id: NodeId,
    /// The index of the candidate's last log entry.
    pub last_log_index: Index,
    /// The term of the candidate's last log entry.
    pub last_log_term: Term,
    /// A pre-vote asks "would you vote for me?" and changes no state on the receiver.
    pub pre_vote: bool,
    /// The candidate campaigns because the leader of its previous term sent it TimeoutNow
    /// (leadership transfer): voters skip leader stickiness and the restart barrier for this
    /// request only. Never set on a pre-vote (a pre-vote that claims it is treated as plain).
    #[serde(default)]
    pub transfer: bool,
}

/// The answer to a RequestVote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestVoteResponse {
    /// The voter's term (for a pre-vote: the request's term if granted).
    pub term: Term,
    /// Whether the vote is granted.
    pub vote_granted: bool,
    /// Whether this answers a pre-vote.
    pub pre_vote: bool,
}

/// AppendEntries: replication and heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendEntries<C> {
    /// The leader's term.
    pub term: Term,
    /// The leader.
    pub leader_id: NodeId,
    /// The index of the entry just before `entries`.
    pub prev_log_index: Index,
    /// Its term.
    pub prev_log_term: Term,
    /// Entries to store (empty for a heartbeat). Invariant: contiguous from prev_log_index + 1.
    pub entries: Vec<LogEntry<C>>,
    /// The leader's commit index.
    pub leader_commit: Index,
    /// The leader's latest ReadIndex round when it sent this message; the follower echoes it,
    /// and an echo from a majority confirms every read of that round or an earlier one.
    /// 0 when no read was ever requested.
    #[serde(default)]
    pub read_seq: u64,
    /// The leader's clock when it built this message; the follower echoes it, and the send
    /// time a quorum echoed starts the leader's read lease. 0 from a sender that predates the
    /// field, which starts no lease.
    #[serde(default)]
    pub sent_at: Millis,
}

/// The answer to an AppendEntries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendEntriesResponse {
    /// The follower's term.
    pub term: Term,
    /// Whether the entries matched and were stored.
    pub success: bool,
    /// On success: the last index known to match the leader's log (prev + entries).
    pub match_index: Index,
    /// On failure: where the leader should retry from (fast backtracking).
    pub conflict_index: Option<Index>,
    /// On failure: the term of the follower's conflicting entry, if it has one at prev_log_index.
    pub conflict_term: Option<Term>,
    /// The `read_seq` of the AppendEntries this answers (0 when answering an older term).
    #[serde(default)]
    pub read_seq: u64,
    /// The `sent_at` of the AppendEntries this answers (0 when answering an older term).
    #[serde(default)]
    pub sent_at: Millis,
}

/// InstallSnapshot, sent whole (the snapshot is small enough for one message).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallSnapshot {
    /// The leader's term.
    pub term: Term,
    /// The leader.
    pub leader_id: NodeId,
    /// The last index the snapshot covers.
    pub last_included_index: Index,
    /// The term of that index.
    pub last_included_term: Term,
    /// The configuration at the snapshot's last index (empty from senders that predate
    /// membership changes).
    #[serde(default)]
    pub membership: Membership,
    /// The state machine's snapshot bytes; opaque to Raft.
    pub data: Vec<u8>,
}

/// The answer to an InstallSnapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallSnapshotResponse {
    /// The follower's term.
    pub term: Term,
    /// The snapshot's last index, now matched by the follower (when terms agreed).
    pub last_included_index: Index,
}

/// Leadership transfer: the leader, having brought the receiver up to date, tells it to start
/// an election now (Raft thesis §3.10).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutNow {
    /// The leader's term.
    pub term: Term,
    /// The leader.
    pub leader_id: NodeId,
}
