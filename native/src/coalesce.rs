//! Merging the messages of one driver turn before they go on the wire.
//!
//! The core node sends an AppendEntries per proposal (each carrying just the new entry) and a
//! follower answers each one, so a turn that took 64 proposals would cost 64 HTTP requests per
//! follower and as many answers back. Within one turn, consecutive messages to the same peer
//! can be merged without changing what the receiver concludes:
//!
//! - AppendEntries `b` that continues `a` (same term and leader, `b.prev_log_index` is `a`'s
//!   last index with the same term) is `a` with `b`'s entries appended: the receiver accepting
//!   `a` and then `b` ends in the same state as accepting the merged message, and rejects the
//!   merged message exactly when it would reject `a` (and then `b`, whose prev is in `a`).
//!   The merged commit index and read round are the later ones, which `b` alone would carry.
//! - Successful AppendEntriesResponses of one term to the same leader: the later match index
//!   and read round say everything the earlier ones said.
//!
//! Anything else (votes, snapshots, rejections) passes through untouched, in order.

use std::collections::HashMap;

use raftkv_core::NodeId;
use raftkv_core::raft::{AppendEntries, AppendEntriesResponse, Message};

/// The most entries a merged AppendEntries carries (bounds the HTTP body size).
pub const MAX_MERGED_ENTRIES: usize = 512;

/// Merges what can be merged in `out`, keeping the order of the messages to each peer.
pub fn coalesce(out: Vec<(NodeId, Message)>) -> Vec<(NodeId, Message)> {
    let mut merged: Vec<(NodeId, Message)> = Vec::with_capacity(out.len());
    // The position in `merged` of the last message to each peer.
    let mut last: HashMap<NodeId, usize> = HashMap::new();
    for (to, msg) in out {
        if let Some(&i) = last.get(&to) {
            let prev = &mut merged[i].1;
            match (prev, msg) {
                (Message::AppendEntries(a), Message::AppendEntries(b)) => {
                    match merge_append(a, b) {
                        None => continue,
                        Some(b) => push(&mut merged, &mut last, to, Message::AppendEntries(b)),
                    }
                }
                (Message::AppendEntriesResponse(a), Message::AppendEntriesResponse(b)) => {
                    match merge_response(a, b) {
                        None => continue,
                        Some(b) => push(
                            &mut merged,
                            &mut last,
                            to,
                            Message::AppendEntriesResponse(b),
                        ),
                    }
                }
                (_, msg) => push(&mut merged, &mut last, to, msg),
            }
        } else {
            push(&mut merged, &mut last, to, msg);
        }
    }
    merged
}

fn push(
    merged: &mut Vec<(NodeId, Message)>,
    last: &mut HashMap<NodeId, usize>,
    to: NodeId,
    msg: Message,
) {
    last.insert(to.clone(), merged.len());
    merged.push((to, msg));
}

/// Appends `b` to `a` when `b` continues `a`; otherwise hands `b` back.
fn merge_append(a: &mut AppendEntries, b: AppendEntries) -> Option<AppendEntries> {
    let a_last_index = a.prev_log_index + a.entries.len() as u64;
    let a_last_term = a.entries.last().map_or(a.prev_log_term, |e| e.term);
    let continues = a.term == b.term
        && a.leader_id == b.leader_id
        && b.prev_log_index == a_last_index
        && b.prev_log_term == a_last_term
        && a.entries.len() + b.entries.len() <= MAX_MERGED_ENTRIES;
    if !continues {
        return Some(b);
    }
    a.entries.extend(b.entries);
    a.leader_commit = a.leader_commit.max(b.leader_commit);
    a.read_seq = a.read_seq.max(b.read_seq);
    None
}

/// Folds success `b` into success `a` of the same term; otherwise hands `b` back.
fn merge_response(
    a: &mut AppendEntriesResponse,
    b: AppendEntriesResponse,
) -> Option<AppendEntriesResponse> {
    if !(a.success && b.success && a.term == b.term) {
        return Some(b);
    }
    a.match_index = a.match_index.max(b.match_index);
    a.read_seq = a.read_seq.max(b.read_seq);
    None
}

