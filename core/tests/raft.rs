//! Raft node tests: the seed's milestone tests, the Raft paper's figures 7 and 8, pre-vote,
//! check-quorum, a single-node cluster, hostile messages, ReadIndex and snapshots. Multi-node
//! tests run on the hand-driven cluster in `common`. They run natively and, through
//! wasm-bindgen-test, in wasm32 under Node.

mod common;

use common::*;
use raftkv_core::KvStateMachine;
use raftkv_core::raft::{
    AppendEntries, AppendEntriesResponse, Event, InstallSnapshot, InstallSnapshotResponse,
    LogEntry, Message, Node, ProposeError, ReadId, RequestVote, RequestVoteResponse, Role, Stores,
};
use raftkv_core::types::{Command, NodeId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use wasm_bindgen_test::wasm_bindgen_test;

/// A lone follower `n1` of a 3-node cluster {n1, n2, n3}, fresh stores, at time 0.
fn lone_follower() -> Node<KvStateMachine> {
    lone_follower_with(Stores::in_memory())
}

fn lone_follower_with(stores: Stores) -> Node<KvStateMachine> {
    let cfg = test_config(&id("n1"), &ids(3));
    Node::new(cfg, stores, KvStateMachine::new(), 7, 0).unwrap()
}

fn append(term: u64, prev: (u64, u64), entries: Vec<LogEntry>, commit: u64) -> Message {
    Message::AppendEntries(AppendEntries {
        term,
        leader_id: id("n2"),
        prev_log_index: prev.0,
        prev_log_term: prev.1,
        entries,
        leader_commit: commit,
        read_seq: 0,
    })
}

fn entry(index: u64, term: u64, cmd: Option<Command>) -> LogEntry {
    LogEntry { index, term, cmd }
}

/// The only AppendEntriesResponse in `out`.
fn the_append_response(out: &[(NodeId, Message)]) -> AppendEntriesResponse {
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

// ----------------------------------------------------------------------------------------------
// Milestone 1: replication.
// ----------------------------------------------------------------------------------------------

#[wasm_bindgen_test(unsupported = test)]
fn raft_m1_leader_propose_appends_and_commits() {
    let mut c = Cluster::new(3, |_| {});
    let leader = c.elect();
    let p = c.propose(&leader, Command::put("a", "1")).unwrap();

    // Appended locally at once, but not committed before a majority stores it.
    let n = c.node(&leader);
    assert_eq!(n.status().last_log_index, p.index);
    let stored = n.log().read_range(p.index, p.index + 1).unwrap();
    assert_eq!(stored[0].cmd, Some(Command::put("a", "1")));
    assert_eq!(stored[0].term, p.term);
    assert!(n.commit_index() < p.index);
    assert_eq!(n.state_machine().get("a"), None);

    c.deliver_all();
    let n = c.node(&leader);
    assert_eq!(n.commit_index(), p.index);
    assert_eq!(n.state_machine().get("a").as_deref(), Some("1"));
    assert!(c.events[&leader].contains(&Event::ProposalApplied {
        index: p.index,
        term: p.term,
        result: raftkv_core::ApplyResult::ok(),
    }));
    // Followers learn the commit with the next heartbeat.
    c.advance(25);
    for n in c.nodes.values() {
        assert_eq!(
            n.state_machine().get("a").as_deref(),
            Some("1"),
            "{}",
            n.id()
        );
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn raft_m1_follower_handle_append_entries_appends_and_applies() {
    let mut f = lone_follower();
    let mut out = Vec::new();
    let entries = vec![
        entry(1, 1, None),
        entry(2, 1, Some(Command::put("a", "1"))),
        entry(3, 1, Some(Command::put("b", "2"))),
    ];
    f.step(10, &id("n2"), append(1, (0, 0), entries, 0), &mut out)
        .unwrap();
    let r = the_append_response(&out);
    assert!(r.success);
    assert_eq!(r.match_index, 3);
    assert_eq!(f.status().last_log_index, 3);
    assert_eq!(f.status().leader_id, Some(id("n2")));
    assert_eq!(f.term(), 1);
    // Stored, not yet committed: nothing applied.
    assert_eq!(f.commit_index(), 0);
    assert_eq!(f.state_machine().get("a"), None);

    // A heartbeat carrying the leader's commit index applies them, in order.
    out.clear();
    f.step(20, &id("n2"), append(1, (3, 1), vec![], 3), &mut out)
        .unwrap();
    assert!(the_append_response(&out).success);
    assert_eq!(f.commit_index(), 3);
    assert_eq!(f.last_applied(), 3);
    assert_eq!(f.state_machine().get("a").as_deref(), Some("1"));
    assert_eq!(f.state_machine().get("b").as_deref(), Some("2"));
    let applied: Vec<u64> = f
        .take_events()
        .iter()
        .filter_map(|e| match e {
            Event::Applied { index, .. } => Some(*index),
            _ => None,
        })
        .collect();
    assert_eq!(applied, vec![1, 2, 3]);
}

#[wasm_bindgen_test(unsupported = test)]
fn follower_commit_is_bounded_by_what_the_message_proved() {
    // The follower holds a stale entry at 2 (term 1); the leader's heartbeat only proves index
    // 1 matches, so a high leader_commit must not commit the stale entry.
    let mut f = lone_follower_with(stores_with_log(1, &[1, 1]));
    let mut out = Vec::new();
    f.step(10, &id("n2"), append(2, (1, 1), vec![], 5), &mut out)
        .unwrap();
    assert!(the_append_response(&out).success);
    assert_eq!(f.commit_index(), 1);
}

// ----------------------------------------------------------------------------------------------
// Milestone 2: elections.
// ----------------------------------------------------------------------------------------------

#[wasm_bindgen_test(unsupported = test)]
fn raft_m2_election_happens_after_leader_stops() {
    let mut c = Cluster::new(3, |_| {});
    let old = c.elect();
    let old_term = c.node(&old).term();
    c.crash(&old);
    let start = c.now;
    let new = c.elect();
    assert_ne!(new, old);
    assert!(c.node(&new).term() > old_term);
    // An election needs about one timeout (plus a pre-vote round), not many.
    assert!(c.now - start <= 2 * 200 + 100, "took {} ms", c.now - start);
    // The new leader serves writes.
    let p = c.propose(&new, Command::put("x", "y")).unwrap();
    c.deliver_all();
    assert!(c.node(&new).commit_index() >= p.index);
    assert_eq!(c.node(&new).state_machine().get("x").as_deref(), Some("y"));
}

#[wasm_bindgen_test(unsupported = test)]
fn raft_m2_higher_term_forces_step_down() {
    let mut c = Cluster::new(3, |_| {});
    let leader = c.elect();
    let term = c.node(&leader).term();
    let other = c.nodes.keys().find(|k| **k != leader).unwrap().clone();

    // An answer from a later term: the leader steps down at once and adopts the term.
    let mut out = Vec::new();
    let now = c.now;
    let node = c.nodes.get_mut(&leader).unwrap();
    let stale = Message::AppendEntriesResponse(AppendEntriesResponse {
        term: term + 3,
        success: false,
        match_index: 0,
        conflict_index: None,
        conflict_term: None,
        read_seq: 0,
    });
    node.step(now, &other, stale, &mut out).unwrap();
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(node.term(), term + 3);
    assert_eq!(node.leader_id(), None);
    let events = node.take_events();
    assert!(events.contains(&Event::RoleChanged {
        role: Role::Follower,
        term: term + 3
    }));
    // The new term is durable, with no vote.
    let stores = c.nodes.remove(&leader).unwrap().into_stores();
    assert_eq!(stores.stable.current_term().unwrap(), term + 3);
    assert_eq!(stores.stable.voted_for().unwrap(), None);

    // A follower that gets AppendEntries from a later term follows that leader.
    let mut f = lone_follower();
    let mut out = Vec::new();
    f.step(5, &id("n2"), append(4, (0, 0), vec![], 0), &mut out)
        .unwrap();
    assert_eq!(f.term(), 4);
    assert_eq!(f.leader_id(), Some(&id("n2")));
    // And answers an older leader with its term, so that one steps down.
    out.clear();
    let old = Message::AppendEntries(AppendEntries {
        leader_id: id("n3"),
        ..match append(2, (0, 0), vec![], 0) {
            Message::AppendEntries(a) => a,
            _ => unreachable!(),
        }
    });
    f.step(6, &id("n3"), old, &mut out).unwrap();
    let r = the_append_response(&out);
    assert!(!r.success);
    assert_eq!(r.term, 4);
    assert_eq!(f.leader_id(), Some(&id("n2")));
}

#[wasm_bindgen_test(unsupported = test)]
fn vote_is_persisted_before_it_is_granted_and_granted_once_per_term() {
    let mut f = lone_follower();
    let mut out = Vec::new();
    let rv = |cand: &str| {
        Message::RequestVote(RequestVote {
            term: 3,
            candidate_id: id(cand),
            last_log_index: 0,
            last_log_term: 0,
            pre_vote: false,
        })
    };
    f.step(1, &id("n2"), rv("n2"), &mut out).unwrap();
    assert!(matches!(&out[0].1, Message::RequestVoteResponse(r) if r.vote_granted && r.term == 3));
    out.clear();
    f.step(2, &id("n3"), rv("n3"), &mut out).unwrap();
    assert!(matches!(&out[0].1, Message::RequestVoteResponse(r) if !r.vote_granted));

    // After a restart the durable vote still binds.
    let stores = f.into_stores();
    assert_eq!(stores.stable.voted_for().unwrap(), Some(id("n2")));
    let mut f = lone_follower_with(stores);
    out.clear();
    f.step(3, &id("n3"), rv("n3"), &mut out).unwrap();
    assert!(matches!(&out[0].1, Message::RequestVoteResponse(r) if !r.vote_granted));
}

#[wasm_bindgen_test(unsupported = test)]
fn vote_denied_to_a_candidate_with_a_less_complete_log() {
    let mut f = lone_follower_with(stores_with_log(2, &[1, 2]));
    let mut out = Vec::new();
    for (i, (last_index, last_term, granted)) in [(5, 1, false), (1, 2, false), (2, 2, true)]
        .into_iter()
        .enumerate()
    {
        out.clear();
        let cand = if granted { "n2" } else { "n3" };
        let rv = RequestVote {
            term: 3 + i as u64,
            candidate_id: id(cand),
            last_log_index: last_index,
            last_log_term: last_term,
            pre_vote: false,
        };
        f.step(1, &id(cand), Message::RequestVote(rv), &mut out)
            .unwrap();
        let Message::RequestVoteResponse(r) = &out[0].1 else {
            panic!("{out:?}")
        };
        assert_eq!(r.vote_granted, granted, "last ({last_index}, {last_term})");
    }
}

// ----------------------------------------------------------------------------------------------
// Milestone 3: log matching and repair.
// ----------------------------------------------------------------------------------------------

#[wasm_bindgen_test(unsupported = test)]
fn raft_m3_follower_rejects_on_prev_mismatch() {
    let mut f = lone_follower_with(stores_with_log(1, &[1, 1, 1]));
    let mut out = Vec::new();
    // prev (3, 2) but the follower has term 1 at 3: reject, hinting the whole term 1.
    let e = vec![entry(4, 2, Some(Command::put("z", "z")))];
    f.step(1, &id("n2"), append(2, (3, 2), e, 4), &mut out)
        .unwrap();
    let r = the_append_response(&out);
    assert!(!r.success);
    assert_eq!(r.conflict_term, Some(1));
    assert_eq!(r.conflict_index, Some(1));
    // prev past the end: reject, hinting where the log ends.
    out.clear();
    f.step(2, &id("n2"), append(2, (7, 2), vec![], 9), &mut out)
        .unwrap();
    let r = the_append_response(&out);
    assert!(!r.success);
    assert_eq!(r.conflict_term, None);
    assert_eq!(r.conflict_index, Some(4));
    // Nothing stored, nothing committed.
    assert_eq!(log_terms(f.log()), vec![1, 1, 1]);
    assert_eq!(f.commit_index(), 0);
}

#[wasm_bindgen_test(unsupported = test)]
fn raft_m3_leader_backtracks_next_index_and_repairs_follower() {
    // n1 will lead with [1, 2, 2, 2]; n3 has an uncommitted tail of an old term, [1, 1, 1, 1,
    // 1, 1]; n2 agrees with n1 so that n1 can win.
    let stores = vec![
        stores_with_log(2, &[1, 2, 2, 2]),
        stores_with_log(2, &[1, 2, 2, 2]),
        stores_with_log(2, &[1, 1, 1, 1, 1, 1]),
    ];
    let mut c = Cluster::with_stores(ids(3), stores, |_| {});
    c.campaign(&id("n1"));
    c.deliver_all();
    assert_eq!(c.leader(), Some(id("n1")));
    let want = log_terms(c.node(&id("n1")).log());
    assert_eq!(want, vec![1, 2, 2, 2, 3]);
    assert_eq!(log_terms(c.node(&id("n3")).log()), want);
    // Fast backtracking: one rejection skips the whole conflicting term.
    assert_eq!(c.rejections_by(&id("n3")), 1);
    c.advance(25);
    for n in c.nodes.values() {
        assert_eq!(n.commit_index(), 5, "{}", n.id());
        assert_eq!(n.state_machine().get("k4").as_deref(), Some("t2"));
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn raft_m3_committed_entries_not_lost_after_leader_change() {
    let mut c = Cluster::new(5, |_| {});
    let first = c.elect();
    for i in 0..10 {
        c.propose(&first, Command::put(format!("k{i}"), "v"))
            .unwrap();
    }
    c.deliver_all();
    let committed = c.node(&first).commit_index();
    assert!(committed >= 11);
    // The old leader dies; a new one must hold every committed entry.
    c.crash(&first);
    let second = c.elect();
    assert_ne!(second, first);
    let log = c.node(&second).log();
    let old = c.crashed[&first].log.read_range(1, committed + 1).unwrap();
    assert_eq!(log.read_range(1, committed + 1).unwrap(), old);
    c.propose(&second, Command::put("after", "v")).unwrap();
    c.deliver_all();
    // The old leader comes back and catches up; every node ends with the same state.
    c.restart(&first);
    c.advance(300);
    let expected = c.node(&second).state_machine().entries();
    assert_eq!(expected.len(), 11);
    for n in c.nodes.values() {
        assert_eq!(n.state_machine().entries(), expected, "{}", n.id());
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn figure_7_divergent_follower_logs_are_repaired() {
    // The Raft paper, figure 7: the leader of term 8 and followers (a)-(f).
    let leader = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    let followers: [&[u64]; 6] = [
        &[1, 1, 1, 4, 4, 5, 5, 6, 6],
        &[1, 1, 1, 4],
        &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
        &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
        &[1, 1, 1, 4, 4, 4, 4],
        &[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    ];
    let members: Vec<NodeId> = ["leader", "a", "b", "c", "d", "e", "f"]
        .iter()
        .map(|s| id(s))
        .collect();
    let mut stores = vec![stores_with_log(7, &leader)];
    stores.extend(followers.iter().map(|f| stores_with_log(7, f)));
    let mut c = Cluster::with_stores(members.clone(), stores, |cfg| {
        cfg.pre_vote = false;
        cfg.check_quorum = false;
    });
    c.campaign(&id("leader"));
    c.deliver_all();
    assert_eq!(c.leader(), Some(id("leader")));
    assert_eq!(c.node(&id("leader")).term(), 8);
    c.advance(25); // a heartbeat spreads the commit index

    let mut want = leader.to_vec();
    want.push(8);
    for m in &members {
        assert_eq!(log_terms(c.node(m).log()), want, "log of {m}");
        assert_eq!(c.node(m).commit_index(), 11, "commit of {m}");
    }
    // Fast backtracking: (f) conflicts over 8 entries but needs only 2 rejections (one per
    // conflicting term), (e) likewise; one-by-one backtracking would take 8 and 5.
    assert!(
        c.rejections_by(&id("f")) <= 2,
        "{}",
        c.rejections_by(&id("f"))
    );
    assert!(
        c.rejections_by(&id("e")) <= 2,
        "{}",
        c.rejections_by(&id("e"))
    );
    // Everyone applied the same entries.
    let sm = c.node(&id("leader")).state_machine().entries();
    for m in &members {
        assert_eq!(c.node(m).state_machine().entries(), sm, "state of {m}");
    }
}

/// The Raft paper's figure 8, up to (c): S1 leads term 4 and has brought its term-2 entry at
/// index 2 to a majority (S1, S3, S4 here), but not its own term-4 entry. Returns the cluster at
/// that moment.
fn figure_8_until_old_entry_on_majority(break_rule: bool) -> Cluster {
    let members: Vec<NodeId> = ["s1", "s2", "s3", "s4", "s5"]
        .iter()
        .map(|s| id(s))
        .collect();
    let stores = vec![
        stores_with_log(3, &[1, 2]),
        stores_with_log(3, &[1, 2]),
        stores_with_log(3, &[1]),
        stores_with_log(3, &[1]),
        stores_with_log(3, &[1, 3]),
    ];
    let mut c = Cluster::with_stores(members, stores, |cfg| {
        cfg.pre_vote = false;
        cfg.check_quorum = false;
        cfg.max_entries_per_append = 1;
        #[cfg(feature = "protocol-breaks")]
        {
            cfg.breaks.skip_current_term_commit_rule = break_rule;
        }
    });
    let _ = break_rule;
    // S1 replicates only to S3 and S4 (which lack index 2), and they never store the entry of
    // S1's term: S1's first probe to each carries index 3 but is rejected (no index 2 there),
    // so that one may pass; every later one carrying index 3 is dropped. S1 thus learns that
    // S1, S3 and S4 — a majority — store index 2 of term 2. (It never learns S2's match: a
    // restarted leader knows no follower's progress until it hears from it.)
    let probes = std::rc::Rc::new(std::cell::RefCell::new(std::collections::BTreeMap::new()));
    c.filter = Some(Box::new(move |from, to, m| match m {
        Message::AppendEntries(a) if from == &id("s1") => {
            if to != &id("s3") && to != &id("s4") {
                return false;
            }
            if a.entries.iter().any(|e| e.index >= 3) {
                let mut p = probes.borrow_mut();
                let n = p.entry(to.clone()).or_insert(0);
                *n += 1;
                return *n == 1;
            }
            true
        }
        _ => true,
    }));
    c.campaign(&id("s1"));
    c.deliver_all();
    assert_eq!(c.leader(), Some(id("s1")));
    assert_eq!(c.node(&id("s1")).term(), 4);
    assert_eq!(log_terms(c.node(&id("s3")).log()), vec![1, 2]);
    assert_eq!(log_terms(c.node(&id("s4")).log()), vec![1, 2]);
    c
}

/// Figure 8, (d): S1 dies; S5 (with the term-3 entry) wins term 5 with S2-S4 and
/// overwrites index 2 everywhere it can.
fn figure_8_s5_takes_over(c: &mut Cluster) {
    c.heal();
    c.isolate(&id("s1"));
    c.campaign(&id("s5"));
    c.deliver_all();
    if c.leader() != Some(id("s5")) {
        // Its first try ran into votes already cast in term 4; the next term wins.
        c.campaign(&id("s5"));
        c.deliver_all();
    }
    assert_eq!(c.leader(), Some(id("s5")));
    c.advance(25);
}

#[wasm_bindgen_test(unsupported = test)]
fn figure_8_old_term_entry_is_not_committed_by_counting() {
    let mut c = figure_8_until_old_entry_on_majority(false);
    // Index 2 (term 2) is on S1, S3, S4 — a majority — but it is not of S1's term, so S1
    // commits nothing (a restarted cluster knows no commit index until its leader commits).
    assert_eq!(c.node(&id("s1")).commit_index(), 0);
    assert!(!c.applied(&id("s1")).contains(&(2, 2)));

    // Had S1 gone on, its term-4 entry would commit index 2 with it. Check in a copy of the
    // world where the filter lifts:
    let mut on = figure_8_until_old_entry_on_majority(false);
    on.heal();
    on.advance(25);
    assert_eq!(on.node(&id("s1")).commit_index(), 3);
    assert!(on.applied(&id("s1")).contains(&(2, 2)));

    // Instead S1 dies and S5 overwrites index 2 with its term-3 entry: no harm done, since
    // nobody applied the term-2 entry.
    figure_8_s5_takes_over(&mut c);
    for m in ["s2", "s3", "s4", "s5"] {
        assert_eq!(log_terms(c.node(&id(m)).log()), vec![1, 3, 5], "{m}");
        assert!(c.applied(&id(m)).contains(&(2, 3)), "{m}");
    }
    for m in ["s1", "s2", "s3", "s4", "s5"] {
        assert!(
            !c.applied(&id(m)).contains(&(2, 2)),
            "{m} applied the term-2 entry"
        );
    }
}

#[cfg(feature = "protocol-breaks")]
#[wasm_bindgen_test(unsupported = test)]
fn figure_8_breaks_when_committing_old_terms_by_counting() {
    let mut c = figure_8_until_old_entry_on_majority(true);
    // With the break, S1 commits and applies the term-2 entry by counting replicas...
    assert_eq!(c.node(&id("s1")).commit_index(), 2);
    assert!(c.applied(&id("s1")).contains(&(2, 2)));
    // ...and S5 then legitimately commits a different entry at the same index: two nodes
    // applied different commands at index 2 (state machine safety is violated).
    figure_8_s5_takes_over(&mut c);
    assert!(c.applied(&id("s5")).contains(&(2, 3)));
    assert_eq!(
        c.node(&id("s1")).state_machine().get("k2").as_deref(),
        Some("t2")
    );
    assert_eq!(
        c.node(&id("s5")).state_machine().get("k2").as_deref(),
        Some("t3")
    );
}

// ----------------------------------------------------------------------------------------------
// Pre-vote, check-quorum, leader stickiness.
// ----------------------------------------------------------------------------------------------

/// Elects a leader, isolates one follower for 2 s, heals, and lets 1 s pass. Returns the
/// cluster, the leader, the follower, and the leader's term before the partition.
fn isolate_and_rejoin_a_follower(pre_vote: bool) -> (Cluster, NodeId, NodeId, u64) {
    let mut c = Cluster::new(3, |cfg| {
        cfg.pre_vote = pre_vote;
        cfg.check_quorum = false;
    });
    let leader = c.elect();
    let term = c.node(&leader).term();
    let follower = c.nodes.keys().find(|k| **k != leader).unwrap().clone();
    c.isolate(&follower);
    c.advance(2_000);
    (c, leader, follower, term)
}

#[wasm_bindgen_test(unsupported = test)]
fn pre_vote_isolated_node_does_not_disrupt_on_rejoin() {
    let (mut c, leader, follower, term) = isolate_and_rejoin_a_follower(true);
    // Cut off, it kept asking for pre-votes but never bumped its term.
    assert_eq!(c.node(&follower).term(), term);
    assert!(c.events[&follower].contains(&Event::RoleChanged {
        role: Role::PreCandidate,
        term
    }));
    c.heal();
    c.advance(1_000);
    assert_eq!(c.leader(), Some(leader.clone()));
    for n in c.nodes.values() {
        assert_eq!(n.term(), term, "{}", n.id());
        assert_eq!(n.leader_id(), Some(&leader));
    }

    // Control: without pre-vote the same partition inflates the follower's term, and its
    // return deposes the leader.
    let (mut c, _, follower, term) = isolate_and_rejoin_a_follower(false);
    assert!(c.node(&follower).term() > term + 3);
    c.heal();
    c.advance(1_000);
    assert!(c.nodes.values().all(|n| n.term() > term + 3));
}

#[wasm_bindgen_test(unsupported = test)]
fn check_quorum_leader_cut_off_from_majority_steps_down() {
    for check_quorum in [true, false] {
        let mut c = Cluster::new(5, |cfg| cfg.check_quorum = check_quorum);
        let leader = c.elect();
        c.isolate(&leader);
        // Within one election timeout (the minimum is the check-quorum window)...
        c.advance(100 + 5);
        let role = c.node(&leader).role();
        if check_quorum {
            assert_eq!(role, Role::Follower);
            assert_eq!(c.node(&leader).leader_id(), None);
        } else {
            // ...whereas without check-quorum it would go on believing it leads.
            assert_eq!(role, Role::Leader);
        }
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn leader_stickiness_followers_ignore_votes_while_the_leader_is_alive() {
    let mut c = Cluster::new(3, |cfg| cfg.pre_vote = false);
    let leader = c.elect();
    let term = c.node(&leader).term();
    let follower = c.nodes.keys().find(|k| **k != leader).unwrap().clone();
    // A disruptive candidate in a later term, with a log as good as anyone's.
    let rv = RequestVote {
        term: term + 5,
        candidate_id: follower.clone(),
        last_log_index: 100,
        last_log_term: term,
        pre_vote: false,
    };
    let mut out = Vec::new();
    let now = c.now;
    for n in c.nodes.values_mut().filter(|n| *n.id() != follower) {
        n.step(now, &follower, Message::RequestVote(rv.clone()), &mut out)
            .unwrap();
        assert_eq!(n.term(), term, "{} bumped its term", n.id());
    }
    assert!(
        out.iter()
            .all(|(_, m)| matches!(m, Message::RequestVoteResponse(r) if !r.vote_granted))
    );
    assert_eq!(c.leader(), Some(leader));
}

// ----------------------------------------------------------------------------------------------
// Single node, determinism, hostile input.
// ----------------------------------------------------------------------------------------------

#[wasm_bindgen_test(unsupported = test)]
fn single_node_cluster_elects_itself_and_commits_alone() {
    let me = id("solo");
    let cfg = test_config(&me, std::slice::from_ref(&me));
    let mut n = Node::new(cfg, Stores::in_memory(), KvStateMachine::new(), 1, 0).unwrap();
    let mut out = Vec::new();
    assert!(matches!(
        n.propose(0, Command::put("a", "1"), &mut out),
        Err(ProposeError::NotLeader { leader: None })
    ));
    let deadline = n.next_deadline();
    assert!((100..=200).contains(&deadline));
    n.tick(deadline - 1, &mut out).unwrap();
    assert_eq!(n.role(), Role::Follower);
    n.tick(deadline, &mut out).unwrap();
    assert_eq!(n.role(), Role::Leader);
    assert_eq!(n.leader_id(), Some(&me));
    assert_eq!(n.commit_index(), 1); // its no-op
    let p = n
        .propose(deadline, Command::put("a", "1"), &mut out)
        .unwrap();
    assert_eq!(n.commit_index(), p.index);
    assert_eq!(n.state_machine().get("a").as_deref(), Some("1"));
    assert!(n.take_events().contains(&Event::ProposalApplied {
        index: p.index,
        term: p.term,
        result: raftkv_core::ApplyResult::ok()
    }));
    assert!(out.is_empty(), "nobody to talk to: {out:?}");
    // It stays leader: no quorum to lose.
    n.tick(deadline + 10_000, &mut out).unwrap();
    assert_eq!(n.role(), Role::Leader);
}

#[wasm_bindgen_test(unsupported = test)]
fn same_seed_same_run() {
    let run = || {
        let mut c = Cluster::new(5, |_| {});
        let l = c.elect();
        c.propose(&l, Command::put("a", "b")).unwrap();
        c.advance(500);
        c.crash(&l);
        c.elect();
        (c.now, c.events, c.delivered.len())
    };
    assert_eq!(run(), run());
}

#[wasm_bindgen_test(unsupported = test)]
fn invalid_config_is_refused() {
    let voters = ids(3);
    let mut cfg = test_config(&id("n9"), &voters);
    let new = |cfg| Node::new(cfg, Stores::in_memory(), KvStateMachine::new(), 1, 0);
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
fn assert_sane(n: &Node<KvStateMachine>) {
    let s = n.status();
    assert!(s.snapshot_index <= s.last_applied, "{s:?}");
    assert!(s.last_applied <= s.commit_index, "{s:?}");
    assert!(s.commit_index <= s.last_log_index, "{s:?}");
}

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
    match a % 6 {
        0 => Message::AppendEntries(AppendEntries {
            term: a % 5,
            leader_id: id("n2"),
            prev_log_index: b,
            prev_log_term: c,
            entries,
            leader_commit: d,
            read_seq: e,
        }),
        1 => Message::AppendEntriesResponse(AppendEntriesResponse {
            term: b % 5,
            success: c % 2 == 0,
            match_index: d,
            conflict_index: Some(e),
            conflict_term: (c % 3 == 0).then_some(a),
            read_seq: b,
        }),
        2 => Message::RequestVote(RequestVote {
            term: b % 6,
            candidate_id: if c % 2 == 0 { id("n2") } else { id("n1") },
            last_log_index: d,
            last_log_term: e,
            pre_vote: a % 4 == 2,
        }),
        3 => Message::RequestVoteResponse(RequestVoteResponse {
            term: b % 6,
            vote_granted: c % 2 == 0,
            pre_vote: d % 2 == 0,
        }),
        4 => Message::InstallSnapshot(InstallSnapshot {
            term: b % 5,
            leader_id: id("n2"),
            last_included_index: c,
            last_included_term: d % 5,
            data: if e % 2 == 0 {
                b"{not json".to_vec()
            } else {
                KvStateMachine::new().snapshot()
            },
        }),
        _ => Message::InstallSnapshotResponse(InstallSnapshotResponse {
            term: b % 5,
            last_included_index: c,
        }),
    }
}

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
        out.clear();
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn hostile_snapshot_at_an_absurd_index_is_dropped() {
    let mut f = lone_follower();
    let mut out = Vec::new();
    let is = Message::InstallSnapshot(InstallSnapshot {
        term: 1,
        leader_id: id("n2"),
        last_included_index: u64::MAX,
        last_included_term: 1,
        data: KvStateMachine::new().snapshot(),
    });
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
    });
    f.step(2, &id("n2"), rv, &mut out).unwrap();
    assert_eq!(f.term(), 0);
}

// ----------------------------------------------------------------------------------------------
// Milestone 4: ReadIndex.
// ----------------------------------------------------------------------------------------------

fn read_events(c: &Cluster, n: &NodeId) -> Vec<Event> {
    c.events[n]
        .iter()
        .filter(|e| matches!(e, Event::ReadReady { .. } | Event::ReadFailed { .. }))
        .cloned()
        .collect()
}

fn read_index_at(c: &mut Cluster, n: &NodeId) -> Result<ReadId, ProposeError> {
    let mut out = Vec::new();
    let now = c.now;
    let r = c.nodes.get_mut(n).unwrap().read_index(now, &mut out);
    for (to, m) in out {
        c.queue.push_back((n.clone(), to, m));
    }
    let evs = c.nodes.get_mut(n).unwrap().take_events();
    c.events.entry(n.clone()).or_default().extend(evs);
    r
}

#[wasm_bindgen_test(unsupported = test)]
fn raft_m4_read_index_is_confirmed_by_a_majority_round() {
    let mut c = Cluster::new(3, |_| {});
    let leader = c.elect();
    let p = c.propose(&leader, Command::put("a", "1")).unwrap();
    c.deliver_all();
    let id1 = read_index_at(&mut c, &leader).unwrap();
    let id2 = read_index_at(&mut c, &leader).unwrap();
    assert_ne!(id1, id2);
    // Not before the heartbeat round is acknowledged.
    assert_eq!(read_events(&c, &leader), vec![]);
    c.deliver_all();
    assert_eq!(
        read_events(&c, &leader),
        vec![
            Event::ReadReady {
                id: id1,
                index: p.index
            },
            Event::ReadReady {
                id: id2,
                index: p.index
            },
        ]
    );
    // A follower never serves one; it points at the leader.
    let follower = c.nodes.keys().find(|k| **k != leader).unwrap().clone();
    assert_eq!(
        read_index_at(&mut c, &follower),
        Err(ProposeError::NotLeader {
            leader: Some(leader)
        })
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn raft_m4_wait_applied_blocks_until_applied() {
    let mut c = Cluster::new(3, |_| {});
    let (n1, n2, n3) = (id("n1"), id("n2"), id("n3"));
    c.campaign(&n1);
    c.deliver_all();
    assert_eq!(c.leader(), Some(n1.clone()));
    // n2 misses the write; n1 and n3 commit it, but n3 does not learn that before n1 dies.
    c.cut.insert((n1.clone(), n2.clone()));
    let p = c.propose(&n1, Command::put("a", "1")).unwrap();
    c.deliver_all();
    assert_eq!(c.node(&n1).commit_index(), p.index);
    assert!(c.node(&n3).commit_index() < p.index);
    c.crash(&n1);
    c.heal();

    // n3 takes over, but nobody acknowledges its AppendEntries yet: its no-op is not committed.
    c.filter = Some(Box::new(|_, _, m| {
        !matches!(m, Message::AppendEntriesResponse(_))
    }));
    c.campaign(&n3);
    c.deliver_all();
    assert_eq!(c.leader(), Some(n3.clone()));
    let rid = read_index_at(&mut c, &n3).unwrap();
    c.deliver_all();
    // n2 acknowledged nothing the leader saw, and the write is not applied on n3: no answer.
    assert_eq!(read_events(&c, &n3), vec![]);
    assert!(c.node(&n3).last_applied() < p.index);
    assert_eq!(c.node(&n3).state_machine().get("a"), None);

    // Once the no-op commits, the read index covers the write, and the read is ready only
    // after the write was applied.
    c.heal();
    c.advance(25);
    let evs = &c.events[&n3];
    let ready_at = evs
        .iter()
        .position(|e| matches!(e, Event::ReadReady { id, .. } if *id == rid))
        .expect("read never became ready");
    let Event::ReadReady { index, .. } = evs[ready_at] else {
        unreachable!()
    };
    assert!(
        index > p.index,
        "read index {index} must cover the write and the no-op"
    );
    let applied_at = evs
        .iter()
        .position(|e| {
            *e == Event::Applied {
                index,
                term: c.node(&n3).term(),
            }
        })
        .unwrap();
    assert!(applied_at < ready_at);
    assert!(c.node(&n3).last_applied() >= index);
    assert_eq!(c.node(&n3).state_machine().get("a").as_deref(), Some("1"));
}

#[wasm_bindgen_test(unsupported = test)]
fn deposed_leader_never_answers_a_read() {
    // Cut off from its majority: the read is never confirmed, and fails when check-quorum
    // deposes the leader.
    let mut c = Cluster::new(3, |_| {});
    let old = c.elect();
    c.isolate(&old);
    let rid = read_index_at(&mut c, &old).unwrap();
    c.advance(1_000);
    assert_eq!(read_events(&c, &old), vec![Event::ReadFailed { id: rid }]);
    assert!(!c.node(&old).is_leader());
    // Meanwhile the others elected a new leader, which serves reads.
    let new = c.leader().unwrap();
    assert_ne!(new, old);

    // Without check-quorum the old leader goes on believing it leads, but still never
    // answers: no majority acknowledges its round, and the read times out.
    let mut c = Cluster::new(3, |cfg| cfg.check_quorum = false);
    let old = c.elect();
    c.isolate(&old);
    let rid = read_index_at(&mut c, &old).unwrap();
    c.advance(1_000);
    assert!(c.node(&old).is_leader());
    assert_eq!(read_events(&c, &old), vec![Event::ReadFailed { id: rid }]);

    // A leader that learns of a later term fails its pending reads at once.
    let mut c = Cluster::new(3, |_| {});
    let leader = c.elect();
    let follower = c.nodes.keys().find(|k| **k != leader).unwrap().clone();
    let rid = read_index_at(&mut c, &leader).unwrap();
    c.queue.clear();
    let term = c.node(&leader).term();
    let higher = Message::AppendEntriesResponse(AppendEntriesResponse {
        term: term + 1,
        success: false,
        match_index: 0,
        conflict_index: None,
        conflict_term: None,
        read_seq: u64::MAX,
    });
    c.queue.push_back((follower, leader.clone(), higher));
    c.deliver_all();
    assert_eq!(
        read_events(&c, &leader),
        vec![Event::ReadFailed { id: rid }]
    );
}

// ----------------------------------------------------------------------------------------------
// Milestone 5: snapshots.
// ----------------------------------------------------------------------------------------------

#[wasm_bindgen_test(unsupported = test)]
fn raft_m5_create_snapshot_truncates_log_prefix() {
    let mut c = Cluster::new(3, |cfg| cfg.snapshot_threshold = 5);
    let leader = c.elect();
    for i in 0..9 {
        c.propose(&leader, Command::put(format!("k{i}"), format!("v{i}")))
            .unwrap();
    }
    c.deliver_all();
    let n = c.node(&leader);
    let s = n.status();
    assert_eq!(s.commit_index, 10);
    assert_eq!(
        s.snapshot_index, 10,
        "5 applied since the snapshot at 5: another at 10"
    );
    assert_eq!(n.log().base().last_included_index, 10);
    assert!(n.log().term_at(5).is_err());
    assert!(n.log().read_range(1, 11).is_err());
    assert_eq!(n.state_machine().len(), 9);
    // The stored snapshot is the state machine at that index.
    let sm_bytes = n.state_machine().snapshot();
    c.crash(&leader);
    let (meta, data) = c.crashed[&leader].snapshot.load().unwrap().unwrap();
    assert_eq!(meta.last_included_index, 10);
    assert_eq!(data, sm_bytes);
    // Below the threshold nothing is taken.
    let mut c = Cluster::new(3, |cfg| cfg.snapshot_threshold = 50);
    let leader = c.elect();
    c.propose(&leader, Command::put("a", "b")).unwrap();
    c.deliver_all();
    assert_eq!(c.node(&leader).status().snapshot_index, 0);
}

#[wasm_bindgen_test(unsupported = test)]
fn snapshot_trailing_entries_let_a_slightly_lagging_follower_catch_up_without_a_snapshot() {
    // Snapshots every 4 entries, keeping the 6 before each snapshot in the log.
    let mut c = Cluster::new(3, |cfg| {
        cfg.snapshot_threshold = 4;
        cfg.snapshot_trailing = 6;
    });
    let leader = c.elect();
    let lagging = c.nodes.keys().find(|k| **k != leader).unwrap().clone();
    c.isolate(&lagging);
    let behind_from = c.node(&lagging).last_applied();
    for i in 0..4 {
        c.propose(&leader, Command::put(format!("k{i}"), "v"))
            .unwrap();
        c.deliver_all();
    }
    let s = c.node(&leader).status();
    assert!(s.snapshot_index >= 4, "{s:?}");
    // The log keeps the trailing entries behind the snapshot, back past the lagging node.
    let base = c.node(&leader).log().base().last_included_index;
    assert_eq!(base, s.snapshot_index.saturating_sub(6));
    assert!(
        base <= behind_from,
        "base {base}, lagging node at {behind_from}"
    );
    c.heal();
    c.advance(300);
    // Plain AppendEntries were enough: no snapshot crossed the wire.
    assert!(
        !c.delivered
            .iter()
            .any(|(_, to, m)| *to == lagging && matches!(m, Message::InstallSnapshot(_)))
    );
    let f = c.node(&lagging);
    assert_eq!(f.commit_index(), c.node(&leader).commit_index());
    assert_eq!(
        f.state_machine().entries(),
        c.node(&leader).state_machine().entries()
    );
    // A follower further behind than the trailing entries still gets a snapshot.
    c.isolate(&lagging);
    for i in 4..20 {
        c.propose(&leader, Command::put(format!("k{i}"), "v"))
            .unwrap();
        c.deliver_all();
    }
    c.heal();
    c.advance(300);
    assert!(
        c.delivered
            .iter()
            .any(|(_, to, m)| *to == lagging && matches!(m, Message::InstallSnapshot(_)))
    );
    assert_eq!(c.node(&lagging).state_machine().len(), 20);
}

#[wasm_bindgen_test(unsupported = test)]
fn raft_m5_follower_install_snapshot_restores_state() {
    // A follower that fell behind a compacted log catches up through InstallSnapshot.
    let mut c = Cluster::new(3, |cfg| cfg.snapshot_threshold = 4);
    let leader = c.elect();
    let lagging = c.nodes.keys().find(|k| **k != leader).unwrap().clone();
    c.isolate(&lagging);
    for i in 0..12 {
        c.propose(&leader, Command::put(format!("k{i}"), "v"))
            .unwrap();
        c.deliver_all();
    }
    assert!(c.node(&leader).status().snapshot_index >= 8);
    c.heal();
    c.advance(300);
    let snapshots_sent = c
        .delivered
        .iter()
        .filter(|(_, to, m)| *to == lagging && matches!(m, Message::InstallSnapshot(_)))
        .count();
    assert!(snapshots_sent >= 1);
    let f = c.node(&lagging);
    assert_eq!(
        f.state_machine().entries(),
        c.node(&leader).state_machine().entries()
    );
    assert_eq!(f.state_machine().len(), 12);
    assert!(f.status().snapshot_index >= 8);
    assert_eq!(f.commit_index(), c.node(&leader).commit_index());
    assert!(
        c.events[&lagging]
            .iter()
            .any(|e| matches!(e, Event::SnapshotRestored { .. }))
    );
    // It goes on replicating normally afterwards.
    c.propose(&leader, Command::put("after", "v")).unwrap();
    c.advance(25);
    assert_eq!(
        c.node(&lagging).state_machine().get("after").as_deref(),
        Some("v")
    );
}

fn snapshot_msg(index: u64, term: u64, sm: &KvStateMachine) -> Message {
    Message::InstallSnapshot(InstallSnapshot {
        term: 3,
        leader_id: id("n2"),
        last_included_index: index,
        last_included_term: term,
        data: sm.snapshot(),
    })
}

#[wasm_bindgen_test(unsupported = test)]
fn install_snapshot_keeps_a_matching_suffix_and_discards_a_conflicting_log() {
    let mut sm = KvStateMachine::new();
    sm.apply(&Command::put("snap", "yes"));

    // The follower holds the snapshot's last entry: entries after it stay.
    let mut f = lone_follower_with(stores_with_log(2, &[1, 1, 2, 2]));
    let mut out = Vec::new();
    f.step(1, &id("n2"), snapshot_msg(2, 1, &sm), &mut out)
        .unwrap();
    assert!(matches!(&out[0].1, Message::InstallSnapshotResponse(r) if r.last_included_index == 2));
    assert_eq!(f.status().snapshot_index, 2);
    assert_eq!((f.commit_index(), f.last_applied()), (2, 2));
    assert_eq!(f.state_machine().get("snap").as_deref(), Some("yes"));
    assert_eq!(log_terms(f.log()), vec![2, 2]);

    // The follower's log disagrees at the snapshot's index: all of it goes, and it resumes
    // right after the snapshot.
    let mut f = lone_follower_with(stores_with_log(2, &[1, 1, 2, 2]));
    f.step(1, &id("n2"), snapshot_msg(3, 3, &sm), &mut out)
        .unwrap();
    assert_eq!(f.status().last_log_index, 3);
    assert_eq!(log_terms(f.log()), Vec::<u64>::new());
    out.clear();
    let e = vec![entry(4, 3, Some(Command::put("next", "1")))];
    f.step(2, &id("n2"), append(3, (3, 3), e, 4), &mut out)
        .unwrap();
    assert!(the_append_response(&out).success);
    assert_eq!(f.state_machine().get("next").as_deref(), Some("1"));
    assert_eq!(f.state_machine().get("snap").as_deref(), Some("yes"));

    // Bytes the state machine cannot restore change nothing and get no answer.
    let mut f = lone_follower_with(stores_with_log(2, &[1, 1]));
    out.clear();
    let bad = Message::InstallSnapshot(InstallSnapshot {
        term: 3,
        leader_id: id("n2"),
        last_included_index: 5,
        last_included_term: 3,
        data: b"garbage".to_vec(),
    });
    f.step(1, &id("n2"), bad, &mut out).unwrap();
    assert!(out.is_empty());
    assert_eq!(f.status().snapshot_index, 0);
    assert_eq!(log_terms(f.log()), vec![1, 1]);
}

#[wasm_bindgen_test(unsupported = test)]
fn restarted_node_loads_its_snapshot() {
    let mut c = Cluster::new(3, |cfg| cfg.snapshot_threshold = 5);
    let leader = c.elect();
    let other = c.nodes.keys().find(|k| **k != leader).unwrap().clone();
    // Index 1 is the no-op; k0..k3 take 2..=5, where the follower snapshots; k4..k6 follow.
    for i in 0..7 {
        c.propose(&leader, Command::put(format!("k{i}"), "v"))
            .unwrap();
        if i == 3 {
            c.advance(25); // the follower learns commit 5 and snapshots
        }
    }
    c.advance(25);
    let snap_index = c.node(&other).status().snapshot_index;
    assert_eq!(snap_index, 5);
    let state_at_crash = c.node(&other).state_machine().entries();
    assert_eq!(state_at_crash.len(), 7);

    c.crash(&other);
    c.restart(&other);
    // Before hearing from anyone: the snapshot's state, committed and applied up to it.
    let n = c.node(&other);
    assert_eq!(n.status().snapshot_index, 5);
    assert_eq!((n.commit_index(), n.last_applied()), (5, 5));
    assert_eq!(n.state_machine().len(), 4); // k0..k3 (index 1 is the no-op)
    assert!(c.events[&other].contains(&Event::SnapshotRestored {
        index: 5,
        term: c.node(&leader).term()
    }));
    // The rest of its log is applied once the leader tells it the commit index.
    c.advance(25);
    assert_eq!(c.node(&other).state_machine().entries(), state_at_crash);
    assert_eq!(c.node(&other).last_applied(), 8);
}

#[wasm_bindgen_test(unsupported = test)]
fn proposals_resolve_exactly_once_lost_or_unknown() {
    let mut c = Cluster::new(3, |cfg| cfg.snapshot_threshold = 3);
    let old = c.elect();
    // The old leader accepts two proposals it can no longer replicate.
    c.isolate(&old);
    let p1 = c.propose(&old, Command::put("lost1", "x")).unwrap();
    let p2 = c.propose(&old, Command::put("lost2", "x")).unwrap();
    // The others elect a new leader and move well past those indices; their logs compact.
    let ok = c.advance_until(2_000, |c| c.leader().is_some_and(|l| l != old));
    assert!(ok);
    let new = c.leader().unwrap();
    for i in 0..6 {
        c.propose(&new, Command::put(format!("k{i}"), "v")).unwrap();
        c.deliver_all();
    }
    c.heal();
    c.advance(300);
    // Covered by the snapshot the old leader installed: it cannot tell whether they took effect.
    let outcomes: Vec<Event> = c.events[&old]
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::ProposalApplied { .. }
                    | Event::ProposalLost { .. }
                    | Event::ProposalUnknown { .. }
            )
        })
        .cloned()
        .collect();
    assert_eq!(
        outcomes,
        vec![
            Event::ProposalUnknown {
                index: p1.index,
                term: p1.term
            },
            Event::ProposalUnknown {
                index: p2.index,
                term: p2.term
            },
        ]
    );
    assert_eq!(c.node(&old).state_machine().get("lost1"), None);

    // Without snapshots, the overwritten proposal is reported lost, once.
    let mut c = Cluster::new(3, |_| {});
    let old = c.elect();
    c.isolate(&old);
    let p = c.propose(&old, Command::put("lost", "x")).unwrap();
    let ok = c.advance_until(2_000, |c| c.leader().is_some_and(|l| l != old));
    assert!(ok);
    let new = c.leader().unwrap();
    c.propose(&new, Command::put("won", "y")).unwrap();
    c.heal();
    c.advance(300);
    let lost: Vec<&Event> = c.events[&old]
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::ProposalLost { .. } | Event::ProposalApplied { .. }
            )
        })
        .collect();
    assert_eq!(
        lost,
        vec![&Event::ProposalLost {
            index: p.index,
            term: p.term
        }]
    );
}

#[cfg(feature = "protocol-breaks")]
#[wasm_bindgen_test(unsupported = test)]
fn vote_breaks_do_what_they_say() {
    let rv = |cand: &str, term: u64, last: (u64, u64)| {
        Message::RequestVote(RequestVote {
            term,
            candidate_id: id(cand),
            last_log_index: last.0,
            last_log_term: last.1,
            pre_vote: false,
        })
    };
    let granted = |out: &[(NodeId, Message)]| matches!(out.last(), Some((_, Message::RequestVoteResponse(r))) if r.vote_granted);
    let with = |stores, f: fn(&mut raftkv_core::raft::config::ProtocolBreaks)| {
        let mut cfg = test_config(&id("n1"), &ids(3));
        f(&mut cfg.breaks);
        Node::new(cfg, stores, KvStateMachine::new(), 7, 0).unwrap()
    };

    // forget_to_persist_vote: after a restart the node votes again in the same term.
    let mut n = with(Stores::in_memory(), |b| b.forget_to_persist_vote = true);
    let mut out = Vec::new();
    n.step(1, &id("n2"), rv("n2", 3, (0, 0)), &mut out).unwrap();
    assert!(granted(&out));
    let mut n = with(n.into_stores(), |b| b.forget_to_persist_vote = true);
    n.step(2, &id("n3"), rv("n3", 3, (0, 0)), &mut out).unwrap();
    assert!(granted(&out), "voted twice in term 3");

    // skip_log_completeness_check: a candidate missing entries gets the vote.
    let mut n = with(stores_with_log(2, &[1, 2]), |b| {
        b.skip_log_completeness_check = true
    });
    n.step(1, &id("n2"), rv("n2", 3, (1, 1)), &mut out).unwrap();
    assert!(granted(&out));
}
