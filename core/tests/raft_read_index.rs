//! ReadIndex reads (Raft thesis §6.4; Raft §8): a read is answered only after a majority
//! confirms the leader, once the leader has committed in its term and applied up to the read
//! index; a deposed or cut-off leader never answers one. They run on the hand-driven cluster in
//! `common`, natively and, through wasm-bindgen-test, in wasm32 under Node.

mod common;

use common::*;
use raftkv_core::kvraft::{Event, Message};
use raftkv_core::raft::{AppendEntriesResponse, ProposeError, ReadId};
use raftkv_core::types::{Command, NodeId};
use wasm_bindgen_test::wasm_bindgen_test;

/// The ReadReady and ReadFailed events `n` emitted, in order.
fn read_events(c: &Cluster, n: &NodeId) -> Vec<Event> {
    c.events[n]
        .iter()
        .filter(|e| matches!(e, Event::ReadReady { .. } | Event::ReadFailed { .. }))
        .cloned()
        .collect()
}

/// Asks `n` for a read index now, queues what it sends and records its events.
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

/// Raft thesis §6.4 (ReadIndex, steps 2 and 3): the leader records its commit index as the
/// read index and answers only after a heartbeat round acknowledged by a majority; a
/// follower never serves one and points at the leader.
#[wasm_bindgen_test(unsupported = test)]
fn read_index_is_confirmed_by_a_majority_round() {
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

/// Raft thesis §6.4 (ReadIndex, steps 1 and 4; Raft §8): a new leader answers no read before
/// its no-op commits, and its read index covers the earlier write, which is then applied. The seed's `TestRaft_M4_WaitAppliedBlocksUntilApplied`.
#[wasm_bindgen_test(unsupported = test)]
fn read_waits_for_a_commit_in_the_leaders_term_and_for_the_read_index_to_apply() {
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
    // The host answers once the read index is applied (the node reports a read ready as soon
    // as it is confirmed; applying happens in the host, after the entries are durable).
    assert!(
        evs.iter().any(|e| *e
            == Event::Applied {
                index,
                term: c.node(&n3).term(),
            }),
        "the read index was never applied"
    );
    assert!(c.node(&n3).last_applied() >= index);
    assert_eq!(c.node(&n3).state_machine().get("a").as_deref(), Some("1"));
}

/// Raft thesis §6.4 (ReadIndex, step 3) with §6.2 (check-quorum): a leader cut off from its
/// majority, deposed or not, never confirms a read; one that learns of a later term fails
/// its pending reads at once.
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
        sent_at: 0,
    });
    c.queue.push_back((follower, leader.clone(), higher));
    c.deliver_all();
    assert_eq!(
        read_events(&c, &leader),
        vec![Event::ReadFailed { id: rid }]
    );
}
