//! The network as a control panel: one message in flight duplicated or delayed by hand.
#![cfg(not(target_arch = "wasm32"))]

use raftkv_core::sim::ClientOp;
use raftkv_web::contract::{MessageState, NodeState, Options, SeedValue, State};
use raftkv_web::session::{DUPLICATE_GAP_MS, Session};
use raftkv_web::view::state;

mod support;
use support::{leader, run_until, session_of};

/// Steps `s` one event at a time until `pred` holds (at most 20000 events); returns the state.
fn step_until(s: &mut Session, what: &str, pred: impl Fn(&State) -> bool) -> State {
    for _ in 0..20_000 {
        let st = state(s);
        if pred(&st) {
            return st;
        }
        assert!(s.step(), "nothing left to run while waiting for {what}");
    }
    panic!("never saw {what}");
}

fn in_flight(st: &State, id: u64) -> Option<&MessageState> {
    st.messages.iter().find(|m| m.id == id)
}

fn node<'a>(st: &'a State, id: &str) -> &'a NodeState {
    st.nodes.iter().find(|n| n.id == id).unwrap()
}

fn delivered(st: &State, from: &str, to: &str) -> u64 {
    st.links
        .iter()
        .find(|l| l.from == from && l.to == to)
        .unwrap()
        .delivered
}

/// A session of 3 nodes with a leader and an append carrying an entry in flight; its id.
fn with_an_append_in_flight(seed: u64) -> (Session, MessageState) {
    let mut s = session_of(3, seed);
    run_until(&mut s, 5000, |st| leader(st).is_some());
    let put = ClientOp::Put {
        key: "x".into(),
        value: "1".into(),
    };
    s.submit(put, None).unwrap();
    let st = step_until(&mut s, "an append with entries", |st| {
        st.messages
            .iter()
            .any(|m| m.kind == "append_entries" && m.entries.is_some())
    });
    let m = st
        .messages
        .iter()
        .find(|m| m.kind == "append_entries" && m.entries.is_some())
        .unwrap()
        .clone();
    (s, m)
}

#[test]
fn a_duplicated_append_arrives_twice_and_the_copy_changes_nothing() {
    let (mut s, m) = with_an_append_in_flight(2);
    let copy = s.duplicate_message(m.id as f64).unwrap();
    let st = state(&mut s);
    let c = in_flight(&st, copy).expect("the copy is in flight");
    assert_eq!(
        (&c.from, &c.to, &c.kind, &c.summary),
        (&m.from, &m.to, &m.kind, &m.summary)
    );
    assert_eq!(c.deliver_at, m.deliver_at + DUPLICATE_GAP_MS);
    assert!(in_flight(&st, m.id).is_some(), "the original still flies");
    // The original lands first and appends the entry...
    let st = step_until(&mut s, "the original's delivery", |st| {
        in_flight(st, m.id).is_none()
    });
    assert!(in_flight(&st, copy).is_some());
    let [_, last] = m.entries.unwrap();
    assert!(node(&st, &m.to).last_log_index >= last);
    // ...then the copy, in one event of its own, which leaves the follower's log as it was.
    let mut before = st;
    let after = loop {
        assert!(s.step(), "the copy never landed");
        let now = state(&mut s);
        if in_flight(&now, copy).is_none() {
            break now;
        }
        before = now;
    };
    assert_eq!(
        delivered(&after, &m.from, &m.to),
        delivered(&before, &m.from, &m.to) + 1,
        "the step that took the copy delivered it"
    );
    let (b, a) = (node(&before, &m.to), node(&after, &m.to));
    assert_eq!(
        (format!("{:?}", a.log), a.last_log_index, a.term),
        (format!("{:?}", b.log), b.last_log_index, b.term)
    );
    assert!(after.violations.is_empty());
    let e = s.duplicate_message(copy as f64).unwrap_err();
    assert!(e.contains("not in flight"), "{e}");
    assert!(s.duplicate_message(f64::NAN).is_err());
}

#[test]
fn a_delayed_message_lands_that_much_later_and_only_then() {
    let (mut s, m) = with_an_append_in_flight(3);
    for bad in [0.0, -5.0, 1.5, 60_001.0, f64::INFINITY] {
        let e = s.delay_message(m.id as f64, bad).unwrap_err();
        assert!(e.contains("delay"), "{bad}: {e}");
    }
    assert!(s.delay_message(9e15, 10.0).is_err(), "no such message");
    let at = s.delay_message(m.id as f64, 500.0).unwrap();
    assert_eq!(at, m.deliver_at + 500);
    let st = state(&mut s);
    assert_eq!(in_flight(&st, m.id).unwrap().deliver_at, at);
    // Past its old delivery time, and up to just before the new one, it is still flying.
    let wait = at - 1 - s.now();
    s.advance(wait as f64).unwrap();
    assert_eq!(s.now(), at - 1);
    assert!(in_flight(&state(&mut s), m.id).is_some(), "still in flight");
    s.advance(1.0).unwrap();
    let st = state(&mut s);
    assert!(in_flight(&st, m.id).is_none(), "landed at {at}");
    assert!(st.violations.is_empty());
}

#[test]
fn the_same_hand_made_duplicates_and_delays_replay_the_same_run() {
    let run = || {
        let (mut s, m) = with_an_append_in_flight(4);
        let copy = s.duplicate_message(m.id as f64).unwrap();
        s.delay_message(copy as f64, 50.0).unwrap();
        s.advance(2000.0).unwrap();
        format!("{:?}", state(&mut s).trace)
    };
    assert_eq!(run(), run());
}

