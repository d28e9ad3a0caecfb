//! Leadership transfer (Raft thesis §3.10): only to another voter, TimeoutNow only once the
//! target holds the leader's whole log, proposals refused while it is pending, abandoned after
//! an election timeout, and a target that wins without pre-vote although every follower heard
//! the leader a moment ago. They run on the hand-driven cluster in `common`, natively and,
//! through wasm-bindgen-test, in wasm32 under Node.

mod common;

use common::fixtures::*;
use common::*;
use raftkv_core::kvraft::{Event, Message};
use raftkv_core::raft::{ProposeError, Role, TimeoutNow, TransferError};
use raftkv_core::types::{Command, NodeId};
use wasm_bindgen_test::wasm_bindgen_test;

/// Asks `n` to hand its leadership to `to` now, queues what it sends and records its events.
fn transfer(c: &mut Cluster, n: &NodeId, to: Option<&str>) -> Result<NodeId, TransferError> {
    let mut out = Vec::new();
    let now = c.now;
    let r = c
        .nodes
        .get_mut(n)
        .unwrap()
        .transfer_leader(now, to.map(id), &mut out)
        .unwrap();
    for (to, m) in out {
        c.queue.push_back((n.clone(), to, m));
    }
    let evs = c.nodes.get_mut(n).unwrap().take_events();
    c.events.entry(n.clone()).or_default().extend(evs);
    r
}

/// The TransferStarted and TransferAbandoned events `n` emitted, in order.
fn transfer_events(c: &Cluster, n: &NodeId) -> Vec<Event> {
    c.events[n]
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::TransferStarted { .. } | Event::TransferAbandoned { .. }
            )
        })
        .cloned()
        .collect()
}

/// Whether a TimeoutNow is in flight.
fn timeout_now_queued(c: &Cluster) -> bool {
    c.queue
        .iter()
        .any(|(_, _, m)| matches!(m, Message::TimeoutNow(_)))
}

/// A 3-node cluster with a leader that committed its no-op, and its two followers.
fn three_nodes() -> (Cluster, NodeId, NodeId, NodeId) {
    let mut c = Cluster::new(3, |_| {});
    let leader = c.elect();
    let mut others = c.nodes.keys().filter(|k| **k != leader).cloned();
    let (a, b) = (others.next().unwrap(), others.next().unwrap());
    (c, leader, a, b)
}

/// Raft thesis §3.10: leadership goes only to another voter. A follower refuses and points at
/// the leader; a stranger or the leader itself is not a target; with no target named, the
/// voter with the longest log is chosen; a lone voter has nobody to hand over to.
#[wasm_bindgen_test(unsupported = test)]
fn transfer_goes_only_to_another_voter() {
    let (mut c, leader, a, b) = three_nodes();
    assert_eq!(
        transfer(&mut c, &a, Some(b.as_str())),
        Err(TransferError::NotLeader {
            leader: Some(leader.clone())
        })
    );
    assert_eq!(
        transfer(&mut c, &leader, Some("stranger")),
        Err(TransferError::NotVoter { id: id("stranger") })
    );
    assert_eq!(
        transfer(&mut c, &leader, Some(leader.as_str())),
        Err(TransferError::NotVoter { id: leader.clone() })
    );
    assert_eq!(c.node(&leader).transfer_target(), None);

    // `b` misses the next writes: with no target named, `a` (the longer log) is chosen.
    c.cut.insert((leader.clone(), b.clone()));
    c.propose(&leader, Command::put("k", "v")).unwrap();
    c.deliver_all();
    assert_eq!(transfer(&mut c, &leader, None), Ok(a.clone()));
    assert_eq!(c.node(&leader).transfer_target(), Some(&a));
    assert_eq!(c.node(&leader).status().transfer_to, Some(a.clone()));
    assert_eq!(
        transfer_events(&c, &leader),
        vec![Event::TransferStarted { to: a }]
    );

    // A single voter has nobody to hand over to.
    let mut solo = Cluster::new(1, |_| {});
    let me = solo.elect();
    assert_eq!(
        transfer(&mut solo, &me, None),
        Err(TransferError::NoCandidate)
    );
}

