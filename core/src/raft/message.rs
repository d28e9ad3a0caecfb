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
    /// An entry the voter knows is committed (index, term; (0, 0) for none): a candidate whose
    /// log holds that very entry may take it as committed. It lets a voter that missed its
    /// leader's last commit (say, of the configuration that removed that leader) learn it
    /// from any member, and campaign with the configuration that is really in force.
    #[serde(default)]
    pub commit: (Index, Term),
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

/// InstallSnapshot: one chunk of the leader's snapshot, with what the snapshot is. A snapshot
/// travels as chunks at increasing offsets; the receiver writes each one that continues what it
/// has and answers with the offset it expects next, so lost, duplicated or reordered chunks
/// cost a resend at most, and a transfer cut off resumes where the receiver stopped.
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
    /// The whole snapshot's size in bytes. Senders from before chunks sent the whole snapshot
    /// in one message without it; 0 then means "as many as `data` has" (see
    /// [`InstallSnapshot::total_size`]).
    #[serde(default)]
    pub size: u64,
    /// CRC-32 of the whole snapshot's bytes (`None` from senders from before chunks: the
    /// receiver computes it from the single chunk).
    #[serde(default)]
    pub checksum: Option<u32>,
    /// Where this chunk's bytes start in the snapshot.
    #[serde(default)]
    pub offset: u64,
    /// This chunk's bytes; opaque to Raft. A leader's node leaves them empty and its host
    /// fills them from the stored snapshot as the message leaves (the node holds no bytes).
    pub data: Vec<u8>,
    /// This is the last chunk: `offset + data.len() == size`. Old senders' single message is
    /// the last one.
    #[serde(default = "yes")]
    pub done: bool,
}

fn yes() -> bool {
    true
}

impl InstallSnapshot {
    /// A whole snapshot as one chunk (tests, and tools that send small snapshots).
    pub fn whole(
        term: Term,
        leader_id: NodeId,
        last_included_index: Index,
        last_included_term: Term,
        membership: Membership,
        data: Vec<u8>,
    ) -> Self {
        InstallSnapshot {
            term,
            leader_id,
            last_included_index,
            last_included_term,
            membership,
            size: data.len() as u64,
            checksum: Some(crc32fast::hash(&data)),
            offset: 0,
            data,
            done: true,
        }
    }

    /// The whole snapshot's size: `size`, or for a sender from before chunks (no size, one
    /// message) the bytes it carries.
    pub fn total_size(&self) -> u64 {
        if self.size == 0 && self.offset == 0 && self.done {
            self.data.len() as u64
        } else {
            self.size
        }
    }

    /// The whole snapshot's checksum: `checksum`, or for a sender from before chunks that of
    /// its single message's bytes.
    pub fn total_checksum(&self) -> u32 {
        self.checksum
            .unwrap_or_else(|| crc32fast::hash(if self.offset == 0 { &self.data } else { &[] }))
    }
}

/// The answer to an InstallSnapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallSnapshotResponse {
    /// The follower's term.
    pub term: Term,
    /// The snapshot's last index (0 when answering an older term).
    pub last_included_index: Index,
    /// The next offset the follower expects: it holds every byte before it.
    #[serde(default)]
    pub offset: u64,
    /// The follower installed the snapshot (or already had everything it covers): it now
    /// matches `last_included_index`. Answers from before chunks always meant that.
    #[serde(default = "yes")]
    pub done: bool,
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