/// Kills the leader and restarts it once another leads, `rounds` times, checking every 10 ms;
/// returns whether `who` ever led.
fn elections(s: &mut Session, rounds: usize, who: &str) -> bool {
    let mut led = false;
    let mut watch = |s: &mut Session, pred: &dyn Fn(&State) -> bool| -> State {
        for _ in 0..1000 {
            let st = state(s);
            led |= leader(&st).as_deref() == Some(who);
            if pred(&st) {
                return st;
            }
            s.advance(10.0).unwrap();
        }
        panic!("no leader within 10 s");
    };
    for _ in 0..rounds {
        let l = leader(&watch(s, &|st| leader(st).is_some())).unwrap();
        s.kill(&l).unwrap();
        watch(s, &|st| leader(st).is_some_and(|x| x != l));
        s.restart(&l).unwrap();
    }
    led
}

#[test]
fn a_request_vote_filter_from_n2_keeps_n2_from_being_elected() {
    // Without the filter n2 wins some of these elections...
    let mut s = session_of(3, 5);
    assert!(
        elections(&mut s, 8, "n2"),
        "n2 never led: the test shows nothing"
    );
    // ...with it, never, though it asks: its requests are dropped as filtered.
    let mut s = Session::new(Options {
        nodes: 3,
        seed: Some(SeedValue::Text("5".into())),
        message_lines: 10_000,
        ..Options::default()
    })
    .unwrap();
    s.filter("request_vote", "n2", "").unwrap();
    let st = state(&mut s);
    let f = &st.net.filters;
    assert_eq!(
        (
            f.len(),
            f[0].kind.as_str(),
            f[0].from.as_deref(),
            f[0].to.as_deref()
        ),
        (1, "request_vote", Some("n2"), None)
    );
    assert!(
        !elections(&mut s, 8, "n2"),
        "n2 was elected through the filter"
    );
    assert!(state(&mut s).violations.is_empty());
    let lines: Vec<&str> = s
        .message_trace
        .iter()
        .map(|l| l.text.as_str())
        .filter(|t| t.ends_with("(filtered)"))
        .collect();
    assert!(!lines.is_empty(), "n2 never asked for votes");
    assert!(
        lines
            .iter()
            .all(|t| t.starts_with("n2→") && t.contains(" request_vote ")),
        "{lines:?}"
    );
    // Cleared, the filter is gone; clearing it again, or a bad kind or node, is an error.
    s.unfilter("request_vote", "n2", "*").unwrap();
    assert!(state(&mut s).net.filters.is_empty());
    assert!(s.unfilter("request_vote", "n2", "").is_err());
    assert!(s.filter("requestvote", "n2", "").is_err());
    assert!(s.filter("append_entries", "n9", "").is_err());
}

#[test]
fn per_link_loss_drops_only_on_that_link_and_per_link_latency_holds_there() {
    let mut s = session_of(3, 6);
    run_until(&mut s, 5000, |st| leader(st).is_some());
    let l = leader(&state(&mut s)).unwrap();
    let f = if l == "n1" { "n2" } else { "n1" };
    let before = state(&mut s);
    s.set_link(&l, f, 1.0, 200.0, 300.0).unwrap();
    let st = state(&mut s);
    let link = st.links.iter().find(|x| x.from == l && x.to == f).unwrap();
    assert_eq!(
        (link.loss, link.latency_min, link.latency_max),
        (1.0, 200, 300)
    );
    let back = st.links.iter().find(|x| x.from == f && x.to == l).unwrap();
    assert_eq!(back.loss, 0.0, "the other direction is unchanged");
    assert_eq!(
        (st.net.loss, st.net.latency_min, st.net.latency_max),
        (
            before.net.loss,
            before.net.latency_min,
            before.net.latency_max
        ),
        "one link set by hand leaves the global setting as it was"
    );
    s.advance(1000.0).unwrap();
    let after = state(&mut s);
    for (b, a) in before.links.iter().zip(&after.links) {
        if (a.from.as_str(), a.to.as_str()) == (l.as_str(), f) {
            assert!(a.dropped > b.dropped + 5, "the lossy link lost: {a:?}");
            // Loss is drawn at send: only what was already flying crossed it.
            let flying = before
                .messages
                .iter()
                .filter(|m| m.from == l && m.to == f)
                .count() as u64;
            assert!(
                a.delivered <= b.delivered + flying,
                "nothing new crossed it"
            );
        } else {
            assert_eq!(a.dropped, b.dropped, "{}->{} lost nothing", a.from, a.to);
        }
    }
    // Latency alone: lossless now, every message on it takes 200..=300 ms.
    s.set_link(&l, f, 0.0, 200.0, 300.0).unwrap();
    s.advance(500.0).unwrap();
    let st = state(&mut s);
    let on: Vec<_> = st
        .messages
        .iter()
        .filter(|m| m.from == l && m.to == f && m.sent_at >= st.now - 500)
        .collect();
    assert!(!on.is_empty());
    assert!(
        on.iter()
            .all(|m| (200..=300).contains(&(m.deliver_at - m.sent_at))),
        "{on:?}"
    );
    for bad in [(-0.1, 1.0, 2.0), (0.5, 0.0, 2.0), (0.5, 5.0, 2.0)] {
        assert!(s.set_link(&l, f, bad.0, bad.1, bad.2).is_err(), "{bad:?}");
    }
    assert!(
        s.set_link(&l, &l, 0.5, 1.0, 2.0).is_err(),
        "no link to itself"
    );
    assert!(s.set_duplicate(1.5).is_err());
    s.set_duplicate(0.25).unwrap();
    assert_eq!(state(&mut s).net.duplicate, 0.25);
}
