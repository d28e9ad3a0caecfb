//! Helpers the Raft test files share: a lone follower to hand messages to, and the
//! AppendEntries, log entries and responses those tests build and read.

use raftkv_core::KvStateMachine;
use raftkv_core::kvraft::Payload;
use raftkv_core::kvraft::{AppendEntries, LogEntry, Message, Stores};
use raftkv_core::raft::{AppendEntriesResponse, Host};
use raftkv_core::types::{Command, NodeId};

use super::{id, ids, test_config};

/// When a node started at time 0 first grants a vote in a later term: its restart barrier
/// (`election_timeout_min` of [`test_config`], with check-quorum) is over.
pub const VOTES_FROM: u64 = 100;

/// A lone follower `n1` of a 3-node cluster {n1, n2, n3}, fresh stores, at time 0.
pub fn lone_follower() -> Host<KvStateMachine> {
    lone_follower_with(Stores::in_memory())
}

/// A lone follower `n1` of a 3-node cluster {n1, n2, n3} starting from `stores`, at time 0.
pub fn lone_follower_with(stores: Stores) -> Host<KvStateMachine> {
    let cfg = test_config(&id("n1"), &ids(3));
    Host::new(cfg, stores, KvStateMachine::new(), 7, 0).unwrap()
}

/// An AppendEntries from leader `n2` in `term`: previous entry `prev` (index, term), then
/// `entries`, with leader commit `commit`.
pub fn append(term: u64, prev: (u64, u64), entries: Vec<LogEntry>, commit: u64) -> Message {
    Message::AppendEntries(AppendEntries {
        term,
        leader_id: id("n2"),
        prev_log_index: prev.0,
        prev_log_term: prev.1,
        entries,
        leader_commit: commit,
        read_seq: 0,
        sent_at: 0,
    })
}

/// A log entry.
pub fn entry(index: u64, term: u64, cmd: Option<Command>) -> LogEntry {
    let payload = match cmd {
        Some(c) => Payload::Command(c),
        None => Payload::Noop,
    };
    LogEntry {
        index,
        term,
        payload,
        time: 0,
    }
}

/// The only AppendEntriesResponse in `out`.
pub fn the_append_response(out: &[(NodeId, Message)]) -> AppendEntriesResponse {
    let resps: Vec<_> = out
        .iter()
        .filter_map(|(_, m)| match m {
            Message::AppendEntriesResponse(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(resps.len(), 1, "expected one response in {out:?}");
    resps[0].clone()
}