/// Raft thesis §3.10, step 2: the leader sends TimeoutNow only once the target's log matches
/// its own to the end (at once if it already does, otherwise after replicating to it), so the
/// target can win the election and loses nothing that was committed.
#[wasm_bindgen_test(unsupported = test)]
fn timeout_now_goes_only_to_a_caught_up_target() {
    // A target that lags: the leader replicates first, and TimeoutNow leaves only when the
    // target's answer shows it holds everything.
    let (mut c, leader, a, _) = three_nodes();
    let (l, t) = (leader.clone(), a.clone());
    c.filter = Some(Box::new(move |from, to, m| {
        !(from == &l && to == &t && matches!(m, Message::AppendEntries(_)))
    }));
    for i in 0..3 {
        c.propose(&leader, Command::put(format!("k{i}"), "v"))
            .unwrap();
    }
    c.deliver_all();
    let last = c.node(&leader).status().last_log_index;
    assert!(c.node(&a).status().last_log_index < last);
    assert_eq!(transfer(&mut c, &leader, Some(a.as_str())), Ok(a.clone()));
    c.deliver_all();
    assert!(!timeout_now_queued(&c), "TimeoutNow to a target that lags");
    c.filter = None;
    let mut steps = 0;
    while !timeout_now_queued(&c) {
        if !c.deliver_one() {
            c.now += 5;
            c.tick_all();
        }
        steps += 1;
        assert!(steps < 10_000, "TimeoutNow never sent");
    }
    // When it leaves, the target holds the leader's whole log.
    assert_eq!(c.node(&a).status().last_log_index, last);
    c.deliver_all();
    assert_eq!(c.leader(), Some(a.clone()));
    assert!(c.node(&a).commit_index() >= last);

    // A target already caught up is told at once, in the Ready of the request itself.
    let (mut c, leader, a, _) = three_nodes();
    transfer(&mut c, &leader, Some(a.as_str())).unwrap();
    let term = c.node(&leader).term();
    assert!(c.queue.iter().any(|(from, to, m)| from == &leader
        && to == &a
        && *m
            == Message::TimeoutNow(TimeoutNow {
                term,
                leader_id: leader.clone()
            })));
}

/// Raft thesis §3.10, step 1: while a transfer is pending the leader accepts no proposal
/// (entries it appended could keep the target from catching up), and says to whom it hands
/// over.
#[wasm_bindgen_test(unsupported = test)]
fn proposals_are_refused_while_a_transfer_is_pending() {
    let (mut c, leader, a, _) = three_nodes();
    c.filter = Some(Box::new(|_, _, m| !matches!(m, Message::TimeoutNow(_))));
    transfer(&mut c, &leader, Some(a.as_str())).unwrap();
    let last = c.node(&leader).status().last_log_index;
    assert_eq!(
        c.propose(&leader, Command::put("k", "v")),
        Err(ProposeError::Transferring { to: a })
    );
    assert_eq!(c.node(&leader).status().last_log_index, last);
}

/// Raft thesis §3.10: a transfer that has not completed within an election timeout is
/// abandoned; the leader leads on in its term and accepts proposals again. Asking again for
/// the same target changes nothing; asking for another abandons the first transfer; stepping
/// down ends a transfer without an abandonment event.
#[wasm_bindgen_test(unsupported = test)]
fn transfer_is_abandoned_after_an_election_timeout_and_proposals_are_accepted_again() {
    let (mut c, leader, a, b) = three_nodes();
    let term = c.node(&leader).term();
    c.filter = Some(Box::new(|_, _, m| !matches!(m, Message::TimeoutNow(_))));
    transfer(&mut c, &leader, Some(a.as_str())).unwrap();
    // The same target again: the transfer and its deadline stay as they were.
    c.advance(50);
    transfer(&mut c, &leader, Some(a.as_str())).unwrap();
    assert_eq!(
        transfer_events(&c, &leader),
        vec![Event::TransferStarted { to: a.clone() }]
    );
    c.advance(200 - 50 - 5); // election_timeout_max is 200 ms
    assert_eq!(c.node(&leader).transfer_target(), Some(&a));
    c.advance(5);
    assert_eq!(c.node(&leader).transfer_target(), None);
    assert_eq!(
        transfer_events(&c, &leader),
        vec![
            Event::TransferStarted { to: a.clone() },
            Event::TransferAbandoned { to: a.clone() }
        ]
    );
    assert_eq!(c.leader(), Some(leader.clone()));
    assert_eq!(c.node(&leader).term(), term);
    let p = c.propose(&leader, Command::put("k", "v")).unwrap();
    c.deliver_all();
    assert!(c.node(&leader).commit_index() >= p.index);

    // Another target replaces the pending one.
    transfer(&mut c, &leader, Some(a.as_str())).unwrap();
    transfer(&mut c, &leader, Some(b.as_str())).unwrap();
    assert_eq!(c.node(&leader).transfer_target(), Some(&b));
    assert_eq!(
        transfer_events(&c, &leader)[2..],
        [
            Event::TransferStarted { to: a.clone() },
            Event::TransferAbandoned { to: a.clone() },
            Event::TransferStarted { to: b.clone() },
        ]
    );

    // Cut off, the leader steps down (check-quorum): that ends the transfer, without an
    // abandonment (the target did not fail; this node no longer leads).
    c.isolate(&leader);
    c.advance(150);
    assert_eq!(c.node(&leader).role(), Role::Follower);
    assert_eq!(c.node(&leader).transfer_target(), None);
    assert_eq!(transfer_events(&c, &leader).len(), 5);
}

