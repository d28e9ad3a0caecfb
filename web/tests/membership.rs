//! The playground session's membership changes and transfers, natively: what the page's
//! "+ Node", Members panel and "Click a node to" modes do, with the errors they show.
#![cfg(not(target_arch = "wasm32"))]

use raftkv_core::sim::ClientOp;
use raftkv_web::contract::State;
use raftkv_web::session::Session;
use raftkv_web::view::state;

mod support;
use support::{leader, session_of};

/// Runs until `pred` holds, failing after `max_ms` of simulated time.
fn wait(s: &mut Session, max_ms: u64, what: &str, pred: impl Fn(&State) -> bool) -> State {
    let st = support::run_until(s, max_ms, &pred);
    assert!(
        pred(&st),
        "no {what} within {max_ms} ms: {:?}",
        st.membership
    );
    st
}

fn member<'a>(st: &'a State, id: &str) -> &'a str {
    &st.nodes.iter().find(|n| n.id == id).unwrap().member
}

/// A 3-node session whose leader committed an entry of its term (it takes changes then).
fn settled(seed: u64) -> Session {
    let mut s = session_of(3, seed);
    s.submit(
        ClientOp::Put {
            key: "a".into(),
            value: "1".into(),
        },
        None,
    )
    .unwrap();
    wait(&mut s, 5_000, "committed put", |st| {
        leader(st).is_some() && st.ops[0].status == "ok"
    });
    s
}

#[test]
fn a_joining_node_becomes_a_learner_then_a_voter() {
    let mut s = settled(3);
    let id = s.add_node().unwrap();
    assert_eq!(id, "n4");
    let st = state(&mut s);
    assert_eq!((st.nodes.len(), member(&st, "n4")), (4, "joining"));
    assert_eq!(st.links.len(), 12, "every ordered pair of 4 nodes");
    let e = s.promote("n4").unwrap_err();
    assert_eq!(
        e,
        "cannot promote n4: it is not a learner (add it as a learner first)"
    );
    s.add_learner("n4").unwrap();
    let st = wait(&mut s, 2_000, "learner", |st| member(st, "n4") == "learner");
    assert_eq!(st.membership.learners, ["n4"]);
    // Promotion waits for the learner to catch up; the page retries, so does this.
    let end = s.now() + 3_000;
    while let Err(e) = s.promote("n4") {
        assert!(e.starts_with("cannot promote n4: "), "{e}");
        assert!(s.now() < end, "never caught up: {e}");
        s.advance(20.0).unwrap();
    }
    let st = wait(&mut s, 2_000, "voter", |st| member(st, "n4") == "voter");
    assert_eq!(st.membership.voters, ["n1", "n2", "n3", "n4"]);
    assert!(st.membership.learners.is_empty());
    assert!(st.violations.is_empty(), "{:?}", st.violations);
}

#[test]
fn removing_the_leader_greys_it_out_and_another_leads() {
    let mut s = settled(5);
    let old = leader(&state(&mut s)).unwrap();
    s.remove(&old).unwrap();
    let st = wait(&mut s, 3_000, "a new leader", |st| {
        member(st, &old) == "removed" && leader(st).is_some_and(|l| l != old)
    });
    assert_eq!(st.membership.voters.len(), 2);
    assert!(!st.membership.voters.contains(&old));
    assert!(st.violations.is_empty(), "{:?}", st.violations);
}

#[test]
fn replacing_the_leader_goes_through_a_joint_configuration() {
    let mut s = settled(7);
    let old = leader(&state(&mut s)).unwrap();
    let fresh = s.add_node().unwrap();
    s.replace(&old, &fresh).unwrap();
    let st = wait(&mut s, 3_000, "joint", |st| st.membership.joint);
    assert!(st.membership.outgoing.contains(&old));
    assert!(st.membership.voters.contains(&fresh));
    assert_eq!(member(&st, &old), "outgoing");
    assert_eq!(member(&st, &fresh), "incoming");
    let st = wait(&mut s, 5_000, "the replacement done", |st| {
        !st.membership.joint
            && member(st, &old) == "removed"
            && leader(st).is_some_and(|l| l != old)
    });
    assert!(st.membership.voters.contains(&fresh));
    assert!(st.violations.is_empty(), "{:?}", st.violations);
}

#[test]
fn leadership_moves_to_the_node_asked() {
    let mut s = settled(9);
    let st = state(&mut s);
    let from = leader(&st).unwrap();
    let to = st.nodes.iter().find(|n| n.id != from).unwrap().id.clone();
    assert_eq!(s.transfer_leader(&to).unwrap(), from);
    let st = state(&mut s);
    let l = st.nodes.iter().find(|n| n.id == from).unwrap();
    assert!(l.transfer_to.is_none() || l.transfer_to.as_deref() == Some(&*to));
    wait(&mut s, 2_000, "the new leader", |st| {
        leader(st).as_deref() == Some(&*to)
    });
    assert_eq!(
        s.transfer_leader(&to).unwrap_err(),
        format!("{to} leads already")
    );
}

#[test]
fn refusals_are_readable() {
    let mut s = settled(11);
    let l = leader(&state(&mut s)).unwrap();
    let f = ["n1", "n2", "n3"].into_iter().find(|x| *x != l).unwrap();
    s.remove(f).unwrap();
    let e = s.remove(&l).unwrap_err();
    assert!(
        e.starts_with(&format!(
            "cannot remove {l}: a configuration change is in progress (entry "
        )),
        "{e}"
    );
    assert_eq!(
        s.replace("n1", "n1").unwrap_err(),
        "cannot replace n1 by itself"
    );
    assert!(s.add_learner("n9").unwrap_err().contains("unknown node"));
    for _ in 0..6 {
        s.add_node().unwrap();
    }
    assert!(s.add_node().unwrap_err().contains("at most 9 nodes"));
    s.kill(&l).unwrap();
    let e = s.add_learner("n5").unwrap_err();
    assert_eq!(
        e,
        "cannot add n5 as a learner: no node leads right now (wait for an election)"
    );
}
