//! Input a node must survive: configurations it refuses, thousands of nonsense messages from
//! members, strangers and itself, and messages with absurd indices and terms. Raft assumes
//! non-Byzantine peers (Raft §2), so no paper rule covers these: the node must neither panic nor
//! break its own invariants. They run natively and, through wasm-bindgen-test, in wasm32 under
//! Node.

mod common;

use common::fixtures::*;
use common::*;
use raftkv_core::KvStateMachine;
use raftkv_core::kvraft::{AppendEntries, LogEntry, Message, Stores};
use raftkv_core::raft::{
    AppendEntriesResponse, Host, InstallSnapshot, InstallSnapshotResponse, RequestVote,
    RequestVoteResponse, TimeoutNow,
};
use raftkv_core::types::Command;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use wasm_bindgen_test::wasm_bindgen_test;

/// A node refuses a configuration that cannot work: itself not among the voters, an empty
/// range to draw its randomised election timeout from (Raft §5.2, §5.6), or no entries per
/// AppendEntries.
#[wasm_bindgen_test(unsupported = test)]
fn invalid_config_is_refused() {
    let voters = ids(3);
    let mut cfg = test_config(&id("n9"), &voters);
    let new = |cfg| Host::new(cfg, Stores::in_memory(), KvStateMachine::new(), 1, 0);
    assert!(new(cfg.clone()).is_err());
    cfg.id = id("n1");
    cfg.election_timeout_min = 300;
    assert!(new(cfg.clone()).is_err());
    cfg.election_timeout_min = 100;
    cfg.max_entries_per_append = 0;
    assert!(new(cfg.clone()).is_err());
    cfg.max_entries_per_append = 1;
    assert!(new(cfg).is_ok());
}

/// Checks the invariants every node keeps, whatever it was sent.
fn assert_sane(n: &Host<KvStateMachine>) {
    let s = n.status();
    assert!(s.snapshot_index <= s.last_applied, "{s:?}");
    assert!(s.last_applied <= s.commit_index, "{s:?}");
    assert!(s.commit_index <= s.last_log_index, "{s:?}");
}

/// A random message of any kind, its fields drawn mostly from edge values (0, 1, `u64::MAX`).
fn hostile_message(rng: &mut ChaCha8Rng) -> Message {
    const INTERESTING: [u64; 7] = [0, 1, 2, 3, 7, u64::MAX - 1, u64::MAX];
    let mut v = || {
        if rng.random_bool(0.7) {
            INTERESTING[rng.random_range(0..INTERESTING.len())]
        } else {
            rng.random_range(0..20)
        }
    };
    let (a, b, c, d, e) = (v(), v(), v(), v(), v());
    let entries: Vec<LogEntry> = (0..(e % 4))
        .map(|i| entry(b.wrapping_add(i + (d % 2)), c.min(a), None))
        .collect();
    match a % 7 {
        0 => Message::AppendEntries(AppendEntries {
            term: a % 5,
            leader_id: id("n2"),
            prev_log_index: b,
            prev_log_term: c,
            entries,
            leader_commit: d,
            read_seq: e,
            sent_at: c,
        }),
        1 => Message::AppendEntriesResponse(AppendEntriesResponse {
            term: b % 5,
            success: c % 2 == 0,
            match_index: d,
            conflict_index: Some(e),
            conflict_term: (c % 3 == 0).then_some(a),
            read_seq: b,
            sent_at: d,
        }),
        2 => Message::RequestVote(RequestVote {
            term: b % 6,
            candidate_id: if c % 2 == 0 { id("n2") } else { id("n1") },
            last_log_index: d,
            last_log_term: e,
            pre_vote: a % 4 == 2,
            transfer: e % 3 == 0,
        }),
        3 => Message::RequestVoteResponse(RequestVoteResponse {
            term: b % 6,
            vote_granted: c % 2 == 0,
            pre_vote: d % 2 == 0,
            commit: (0, 0),
        }),
        4 => {
            let mut m = InstallSnapshot::whole(
                b % 5,
                id("n2"),
                c,
                d % 5,
                Default::default(),
                if e % 2 == 0 {
                    b"{not json".to_vec()
                } else {
                    KvStateMachine::new().snapshot()
                },
            );
            // Now and then a chunk that claims to be elsewhere in a larger snapshot.
            if a % 3 == 1 {
                m.offset = e % 7;
                m.size = m.size.saturating_add(d % 11);
                m.done = e % 2 == 0;
            }
            Message::InstallSnapshot(m)
        }
        5 => Message::InstallSnapshotResponse(InstallSnapshotResponse {
            term: b % 5,
            last_included_index: c,
            offset: d,
            done: a % 2 == 0,
        }),
        _ => Message::TimeoutNow(TimeoutNow {
            term: b % 5,
            leader_id: if c % 2 == 0 { id("n2") } else { id("n3") },
        }),
    }
}