/// Raft thesis §3.10, step 3, and §4.2.3: the target campaigns as soon as TimeoutNow arrives,
/// with no pre-vote round, and wins although every follower heard the leader a moment ago
/// (the vote request says it comes from a transfer, so leader stickiness lets it through).
#[wasm_bindgen_test(unsupported = test)]
fn transfer_target_wins_without_pre_vote_though_followers_heard_the_leader_recently() {
    let (mut c, leader, a, b) = three_nodes();
    assert!(c.node(&a).config().pre_vote && c.node(&a).config().check_quorum);
    let term = c.node(&leader).term();
    let before = c.delivered.len();
    let at = c.now;
    transfer(&mut c, &leader, Some(a.as_str())).unwrap();
    c.deliver_all();
    assert_eq!(
        c.now, at,
        "no time passed: every follower heard the leader just now"
    );
    assert_eq!(c.leader(), Some(a.clone()));
    assert_eq!(c.node(&a).term(), term + 1);
    assert_eq!(c.node(&leader).role(), Role::Follower);
    assert_eq!(c.node(&b).leader_id(), Some(&a));
    let votes: Vec<_> = c.delivered[before..]
        .iter()
        .filter_map(|(_, _, m)| match m {
            Message::RequestVote(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(votes.len(), 2, "one request to each voter");
    assert!(
        votes
            .iter()
            .all(|r| r.transfer && !r.pre_vote && r.term == term + 1)
    );
    // The new leader serves writes.
    let p = c.propose(&a, Command::put("k", "v")).unwrap();
    c.deliver_all();
    assert!(c.node(&a).commit_index() >= p.index);
}

/// Raft thesis §3.10: only the leader of the receiver's term can make it campaign; TimeoutNow
/// from an older term, from a node it does not follow, or naming another leader is ignored.
#[wasm_bindgen_test(unsupported = test)]
fn timeout_now_counts_only_from_the_leader_of_the_term() {
    let mut f = lone_follower();
    let mut out = Vec::new();
    let tn = |term, leader: &str| {
        Message::TimeoutNow(TimeoutNow {
            term,
            leader_id: id(leader),
        })
    };
    // No leader known yet.
    f.step(1, &id("n2"), tn(0, "n2"), &mut out).unwrap();
    assert_eq!((f.role(), f.term()), (Role::Follower, 0));
    // n2 leads term 2.
    f.step(2, &id("n2"), append(2, (0, 0), vec![], 0), &mut out)
        .unwrap();
    for (from, msg) in [
        ("n2", tn(1, "n2")), // older term
        ("n3", tn(2, "n3")), // not our leader
        ("n3", tn(2, "n2")), // forged leader id
    ] {
        f.step(3, &id(from), msg, &mut out).unwrap();
        assert_eq!((f.role(), f.term()), (Role::Follower, 2), "{from}");
    }
    out.clear();
    f.step(4, &id("n2"), tn(2, "n2"), &mut out).unwrap();
    assert_eq!((f.role(), f.term()), (Role::Candidate, 3));
    assert!(
        out.iter()
            .all(|(_, m)| matches!(m, Message::RequestVote(r) if r.transfer && !r.pre_vote))
    );
    assert_eq!(out.len(), 2);
}
