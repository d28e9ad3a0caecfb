//! What the page's drawer, vote dots, Logs markers and verdict read from the state: text seeds,
//! message fields, a leader's per-peer progress, the vote replies a candidate received, a
//! message dropped by hand, trace line numbers, and the stale reads the verdict leaves out.
#![cfg(not(target_arch = "wasm32"))]

use raftkv_core::sim::ClientOp;
use raftkv_web::contract::{Options, SeedValue, fnv1a64, text_seed};
use raftkv_web::session::Session;
use raftkv_web::view::state;

mod support;
use support::{leader, run_until, session_of};

fn with_seed(seed: &str) -> Result<Session, String> {
    Session::new(Options {
        seed: Some(SeedValue::Text(seed.to_string())),
        ..Options::default()
    })
}

#[test]
fn any_text_is_a_seed_and_the_same_text_replays_the_same_run() {
    // FNV-1a's published test vectors: the hash is the documented one, not an accident.
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    assert_eq!(text_seed(" 42 "), 42, "a decimal u64 is itself");
    assert_eq!(text_seed("18446744073709551615"), u64::MAX);
    for bad in ["hello world", "-5", "0x10", "18446744073709551616", ""] {
        assert_eq!(text_seed(bad), fnv1a64(bad.as_bytes()), "{bad:?}");
        let mut a = with_seed(bad).unwrap_or_else(|e| panic!("{bad:?} refused: {e}"));
        let mut b = with_seed(&format!("  {bad} ")).unwrap();
        a.advance(1500.0).unwrap();
        b.advance(1500.0).unwrap();
        let (sa, sb) = (state(&mut a), state(&mut b));
        assert_eq!(sa.seed, text_seed(bad).to_string());
        assert_eq!(
            format!("{:?}", sa.trace),
            format!("{:?}", sb.trace),
            "{bad:?}"
        );
        assert!(sa.events > 100);
    }
    let mut a = with_seed("hello world").unwrap();
    let mut b = with_seed("hello worle").unwrap();
    a.advance(1500.0).unwrap();
    b.advance(1500.0).unwrap();
    assert_ne!(
        format!("{:?}", state(&mut a).trace),
        format!("{:?}", state(&mut b).trace),
        "two texts, two runs"
    );
}

#[test]
fn trace_lines_are_numbered_in_order_without_gaps() {
    let mut s = session_of(5, 3);
    s.advance(3000.0).unwrap();
    let st = state(&mut s);
    assert!(st.trace.len() > 5);
    for w in st.trace.windows(2) {
        assert_eq!(w[1].seq, w[0].seq + 1);
    }
    assert!(st.last_event.is_some(), "the last event is told");
}

#[test]
fn messages_carry_every_field_and_replies_say_granted_or_not() {
    let mut s = session_of(5, 5);
    let mut seen_vote = false;
    let mut seen_append = false;
    let mut seen_reply = false;
    for _ in 0..400 {
        s.step();
        let st = state(&mut s);
        for m in &st.messages {
            let names: Vec<&str> = m.fields.iter().map(|[k, _]| k.as_str()).collect();
            match m.kind.as_str() {
                "request_vote" => {
                    seen_vote = true;
                    assert_eq!(
                        names,
                        ["term", "candidate", "last_log", "pre_vote", "transfer"]
                    );
                }
                "append_entries" => {
                    seen_append = true;
                    for f in [
                        "prev_log_index",
                        "prev_log_term",
                        "entries",
                        "leader_commit",
                    ] {
                        assert!(names.contains(&f), "{f} in {names:?}");
                    }
                }
                "request_vote_response" | "pre_vote_response" => {
                    seen_reply = true;
                    let granted = m.fields.iter().find(|[k, _]| k == "granted").unwrap();
                    assert_eq!(Some(granted[1] == "true"), m.granted);
                    assert_eq!(m.summary.ends_with("granted"), m.granted == Some(true));
                }
                _ => {}
            }
        }
    }
    assert!(seen_vote && seen_append && seen_reply);
}

#[test]
fn a_leader_shows_each_peers_progress_and_in_flight_entries() {
    let mut s = session_of(3, 9);
    let st = run_until(&mut s, 5000, |st| leader(st).is_some());
    let l = leader(&st).unwrap();
    s.submit(
        ClientOp::Put {
            key: "x".into(),
            value: "1".into(),
        },
        None,
    )
    .unwrap();
    // The write goes out in an AppendEntries that carries its index.
    let st = run_until(&mut s, 1000, |st| {
        st.messages.iter().any(|m| m.entries.is_some())
    });
    let m = st.messages.iter().find(|m| m.entries.is_some()).unwrap();
    let [first, last] = m.entries.unwrap();
    assert!(first <= last && first >= 1);
    let st = run_until(&mut s, 2000, |st| st.ops[0].status == "ok");
    s.advance(200.0).unwrap();
    let st2 = state(&mut s);
    let ln = st2.nodes.iter().find(|n| n.id == l).unwrap();
    assert_eq!(ln.progress.len(), 3, "every member, the leader too");
    for p in &ln.progress {
        assert!(p.match_index >= st.ops[0].index.unwrap(), "{p:?}");
        assert_eq!(p.next_index, p.match_index + 1, "{p:?}");
    }
    assert!(
        st2.nodes
            .iter()
            .filter(|n| n.id != l)
            .all(|n| n.progress.is_empty()),
        "only a leader knows progress"
    );
}

