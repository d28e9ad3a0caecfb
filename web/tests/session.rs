//! The playground session natively: what the page's share links rely on. An action recorded at
//! (time, events) and replayed with `run_to` lands at the same point, so the replay ends in the
//! same state as the run it was recorded from.
#![cfg(not(target_arch = "wasm32"))]

use raftkv_core::sim::ClientOp;
use raftkv_web::contract::{Options, SeedValue};
use raftkv_web::session::Session;

fn session(seed: u64) -> Session {
    Session::new(Options {
        nodes: 5,
        seed: Some(SeedValue::Text(seed.to_string())),
        ..Options::default()
    })
    .unwrap()
}

type Action = fn(&mut Session);

#[test]
fn replaying_recorded_actions_with_run_to_gives_the_same_state() {
    let actions: Vec<(f64, Action)> = vec![
        (0.0, |s| put(s, "a", "1")),
        (430.0, |s| s.kill("n1").unwrap()),
        (17.0, |s| s.cut_both("n2", "n3").unwrap()),
        (250.0, |s| put(s, "b", "2")),
        (3.0, |s| s.set_loss(0.2).unwrap()),
        (600.0, |s| s.restart("n1").unwrap()),
        (90.0, |s| s.heal_all().unwrap()),
    ];
    // The original run: frames of uneven length, single steps, actions in between.
    let mut live = session(5);
    let mut recorded = Vec::new();
    for (k, (ms, act)) in actions.iter().enumerate() {
        live.advance(*ms).unwrap();
        if k % 2 == 1 {
            live.step();
        }
        recorded.push((live.now(), live.events(), *act));
        act(&mut live);
    }
    live.advance(800.0).unwrap();
    let end = live.now();
    let want = format!("{:?}", raftkv_web::view::state(&mut live));

    // The replay, as runner.js does it: run_to each action's point, apply, then advance to the end.
    let mut replay = session(5);
    for (t, ev, act) in recorded {
        replay.run_to(t as f64, ev as f64).unwrap();
        assert_eq!((replay.now(), replay.events()), (t, ev));
        act(&mut replay);
    }
    replay.advance((end - replay.now()) as f64).unwrap();
    assert_eq!(format!("{:?}", raftkv_web::view::state(&mut replay)), want);
}

fn put(s: &mut Session, key: &str, value: &str) {
    s.submit(ClientOp::Put {
        key: key.into(),
        value: value.into(),
    })
    .unwrap();
}

#[test]
fn bad_input_is_a_readable_error() {
    let mut s = session(1);
    assert_eq!(
        s.kill("n6").unwrap_err(),
        "unknown node \"n6\": this cluster has n1..n5"
    );
    assert!(s.kill("n01").is_err());
    assert!(s.cut("n1", "n1").is_err());
    assert!(s.set_loss(f64::NAN).is_err());
    assert!(s.advance(f64::INFINITY).is_err());
    assert!(s.advance(1e12).is_err(), "beyond the horizon");
    assert!(s.run_to(1e12, 0.0).is_err(), "beyond the horizon");
    assert!(
        Session::new(Options {
            heartbeat: 500.0,
            ..Options::default()
        })
        .is_err()
    );
}

#[test]
fn a_long_run_keeps_no_trace_events_but_counts_them_all() {
    let mut s = session(11);
    // Ten simulated minutes of heartbeats: tens of thousands of events.
    s.advance(600_000.0).unwrap();
    assert!(s.events() > 10_000, "{}", s.events());
    // The trace's hash and count cover all of them (sends and drops too, not only deliveries);
    // the events themselves were read once
    // and dropped, so memory does not grow with the run.
    assert!(
        s.cluster.trace().len() >= s.events(),
        "{}",
        s.cluster.trace().len()
    );
    assert!(s.cluster.trace().events().is_empty());
    // The readable panel keeps its bounded tail.
    assert!(s.trace.len() <= s.opts.trace_len as usize);
}

#[test]
fn dropped_messages_are_shown_for_a_moment_even_when_they_never_flew() {
    let mut s = session(3);
    s.advance(1_000.0).unwrap();
    // A cut link: what is sent over it dies at once.
    s.cut_both("n1", "n2").unwrap();
    s.advance(400.0).unwrap();
    let st = raftkv_web::view::state(&mut s);
    let cut: Vec<_> = st
        .drops
        .iter()
        .filter(|d| (d.from == "n1" && d.to == "n2") || (d.from == "n2" && d.to == "n1"))
        .collect();
    assert!(!cut.is_empty(), "{:?}", st.drops);
    assert!(cut.iter().all(|d| d.reason == "partitioned"), "{cut:?}");
    assert!(cut.iter().any(|d| d.at_send), "{cut:?}");
    // Only the last moments are kept, oldest first.
    let window = raftkv_web::contract::DROP_SHOW_MS;
    assert!(
        st.drops.iter().all(|d| d.at + window >= st.now),
        "{:?}",
        st.drops
    );
    assert!(st.drops.windows(2).all(|w| w[0].at <= w[1].at));

    // Every message lost: many drops, all at send, and the list stays bounded.
    s.heal_all().unwrap();
    s.set_loss(1.0).unwrap();
    s.advance(2_000.0).unwrap();
    let st = raftkv_web::view::state(&mut s);
    assert!(!st.drops.is_empty());
    assert!(
        st.drops.iter().all(|d| d.reason == "lost" && d.at_send),
        "{:?}",
        st.drops
    );
    assert!(st.drops.len() <= 200);
}
