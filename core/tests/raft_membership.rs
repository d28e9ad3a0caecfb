//! Membership changes (Raft thesis §4; docs/membership.md): learners, one voter at a time,
//! joint configurations left on their own, when a configuration takes effect, the leader's
//! preconditions, refusals, removed nodes, joining nodes, and the configuration surviving a
//! restart. Run on the hand-driven cluster in `common`, natively and in wasm32 under Node.

mod common;

use std::collections::BTreeSet;

use common::*;
use raftkv_core::kvraft::{Event, LogEntry, Message, Payload};
use raftkv_core::raft::{ConfChange, ConfChangeError, ConfStep, Membership, RequestVote, Role};
use raftkv_core::types::{Command, NodeId};
use wasm_bindgen_test::wasm_bindgen_test;

fn set(names: &[&str]) -> BTreeSet<NodeId> {
    names.iter().map(|n| id(n)).collect()
}

/// The two of `n1..=n3` that are not `leader`.
fn followers_of(leader: &str) -> Vec<&'static str> {
    ["n1", "n2", "n3"]
        .into_iter()
        .filter(|n| *n != leader)
        .collect()
}

/// Elects a leader, then lets only votes through and crashes it: the next leader is elected
/// but its no-op cannot commit. Returns that next leader.
fn leader_whose_noop_cannot_commit(c: &mut Cluster) -> NodeId {
    let leader = c.elect();
    c.filter = Some(Box::new(|_, _, m| {
        matches!(m, Message::RequestVote(_) | Message::RequestVoteResponse(_))
    }));
    c.crash(&leader);
    let ok = c.advance_until(3_000, |c| c.leader().is_some());
    assert!(ok, "no new leader");
    c.leader().unwrap()
}

/// A three-node cluster with a leader whose no-op committed, and a fourth node `n4` that
/// joined as a learner and caught up.
fn three_and_a_learner() -> (Cluster, String) {
    three_and_a_learner_with(0)
}

