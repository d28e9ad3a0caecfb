//! What a proposal resolves to: each proposal a leader accepted is reported once, applied, lost
//! (its entry was overwritten) or unknown (a snapshot covered its index). It runs on the
//! hand-driven cluster in `common`, natively and, through wasm-bindgen-test, in wasm32 under
//! Node.

mod common;

use common::*;
use raftkv_core::kvraft::Event;
use raftkv_core::types::Command;
use wasm_bindgen_test::wasm_bindgen_test;

/// Raft §5.3 (a deposed leader's uncommitted entries are overwritten by the new leader's)
/// and Raft thesis §6.3 (a client may not learn whether its command took effect): the old
/// leader reports an overwritten proposal lost, once, and one a snapshot covered unknown.
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
