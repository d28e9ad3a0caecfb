//! The playground session natively: what the page's share links rely on. An action recorded at
//! (time, events) and replayed with `run_to` lands at the same point, so the replay ends in the
//! same state as the run it was recorded from.
#![cfg(not(target_arch = "wasm32"))]

use raftkv_core::sim::ClientOp;
use raftkv_web::contract::{Options, State};
use raftkv_web::session::Session;

mod support;
use support::{leader, run_until, session_of};

fn session(seed: u64) -> Session {
    session_of(5, seed)
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
    s.submit(
        ClientOp::Put {
            key: key.into(),
            value: value.into(),
        },
        None,
    )
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

fn get(s: &mut Session, key: &str, mode: &str, to: Option<&str>) -> u64 {
    let policy = Session::read_policy(mode).unwrap();
    let op = ClientOp::Get {
        key: key.into(),
        policy,
    };
    s.submit(op, to).unwrap()
}

#[test]
fn reads_choose_their_consistency_and_node() {
    let mut s = session(21);
    let st = run_until(&mut s, 5_000, |st| leader(st).is_some());
    let l = leader(&st).unwrap();
    let follower = st.nodes.iter().find(|n| n.id != l).unwrap().id.clone();
    put(&mut s, "x", "1");
    run_until(&mut s, 5_000, |st| {
        st.nodes.iter().all(|n| n.kv.contains_key("x"))
    });
    // A stale read sent to a follower is served there, from its own state machine.
    let stale = get(&mut s, "x", "stale", Some(&follower));
    // A lease read (to the leader) and a readindex read sent to a follower (which redirects).
    let lease = get(&mut s, "x", "lease", None);
    let ri = get(&mut s, "x", "readindex", Some(&follower));
    let done = |st: &State, id: u64| st.ops.iter().find(|o| o.id == id).unwrap().clone();
    let st = run_until(&mut s, 5_000, |st| {
        [stale, lease, ri]
            .iter()
            .all(|id| done(st, *id).status != "pending")
    });
    let (a, b, c) = (done(&st, stale), done(&st, lease), done(&st, ri));
    assert_eq!(
        (a.mode.as_deref(), a.node.as_deref()),
        (Some("stale"), Some(&*follower))
    );
    assert_eq!(a.target.as_deref(), Some(&*follower));
    assert_eq!(b.mode.as_deref(), Some("lease"));
    assert_eq!(b.target, None);
    for o in [&a, &b, &c] {
        assert_eq!(
            (o.status.as_str(), o.result.as_deref()),
            ("ok", Some("value=\"1\"")),
            "{o:?}"
        );
        assert!(o.index.is_some_and(|i| i > 0), "{o:?}");
    }
    assert_eq!(
        c.node.as_deref(),
        Some(&*l),
        "readindex is served by the leader: {c:?}"
    );
    assert_eq!(st.history.linearizable, Some(true));
    // A bad mode or node is a readable error, and nothing was issued.
    let ops = st.ops.len();
    assert!(
        Session::read_policy("fast")
            .unwrap_err()
            .contains("\"lease\"")
    );
    let bad = ClientOp::Get {
        key: "x".into(),
        policy: raftkv_core::ReadPolicy::Stale,
    };
    assert!(
        s.submit(bad, Some("n9"))
            .unwrap_err()
            .contains("unknown node")
    );
    assert_eq!(raftkv_web::view::state(&mut s).ops.len(), ops);
}

#[test]
fn clocks_drift_and_jump_per_node() {
    let mut s = session(4);
    s.advance(500.0).unwrap();
    s.set_clock_drift("n2", 100_000.0).unwrap();
    s.set_clock_drift("n3", -200_000.0).unwrap();
    let t0 = raftkv_web::view::state(&mut s);
    s.advance(1_000.0).unwrap();
    s.jump_clock("n4", 250.0).unwrap();
    let st = raftkv_web::view::state(&mut s);
    let node = |st: &State, id: &str| st.nodes.iter().find(|n| n.id == id).unwrap().clone();
    let ran = |id: &str| node(&st, id).clock - node(&t0, id).clock;
    assert_eq!(ran("n1"), 1_000);
    assert_eq!(ran("n2"), 1_100);
    assert_eq!(ran("n3"), 800);
    assert_eq!(ran("n4"), 1_250);
    assert_eq!(
        (node(&st, "n2").drift_ppm, node(&st, "n3").drift_ppm),
        (100_000, -200_000)
    );
    // Election timers are on each node's own clock.
    for n in &st.nodes {
        assert!(
            n.timer_start <= n.clock,
            "{}: timer {} clock {}",
            n.id,
            n.timer_start,
            n.clock
        );
    }
    assert!(
        s.set_clock_drift("n2", 600_000.0)
            .unwrap_err()
            .contains("±500000")
    );
    assert!(s.set_clock_drift("n2", 1.5).is_err());
    assert!(s.jump_clock("n2", 0.0).unwrap_err().contains("1..=60000"));
    assert!(
        s.jump_clock("n7", 5.0)
            .unwrap_err()
            .contains("unknown node")
    );
    assert!(st.violations.is_empty(), "{:?}", st.violations);
}

#[test]
fn the_configuration_is_shown_with_each_nodes_place_in_it() {
    let mut s = session(8);
    let st = run_until(&mut s, 5_000, |st| leader(st).is_some());
    let m = &st.membership;
    assert_eq!(m.voters, ["n1", "n2", "n3", "n4", "n5"]);
    assert!(m.outgoing.is_empty() && m.learners.is_empty() && !m.joint);
    assert_eq!(m.from, leader(&st));
    assert!(
        st.nodes.iter().all(|n| n.member == "voter"),
        "{:?}",
        st.nodes
    );
    assert!(st.nodes.iter().all(|n| n.config == "n1 n2 n3 n4 n5"));
    assert_eq!(st.max_nodes, 9);
    let l = st.nodes.iter().find(|n| n.role == "leader").unwrap();
    assert!(l.transfer_to.is_none());
}

#[test]
fn run_events_lands_where_single_steps_do() {
    // The live run: a stretch of time, an action, then single steps (the clock is each event's).
    let mut live = session(9);
    live.advance(700.0).unwrap();
    let (t, ev) = (live.now(), live.events());
    live.kill("n2").unwrap();
    for _ in 0..25 {
        assert!(live.step());
    }
    let want = format!("{:?}", raftkv_web::view::state(&mut live));
    let (end_t, end_ev) = (live.now(), live.events());

    // A rebuild that goes back to the action's point and then runs to the event count: the
    // same clock and state, though the time of the last event was never given.
    let mut again = session(9);
    again.run_to(t as f64, ev as f64).unwrap();
    again.kill("n2").unwrap();
    again.run_events(end_ev as f64).unwrap();
    assert_eq!((again.now(), again.events()), (end_t, end_ev));
    assert_eq!(format!("{:?}", raftkv_web::view::state(&mut again)), want);
    assert!(again.run_events(f64::NAN).is_err());
}

#[test]
fn message_lines_are_kept_only_when_asked_and_number_in_the_traces_sequence() {
    let opts = |message_lines| Options {
        nodes: 3,
        seed: Some(raftkv_web::contract::SeedValue::Number(6.0)),
        message_lines,
        ..Options::default()
    };
    // Unasked: no message lines, and the trace numbers its own lines 0, 1, 2, ...
    let mut plain = Session::new(opts(0)).unwrap();
    plain.advance(2_000.0).unwrap();
    put(&mut plain, "a", "1");
    plain.advance(500.0).unwrap();
    let st = raftkv_web::view::state(&mut plain);
    assert!(st.message_trace.is_empty());
    assert!(st.trace.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    assert!(
        st.trace
            .iter()
            .any(|l| l.kind == "client" && l.text.starts_with("op #1"))
    );
    assert!(
        st.trace
            .iter()
            .any(|l| l.kind == "state" && l.text.starts_with("commits up to"))
    );

    // Asked: the last 50 deliveries and drops, numbered in one sequence with the trace.
    let mut s = Session::new(opts(50)).unwrap();
    s.advance(2_000.0).unwrap();
    put(&mut s, "a", "1");
    s.set_loss(0.3).unwrap();
    s.advance(500.0).unwrap();
    let st = raftkv_web::view::state(&mut s);
    assert_eq!(st.message_trace.len(), 50);
    assert!(st.message_trace.iter().all(|l| l.kind == "message"));
    assert!(
        st.message_trace
            .iter()
            .any(|l| l.text.ends_with("delivered"))
    );
    assert!(
        st.message_trace
            .iter()
            .any(|l| l.text.ends_with("dropped (lost)"))
    );
    let mut seqs: Vec<u64> = st
        .trace
        .iter()
        .chain(&st.message_trace)
        .map(|l| l.seq)
        .collect();
    let n = seqs.len();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), n, "no number given twice");
    assert!(
        st.message_trace
            .windows(2)
            .all(|w| w[0].seq < w[1].seq && w[0].at <= w[1].at)
    );
    // The run itself is the same either way: only what is kept differs.
    assert_eq!(
        Session::new(opts(0)).map(|mut p| {
            p.advance(2_000.0).unwrap();
            put(&mut p, "a", "1");
            p.set_loss(0.3).unwrap();
            p.advance(500.0).unwrap();
            (p.now(), p.events(), p.cluster.trace().len())
        }),
        Ok((s.now(), s.events(), s.cluster.trace().len()))
    );
}