/// Outside the paper's model (Raft §2: non-Byzantine peers): under thousands of nonsense
/// messages (and transfers to members, strangers and themselves) a leader and its followers
/// never panic and keep `snapshot_index <= applied <= commit <= last_index` (Figure 2's
/// commitIndex and lastApplied, §7's snapshot).
#[wasm_bindgen_test(unsupported = test)]
fn no_panic_on_hostile_messages() {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    // A leader with a few entries, and a follower: both get thousands of nonsense messages
    // from members, non-members and themselves.
    let mut c = Cluster::new(3, |cfg| cfg.snapshot_threshold = 3);
    let leader = c.elect();
    for i in 0..5 {
        c.propose(&leader, Command::put(format!("k{i}"), "v"))
            .unwrap();
    }
    c.deliver_all();
    let senders = [id("n1"), id("n2"), id("n3"), id("stranger")];
    let mut out = Vec::new();
    for round in 0..3_000u64 {
        let from = senders[rng.random_range(0..senders.len())].clone();
        let msg = hostile_message(&mut rng);
        for n in c.nodes.values_mut() {
            n.step(round, &from, msg.clone(), &mut out).unwrap();
            if round % 7 == 0 {
                n.tick(round, &mut out).unwrap();
            }
            assert_sane(n);
        }
        if round % 11 == 0 {
            let _ = c
                .nodes
                .values_mut()
                .find(|n| n.is_leader())
                .map(|n| n.propose(round, Command::put("x", "y"), &mut out));
        }
        if round % 97 == 0 {
            let to = senders[rng.random_range(0..senders.len())].clone();
            for n in c.nodes.values_mut() {
                n.transfer_leader(round, Some(to.clone()), &mut out)
                    .unwrap()
                    .ok();
                assert_sane(n);
            }
        }
        out.clear();
    }
}

/// Outside the paper's model (Raft §2): an InstallSnapshot at index `u64::MAX` and a
/// RequestVote at term `u64::MAX` are dropped, so the node can still campaign afterwards.
#[wasm_bindgen_test(unsupported = test)]
fn hostile_snapshot_at_an_absurd_index_is_dropped() {
    let mut f = lone_follower();
    let mut out = Vec::new();
    let is = Message::InstallSnapshot(InstallSnapshot::whole(
        1,
        id("n2"),
        u64::MAX,
        1,
        Default::default(),
        KvStateMachine::new().snapshot(),
    ));
    f.step(1, &id("n2"), is, &mut out).unwrap();
    assert_eq!(f.status().snapshot_index, 0);
    assert!(out.is_empty());
    // A term nobody could reach is dropped too, so the node can still campaign afterwards.
    let rv = Message::RequestVote(RequestVote {
        term: u64::MAX,
        candidate_id: id("n2"),
        last_log_index: 0,
        last_log_term: 0,
        pre_vote: false,
        transfer: false,
    });
    f.step(2, &id("n2"), rv, &mut out).unwrap();
    assert_eq!(f.term(), 0);
}
