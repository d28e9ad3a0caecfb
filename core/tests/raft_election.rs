//! Raft elections: a new leader after the old one stops, terms forcing step-down, one durable
//! vote per term, the election restriction, pre-vote, check-quorum, leader stickiness, a
//! single-node cluster, and the deliberate vote breaks. Multi-node tests run on the hand-driven
//! cluster in `common`. They run natively and, through wasm-bindgen-test, in wasm32 under Node.

mod common;

use common::fixtures::*;
use common::*;
use raftkv_core::KvStateMachine;
use raftkv_core::kvraft::{AppendEntries, Event, Message, Stores};
use raftkv_core::raft::{AppendEntriesResponse, Host, ProposeError, RequestVote, Role};
use raftkv_core::types::{Command, NodeId};
use wasm_bindgen_test::wasm_bindgen_test;

/// Raft §5.2 (leader election): once the leader stops, a follower's election timeout fires
/// and a new leader wins a later term within about one timeout, then serves writes. The
/// seed's `TestRaft_M2_Election_HappensAfterLeaderStops`.
#[wasm_bindgen_test(unsupported = test)]
fn a_new_leader_is_elected_after_the_leader_stops() {
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

/// Raft §5.1 (terms): a leader that sees a later term steps down at once and adopts the
/// term, durably and with no vote (Figure 2); a follower follows a later-term leader and
/// answers a stale one with its own term. The seed's `TestRaft_M2_HigherTermForcesStepDown`.
#[wasm_bindgen_test(unsupported = test)]
fn a_higher_term_forces_step_down_and_a_stale_leader_is_refused() {
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
        sent_at: 0,
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

/// Raft §5.2 (at most one vote per term, first come first served) and Figure 2 (`votedFor`
/// is on stable storage before the answer): the vote still binds after a restart.
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
            transfer: false,
        })
    };
    f.step(VOTES_FROM, &id("n2"), rv("n2"), &mut out).unwrap();
    assert!(matches!(&out[0].1, Message::RequestVoteResponse(r) if r.vote_granted && r.term == 3));
    out.clear();
    f.step(VOTES_FROM + 1, &id("n3"), rv("n3"), &mut out)
        .unwrap();
    assert!(matches!(&out[0].1, Message::RequestVoteResponse(r) if !r.vote_granted));

    // After a restart the durable vote still binds.
    let stores = f.into_stores();
    assert_eq!(stores.stable.voted_for().unwrap(), Some(id("n2")));
    let mut f = lone_follower_with(stores);
    out.clear();
    f.step(VOTES_FROM + 2, &id("n3"), rv("n3"), &mut out)
        .unwrap();
    assert!(matches!(&out[0].1, Message::RequestVoteResponse(r) if !r.vote_granted));
}

/// Raft §5.4.1 (election restriction): a vote goes only to a candidate whose log is at least
/// as up to date: an earlier last term loses however long the log, and with equal last terms
/// a shorter log loses.
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
            transfer: false,
        };
        f.step(VOTES_FROM, &id(cand), Message::RequestVote(rv), &mut out)
            .unwrap();
        let Message::RequestVoteResponse(r) = &out[0].1 else {
            panic!("{out:?}")
        };
        assert_eq!(r.vote_granted, granted, "last ({last_index}, {last_term})");
    }
}

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

/// Raft thesis §9.6 (pre-vote: preventing disruptions when a server rejoins the cluster): a
/// partitioned follower never bumps its term, so its return leaves the leader in place;
/// without pre-vote the same partition deposes the leader.
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

/// Raft thesis §6.2 (check-quorum): a leader steps down when an election timeout passes
/// without hearing from a majority; without check-quorum it goes on believing it leads.
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

/// Raft thesis §4.2.3 (disruptive servers; Raft §6): a follower that heard from its leader
/// within the minimum election timeout neither bumps its term nor grants a vote.
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
        transfer: false,
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

/// Raft §5.2 and §5.3 with a majority of one: a single node elects itself after its election
/// timeout, commits its own entries alone, sends nothing and never steps down.
#[wasm_bindgen_test(unsupported = test)]
fn single_node_cluster_elects_itself_and_commits_alone() {
    let me = id("solo");
    let cfg = test_config(&me, std::slice::from_ref(&me));
    let mut n = Host::new(cfg, Stores::in_memory(), KvStateMachine::new(), 1, 0).unwrap();
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

/// No paper rule but raftkv's determinism: the randomised election timeouts of Raft §5.2 come
/// only from each node's seed, so the same seeds replay the same run: the same elections,
/// events and number of messages delivered.
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

/// The deliberate vote breaks (`protocol-breaks`) violate what they name: Figure 2's durable
/// `votedFor` (Raft §5.2: one vote per term) and the election restriction of Raft §5.4.1.
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
            transfer: false,
        })
    };
    let granted = |out: &[(NodeId, Message)]| matches!(out.last(), Some((_, Message::RequestVoteResponse(r))) if r.vote_granted);
    let with = |stores, f: fn(&mut raftkv_core::raft::config::ProtocolBreaks)| {
        let mut cfg = test_config(&id("n1"), &ids(3));
        f(&mut cfg.breaks);
        Host::new(cfg, stores, KvStateMachine::new(), 7, 0).unwrap()
    };

    // forget_to_persist_vote: after a restart the node votes again in the same term.
    let mut n = with(Stores::in_memory(), |b| b.forget_to_persist_vote = true);
    let mut out = Vec::new();
    n.step(VOTES_FROM, &id("n2"), rv("n2", 3, (0, 0)), &mut out)
        .unwrap();
    assert!(granted(&out));
    let mut n = with(n.into_stores(), |b| b.forget_to_persist_vote = true);
    n.step(VOTES_FROM, &id("n3"), rv("n3", 3, (0, 0)), &mut out)
        .unwrap();
    assert!(granted(&out), "voted twice in term 3");

    // skip_log_completeness_check: a candidate missing entries gets the vote.
    let mut n = with(stores_with_log(2, &[1, 2]), |b| {
        b.skip_log_completeness_check = true
    });
    n.step(VOTES_FROM, &id("n2"), rv("n2", 3, (1, 1)), &mut out)
        .unwrap();
    assert!(granted(&out));
}