#[test]
fn a_candidate_lists_the_vote_replies_it_received() {
    // Step through the first elections: whenever a node is a (pre-)candidate with replies, each
    // reply is from a distinct other node, and one that became leader had a majority granted.
    let mut found = false;
    for seed in 1..=5 {
        let mut s = session_of(5, seed);
        for _ in 0..3000 {
            s.step();
            let st = state(&mut s);
            for n in &st.nodes {
                if n.role == "candidate" || n.role == "pre_candidate" {
                    let mut from: Vec<&str> = n.votes.iter().map(|v| v.from.as_str()).collect();
                    assert!(!from.contains(&n.id.as_str()));
                    from.sort();
                    from.dedup();
                    assert_eq!(
                        from.len(),
                        n.votes.len(),
                        "one reply per voter: {:?}",
                        n.votes
                    );
                    found |= n.votes.iter().any(|v| v.granted);
                } else {
                    assert!(n.votes.is_empty(), "{} {}: {:?}", n.id, n.role, n.votes);
                }
            }
            if leader(&st).is_some() {
                break;
            }
        }
    }
    assert!(found, "no granted vote seen by a candidate");
}

#[test]
fn a_message_dropped_by_hand_never_arrives_and_is_shown_dropped() {
    let mut s = session_of(3, 2);
    let st = run_until(&mut s, 5000, |st| {
        leader(st).is_some() && !st.messages.is_empty()
    });
    let m = st.messages[0].clone();
    let before = st
        .links
        .iter()
        .find(|l| l.from == m.from && l.to == m.to)
        .unwrap()
        .clone();
    s.drop_message(m.id as f64).unwrap();
    let st = state(&mut s);
    assert!(st.messages.iter().all(|x| x.id != m.id), "gone from flight");
    assert!(
        st.drops
            .iter()
            .any(|d| d.reason == "by_hand" && d.from == m.from && d.to == m.to)
    );
    let after = st
        .links
        .iter()
        .find(|l| l.from == m.from && l.to == m.to)
        .unwrap();
    assert_eq!(after.dropped, before.dropped + 1);
    s.advance(500.0).unwrap();
    let st = state(&mut s);
    let end = st
        .links
        .iter()
        .find(|l| l.from == m.from && l.to == m.to)
        .unwrap();
    assert!(end.delivered >= before.delivered, "the link still works");
    assert!(st.violations.is_empty());
    let e = s.drop_message(m.id as f64).unwrap_err();
    assert!(e.contains("not in flight"), "{e}");
    assert!(s.drop_message(-1.0).is_err());
}

#[test]
fn the_verdict_counts_stale_reads_it_leaves_out_and_checks_their_values() {
    let mut s = session_of(3, 4);
    let st = run_until(&mut s, 5000, |st| leader(st).is_some());
    let l = leader(&st).unwrap();
    let f = st.nodes.iter().find(|n| n.id != l).unwrap().id.clone();
    s.submit(
        ClientOp::Put {
            key: "x".into(),
            value: "1".into(),
        },
        None,
    )
    .unwrap();
    run_until(&mut s, 2000, |st| {
        st.ops.iter().all(|o| o.status != "pending")
    });
    s.advance(200.0).unwrap();
    // The follower is cut off, then x changes: a stale read there returns the old value.
    s.isolate(&f).unwrap();
    s.submit(
        ClientOp::Put {
            key: "x".into(),
            value: "2".into(),
        },
        None,
    )
    .unwrap();
    run_until(&mut s, 3000, |st| {
        st.ops.iter().all(|o| o.status != "pending")
    });
    let policy = Session::read_policy("stale").unwrap();
    s.submit(
        ClientOp::Get {
            key: "x".into(),
            policy,
        },
        Some(&f),
    )
    .unwrap();
    let st = run_until(&mut s, 3000, |st| {
        st.ops.iter().all(|o| o.status != "pending")
    });
    let read = st.ops.last().unwrap();
    assert_eq!(
        read.node.as_deref(),
        Some(f.as_str()),
        "served where it was sent"
    );
    assert_eq!(
        read.result.as_deref(),
        Some("value=\"1\""),
        "an old value, from the cut-off node"
    );
    assert_eq!(st.history.stale_unchecked, 1);
    assert_eq!(st.history.stale_invented, 0);
    assert_eq!(st.history.ops, 2, "the two puts are checked");
    assert_eq!(st.history.linearizable, Some(true));
}

#[test]
fn a_partition_cuts_between_groups_only_and_says_what_is_wrong() {
    let mut s = session_of(5, 1);
    s.partition(" n1, n2 | n3,n4 ").unwrap();
    let st = state(&mut s);
    let cut = |a: &str, b: &str| {
        st.links
            .iter()
            .find(|l| l.from == a && l.to == b)
            .unwrap()
            .cut
    };
    assert!(cut("n1", "n3") && cut("n3", "n1") && cut("n2", "n4"));
    assert!(
        cut("n1", "n5") && cut("n3", "n5"),
        "n5, in no group, is a group of its own"
    );
    assert!(!cut("n1", "n2") && !cut("n3", "n4"));
    for bad in ["", "n1 | n1", "n1 | n9", "n1,,n2 | "] {
        let e = s.partition(bad).unwrap_err();
        assert!(!e.is_empty(), "{bad:?}");
    }
    assert!(s.partition("n1,n2 | n3,n4,n5").is_ok());
    assert!(
        s.partition("n1,n2,n3,n4,n5").is_err(),
        "one group of everyone cuts nothing"
    );
}