/// Payloads keep their encoding: a command is the command, the no-op is `null`, and a
/// configuration is `{"config": …}`; each decodes back to what it was.
#[wasm_bindgen_test(unsupported = test)]
fn configuration_entries_have_a_shape_no_command_has() {
    let mut m = Membership::with_voters([id("n1"), id("n2")]);
    m.learners.insert(id("n3"));
    for (payload, json) in [
        (Payload::Noop, "null".to_string()),
        (
            Payload::Command(Command::put("k", "v")),
            serde_json::to_string(&Command::put("k", "v")).unwrap(),
        ),
        (
            Payload::Config(m.clone()),
            r#"{"config":{"voters":["n1","n2"],"learners":["n3"]}}"#.to_string(),
        ),
    ] {
        let e = LogEntry {
            index: 3,
            term: 2,
            payload,
            time: 0,
        };
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(text, format!(r#"{{"index":3,"term":2,"cmd":{json}}}"#));
        assert_eq!(serde_json::from_str::<LogEntry>(&text).unwrap(), e);
    }
}

/// A learner receives and applies the log, but the leader never counts it: with both other
/// voters cut off, nothing commits even though the learner stores every entry.
#[wasm_bindgen_test(unsupported = test)]
fn a_learner_gets_the_log_but_never_counts_toward_a_quorum() {
    let (mut c, leader) = three_and_a_learner();
    let commit = c.node(&id(&leader)).commit_index();
    for other in followers_of(&leader) {
        c.isolate(&id(other));
    }
    // The learner stays connected to the leader.
    c.cut.remove(&(id(&leader), id("n4")));
    c.cut.remove(&(id("n4"), id(&leader)));
    let p = c.propose(&id(&leader), Command::put("a", "1")).unwrap();
    c.advance(60);
    assert_eq!(
        c.node(&id("n4")).status().last_log_index,
        p.index,
        "the learner stores it"
    );
    assert_eq!(
        c.node(&id(&leader)).commit_index(),
        commit,
        "a learner is no quorum"
    );
}

/// Learners never campaign, however long they hear nothing; they still answer a vote
/// request (denying it here: it follows a live leader).
#[wasm_bindgen_test(unsupported = test)]
fn a_learner_never_campaigns_but_answers_vote_requests() {
    let (mut c, _) = three_and_a_learner();
    let term = c.node(&id("n4")).term();
    c.isolate(&id("n4"));
    c.advance(2_000);
    assert_eq!(c.node(&id("n4")).role(), Role::Follower);
    assert_eq!(
        c.node(&id("n4")).term(),
        term,
        "no election, not even a pre-vote bump"
    );
    c.heal();
    let req = Message::RequestVote(RequestVote {
        term: term + 1,
        candidate_id: id("n2"),
        last_log_index: 0,
        last_log_term: 0,
        pre_vote: true,
        transfer: false,
    });
    let mut out = Vec::new();
    let now = c.now;
    c.nodes
        .get_mut(&id("n4"))
        .unwrap()
        .step(now, &id("n2"), req, &mut out)
        .unwrap();
    assert!(
        out.iter()
            .any(|(to, m)| to == &id("n2") && matches!(m, Message::RequestVoteResponse(_))),
        "the learner answers: {out:?}"
    );
}

/// etcd's rule: a learner becomes a voter only once it is caught up; before that the
/// promotion is refused (`NotCaughtUp`) and changes nothing.
#[wasm_bindgen_test(unsupported = test)]
fn a_learner_is_promoted_only_once_caught_up() {
    let mut c = Cluster::new(3, |cfg| cfg.max_promote_lag = 5);
    let leader = c.elect().0;
    c.join("n4");
    c.isolate(&id("n4"));
    c.change(&leader, ConfChange::add_learner(id("n4"), "a4"))
        .unwrap();
    c.advance(50);
    for i in 0..20 {
        c.propose(&id(&leader), Command::put(format!("k{i}"), "v"))
            .unwrap();
    }
    c.advance(50);
    let refused = c.change(&leader, ConfChange::promote(id("n4")));
    assert!(
        matches!(refused, Err(ConfChangeError::NotCaughtUp { .. })),
        "{refused:?}"
    );
    assert!(c.membership(&leader).is_learner(&id("n4")));
    c.heal();
    let ok = c.advance_until(2_000, |c| {
        c.node(&id("n4")).last_applied() == c.node(&id(&leader)).last_applied()
    });
    assert!(ok);
    c.change(&leader, ConfChange::promote(id("n4"))).unwrap();
    let mut want = c.membership(&leader);
    want.learners.remove(&id("n4"));
    want.voters.insert(id("n4"));
    c.settle_on(&want);
    // Four voters: a write now needs three of them.
    assert_eq!(c.membership("n1").voters, set(&["n1", "n2", "n3", "n4"]));
}

/// One change at a time: while a configuration entry has not taken effect, the next change
/// is refused as in progress.
#[wasm_bindgen_test(unsupported = test)]
fn a_second_change_waits_for_the_first_to_take_effect() {
    let mut c = Cluster::new(3, |_| {});
    let leader = c.elect().0;
    c.change(&leader, ConfChange::add_learner(id("n4"), "a4"))
        .unwrap();
    let second = c.change(&leader, ConfChange::add_learner(id("n5"), "a5"));
    assert!(
        matches!(second, Err(ConfChangeError::InProgress { .. })),
        "{second:?}"
    );
    c.advance(100);
    c.change(&leader, ConfChange::add_learner(id("n5"), "a5"))
        .unwrap();
}

/// hashicorp/raft's rule (Ongaro's 2015 fix): a new leader changes the configuration only once
/// an entry of its own term committed.
#[wasm_bindgen_test(unsupported = test)]
fn no_change_before_an_entry_of_the_leaders_term_commits() {
    let mut c = Cluster::new(3, |_| {});
    let new = leader_whose_noop_cannot_commit(&mut c);
    let refused = c.change(new.as_str(), ConfChange::add_learner(id("n9"), "a9"));
    assert!(
        matches!(refused, Err(ConfChangeError::InProgress { .. })),
        "{refused:?}"
    );
    c.heal();
    let ok = c.advance_until(1_000, |c| {
        let n = c.node(&new);
        n.commit_index() == n.status().last_log_index
    });
    assert!(ok);
    c.change(new.as_str(), ConfChange::add_learner(id("n9"), "a9"))
        .unwrap();
}

/// A configuration takes effect when its entry is committed, not when it is appended: with
/// the followers cut off, the leader's entry sits in its log and the configuration in force
/// stays as it was.
#[wasm_bindgen_test(unsupported = test)]
fn a_configuration_takes_effect_on_commit_not_on_append() {
    let mut c = Cluster::new(3, |_| {});
    let leader = c.elect().0;
    let before = c.membership(&leader);
    for other in followers_of(&leader) {
        c.isolate(&id(other));
    }
    let p = c
        .change(&leader, ConfChange::add_learner(id("n4"), "a4"))
        .unwrap();
    c.advance(50);
    assert_eq!(c.node(&id(&leader)).status().last_log_index, p.index);
    assert_eq!(
        c.membership(&leader),
        before,
        "appended, not committed: not in force"
    );
    c.heal();
    let ok = c.advance_until(1_000, |c| c.membership(&leader).is_learner(&id("n4")));
    assert!(ok, "committed: in force");
    let changed = c.events[&id(&leader)]
        .iter()
        .any(|e| matches!(e, Event::MembershipChanged { index, .. } if *index == p.index));
    assert!(changed);
}

/// Replacing a voter is one joint change: the cluster enters the joint configuration and the
/// leader leaves it on its own, ending with the new voter set on every node.
#[wasm_bindgen_test(unsupported = test)]
fn replacing_a_voter_goes_through_a_joint_configuration_and_leaves_it() {
    let mut c = Cluster::new(3, |_| {});
    let leader = c.elect().0;
    let gone = followers_of(&leader)[0];
    c.join("n4");
    c.change(&leader, ConfChange::replace(id(gone), id("n4"), "a4"))
        .unwrap();
    let mut want = Membership::with_voters(
        ["n1", "n2", "n3", "n4"]
            .into_iter()
            .filter(|n| *n != gone)
            .map(id),
    );
    want.addrs.insert(id("n4"), "a4".into());
    want.removed.insert(id(gone));
    c.crash(&id(gone));
    c.settle_on(&want);
    let joint_seen = c.events[&id(&leader)]
        .iter()
        .any(|e| matches!(e, Event::MembershipChanged { membership, .. } if membership.is_joint()));
    assert!(joint_seen, "the change went through a joint configuration");
    c.propose(&id(&leader), Command::put("after", "1")).unwrap();
    let ok = c.advance_until(1_000, |c| {
        c.node(&id("n4")).state_machine().get("after").is_some()
    });
    assert!(ok, "the new voter set commits");
}

/// A leader that removes itself steps down once the change takes effect, and never campaigns
/// again; the others elect a leader among themselves.
#[wasm_bindgen_test(unsupported = test)]
fn a_leader_that_removes_itself_steps_down_and_the_rest_elect_a_leader() {
    let mut c = Cluster::new(3, |_| {});
    let leader = c.elect().0;
    c.change(&leader, ConfChange::remove(id(&leader))).unwrap();
    let ok = c.advance_until(1_000, |c| c.node(&id(&leader)).role() != Role::Leader);
    assert!(ok, "the removed leader steps down");
    let ok = c.advance_until(3_000, |c| c.leader().is_some_and(|l| l.as_str() != leader));
    assert!(ok, "the remaining voters elect a leader");
    let term = c.node(&id(&leader)).term();
    let new = c.leader().unwrap();
    c.advance(1_000);
    assert_eq!(c.leader(), Some(new), "the removed node does not disrupt");
    assert!(
        c.node(&id(&leader)).role() == Role::Follower && c.node(&id(&leader)).term() <= term + 1
    );
}

/// A removed node that never learnt of its removal (it was cut off) campaigns in vain: the
/// members drop its messages and the leader keeps its term.
#[wasm_bindgen_test(unsupported = test)]
fn a_removed_node_cannot_disrupt_the_cluster() {
    let mut c = Cluster::new(3, |_| {});
    let leader = c.elect().0;
    let gone = followers_of(&leader)[0];
    c.isolate(&id(gone));
    c.change(&leader, ConfChange::remove(id(gone))).unwrap();
    let ok = c.advance_until(1_000, |c| !c.membership(&leader).is_member(&id(gone)));
    assert!(ok);
    c.advance(1_000); // The removed node's timers fire over and over.
    let term = c.node(&id(&leader)).term();
    c.heal();
    c.advance(2_000);
    assert_eq!(c.leader().map(|l| l.0), Some(leader.clone()));
    assert_eq!(c.node(&id(&leader)).term(), term);
}

/// Refusals are typed and append nothing.
#[wasm_bindgen_test(unsupported = test)]
fn refused_changes_say_why_and_append_nothing() {
    let mut c = Cluster::new(3, |_| {});
    let leader = c.elect().0;
    let last = c.node(&id(&leader)).status().last_log_index;
    let cases = [
        (
            ConfChange::remove(id("n9")),
            ConfChangeError::UnknownNode { id: id("n9") },
        ),
        (
            ConfChange::promote(id("n2")),
            ConfChangeError::UnknownNode { id: id("n2") },
        ),
        (
            ConfChange::add_learner(id("n2"), "x"),
            ConfChangeError::AlreadyMember { id: id("n2") },
        ),
        (
            ConfChange { steps: vec![] },
            ConfChangeError::Invalid("a change needs a step".into()),
        ),
    ];
    for (change, want) in cases {
        assert_eq!(c.change(&leader, change), Err(want));
    }
    let both = ConfChange {
        steps: vec![
            ConfStep::Remove { id: id("n2") },
            ConfStep::AddLearner {
                id: id("n2"),
                addr: "x".into(),
            },
        ],
    };
    assert!(matches!(
        c.change(&leader, both),
        Err(ConfChangeError::Invalid(_))
    ));
    let follower = followers_of(&leader)[0];
    assert!(matches!(
        c.change(follower, ConfChange::remove(id("n3"))),
        Err(ConfChangeError::NotLeader { .. })
    ));
    assert_eq!(c.node(&id(&leader)).status().last_log_index, last);

    // The last voter cannot go.
    let mut lone = Cluster::new(1, |_| {});
    lone.elect();
    assert_eq!(
        lone.change("n1", ConfChange::remove(id("n1"))),
        Err(ConfChangeError::LastVoter)
    );
}

/// A change whose new voters include too few that answered lately is refused: removing a live
/// voter while another is down would leave a configuration that can commit nothing.
#[wasm_bindgen_test(unsupported = test)]
fn a_change_that_would_leave_no_reachable_quorum_is_refused() {
    let mut c = Cluster::new(3, |_| {});
    let leader = c.elect().0;
    let (down, live) = (followers_of(&leader)[0], followers_of(&leader)[1]);
    c.crash(&id(down));
    c.advance(300);
    assert_eq!(
        c.change(&leader, ConfChange::remove(id(live))),
        Err(ConfChangeError::NoQuorum)
    );
    // Removing the dead one is fine: the leader and the live voter remain.
    c.change(&leader, ConfChange::remove(id(down))).unwrap();
}

/// A node that joins with no configuration waits, never campaigning, until the leader's
/// configuration names it; then it follows.
#[wasm_bindgen_test(unsupported = test)]
fn a_joining_node_waits_for_the_leaders_configuration() {
    let mut c = Cluster::new(3, |_| {});
    let leader = c.elect().0;
    c.join("n4");
    c.advance(2_000);
    let n4 = c.node(&id("n4"));
    assert_eq!(
        (n4.role(), n4.term()),
        (Role::Follower, 0),
        "it never campaigns"
    );
    assert!(n4.membership().is_empty());
    c.change(&leader, ConfChange::add_learner(id("n4"), "a4"))
        .unwrap();
    let ok = c.advance_until(1_000, |c| {
        c.node(&id("n4")).leader_id().map(|l| l.as_str()) == Some(leader.as_str())
            && c.membership("n4").is_learner(&id("n4"))
    });
    assert!(ok, "it follows once named");
    assert_eq!(c.membership("n4").voters, set(&["n1", "n2", "n3"]));
}

/// The configuration is durable: after every node restarts, the one committed in the log is in
/// force before any election (the commit index is stored with the term and vote), and with a
/// snapshot it comes from the snapshot's metadata.
#[wasm_bindgen_test(unsupported = test)]
fn the_configuration_survives_a_restart_from_the_log_and_from_a_snapshot() {
    for threshold in [0, 3] {
        let (mut c, leader) = three_and_a_learner_with(threshold);
        for i in 0..5 {
            c.propose(&id(&leader), Command::put(format!("k{i}"), "v"))
                .unwrap();
        }
        c.advance(100);
        let want = c.membership(&leader);
        for n in ["n1", "n2", "n3", "n4"] {
            c.crash(&id(n));
        }
        for n in ["n1", "n2", "n3", "n4"] {
            c.restart(&id(n));
            assert_eq!(
                c.membership(n),
                want,
                "{n} after restart (snapshot threshold {threshold})"
            );
        }
    }
}

/// [`three_and_a_learner`] with a snapshot threshold (0: none) on every node.
fn three_and_a_learner_with(threshold: u64) -> (Cluster, String) {
    let mut c = Cluster::new(3, |cfg| cfg.snapshot_threshold = threshold);
    let leader = c.elect().0;
    c.join("n4");
    c.configs.get_mut(&id("n4")).unwrap().snapshot_threshold = threshold;
    c.change(&leader, ConfChange::add_learner(id("n4"), "a4"))
        .unwrap();
    let ok = c.advance_until(2_000, |c| {
        c.nodes
            .values()
            .all(|n| n.membership().is_learner(&id("n4")))
            && c.node(&id("n4")).last_applied() == c.node(&id(&leader)).last_applied()
    });
    assert!(ok, "the learner never caught up");
    (c, leader)
}

/// The `conf_change_before_term_commit` break lets a new leader change the configuration
/// before its no-op commits (the simulator's sim_breaks must catch what follows).
#[cfg(feature = "protocol-breaks")]
#[wasm_bindgen_test(unsupported = test)]
fn the_break_lets_a_new_leader_change_before_its_term_commits() {
    let mut c = Cluster::new(3, |cfg| cfg.breaks.conf_change_before_term_commit = true);
    let new = leader_whose_noop_cannot_commit(&mut c);
    c.change(new.as_str(), ConfChange::add_learner(id("n9"), "a9"))
        .unwrap();
}