#[cfg(test)]
mod tests {
    use raftkv_core::raft::{LogEntry, RequestVote};

    use super::*;

    fn ae(term: u64, prev: u64, prev_term: u64, entries: &[(u64, u64)], commit: u64) -> Message {
        Message::AppendEntries(AppendEntries {
            term,
            leader_id: NodeId::from("n1"),
            prev_log_index: prev,
            prev_log_term: prev_term,
            entries: entries
                .iter()
                .map(|&(index, term)| LogEntry {
                    index,
                    term,
                    cmd: None,
                })
                .collect(),
            leader_commit: commit,
            read_seq: commit,
        })
    }

    fn resp(term: u64, success: bool, match_index: u64) -> Message {
        Message::AppendEntriesResponse(AppendEntriesResponse {
            term,
            success,
            match_index,
            conflict_index: None,
            conflict_term: None,
            read_seq: match_index,
        })
    }

    fn to(s: &str) -> NodeId {
        NodeId::from(s)
    }

    #[test]
    fn contiguous_appends_to_one_peer_merge_and_others_stay_apart() {
        let out = vec![
            (to("n2"), ae(3, 10, 2, &[(11, 3)], 9)),
            (to("n3"), ae(3, 10, 2, &[(11, 3)], 9)),
            (to("n2"), ae(3, 11, 3, &[(12, 3)], 10)),
            // A heartbeat that continues the merged message folds in too.
            (to("n2"), ae(3, 12, 3, &[], 11)),
        ];
        let got = coalesce(out);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], (to("n2"), ae(3, 10, 2, &[(11, 3), (12, 3)], 11)));
        assert_eq!(got[1], (to("n3"), ae(3, 10, 2, &[(11, 3)], 9)));
    }

    #[test]
    fn appends_that_do_not_continue_stay_separate_and_in_order() {
        let vote = Message::RequestVote(RequestVote {
            term: 4,
            candidate_id: to("n1"),
            last_log_index: 1,
            last_log_term: 1,
            pre_vote: false,
        });
        let out = vec![
            (to("n2"), ae(3, 10, 2, &[(11, 3)], 9)),
            // A gap, a term mismatch at prev, a newer term: none continue the first.
            (to("n2"), ae(3, 12, 3, &[(13, 3)], 9)),
            (to("n2"), ae(3, 13, 2, &[(14, 3)], 9)),
            (to("n2"), vote.clone()),
            (to("n2"), ae(4, 14, 3, &[], 9)),
        ];
        assert_eq!(coalesce(out.clone()), out);
    }

    #[test]
    fn successful_responses_fold_and_rejections_pass() {
        let out = vec![
            (to("n1"), resp(3, true, 11)),
            (to("n1"), resp(3, true, 12)),
            (to("n1"), resp(3, false, 0)),
            (to("n1"), resp(3, true, 13)),
            (to("n1"), resp(4, true, 14)),
        ];
        assert_eq!(
            coalesce(out),
            vec![
                (to("n1"), resp(3, true, 12)),
                (to("n1"), resp(3, false, 0)),
                (to("n1"), resp(3, true, 13)),
                (to("n1"), resp(4, true, 14)),
            ]
        );
    }

    #[test]
    fn merged_appends_are_bounded() {
        let first: Vec<(u64, u64)> = (1..=MAX_MERGED_ENTRIES as u64).map(|i| (i, 1)).collect();
        let n = MAX_MERGED_ENTRIES as u64;
        let out = vec![
            (to("n2"), ae(1, 0, 0, &first, 0)),
            (to("n2"), ae(1, n, 1, &[(n + 1, 1)], 0)),
        ];
        assert_eq!(coalesce(out).len(), 2);
    }
}
