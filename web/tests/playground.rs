//! The `Playground` class as JavaScript uses it, run in wasm: `bash scripts/wasm.sh test
//! raftkv-web` and `bash scripts/wasm.sh test raftkv-web --chrome` (without
//! `WASM_BINDGEN_USE_BROWSER=1` the runner skips these node-configured tests in Chrome).
#![cfg(target_arch = "wasm32")]

use raftkv_web::Playground;
use raftkv_web::contract::State;
use wasm_bindgen::{JsError, JsValue};
use wasm_bindgen_test::wasm_bindgen_test;

fn playground(nodes: u32, seed: u64) -> Playground {
    let opts = js_sys_object(nodes, seed);
    Playground::new(opts).expect("valid options")
}

/// `{nodes, seed: "<seed>"}` built through serde, without depending on js-sys.
fn js_sys_object(nodes: u32, seed: u64) -> JsValue {
    #[derive(serde::Serialize)]
    struct O {
        nodes: u32,
        seed: String,
    }
    serde_wasm_bindgen::to_value(&O {
        nodes,
        seed: seed.to_string(),
    })
    .unwrap()
}

fn leader(st: &State) -> Option<String> {
    st.nodes
        .iter()
        .find(|n| n.alive && n.role == "leader")
        .map(|n| n.id.clone())
}

/// Advances in 10 ms steps until `pred` holds, for at most `max_ms` of simulated time.
fn run_until(pg: &mut Playground, max_ms: u64, pred: impl Fn(&State) -> bool) -> State {
    let end = pg.now() as u64 + max_ms;
    loop {
        let st = pg.snapshot();
        if pred(&st) || st.now >= end {
            return st;
        }
        pg.advance(10.0).unwrap();
    }
}

#[wasm_bindgen_test]
fn a_leader_appears_within_bounded_time() {
    let mut pg = playground(5, 7);
    let st = run_until(&mut pg, 5_000, |s| leader(s).is_some());
    assert!(leader(&st).is_some(), "no leader after {} ms", st.now);
    assert!(st.violations.is_empty());
}

#[wasm_bindgen_test]
fn killing_the_leader_gives_a_new_leader() {
    let mut pg = playground(5, 11);
    let first = leader(&run_until(&mut pg, 5_000, |s| leader(s).is_some())).unwrap();
    pg.kill(&first).unwrap();
    let st = run_until(&mut pg, 5_000, |s| leader(s).is_some_and(|l| l != first));
    let next = leader(&st).expect("a new leader");
    assert_ne!(next, first);
    assert!(!st.nodes.iter().find(|n| n.id == first).unwrap().alive);
}

#[wasm_bindgen_test]
fn a_put_reaches_every_live_node() {
    let mut pg = playground(5, 3);
    run_until(&mut pg, 5_000, |s| leader(s).is_some());
    pg.kill("n5").unwrap();
    let id = pg.put("x".into(), "42".into(), None).unwrap();
    let st = run_until(&mut pg, 5_000, |s| {
        s.nodes
            .iter()
            .filter(|n| n.alive)
            .all(|n| n.kv.get("x").map(String::as_str) == Some("42"))
    });
    for n in st.nodes.iter().filter(|n| n.alive) {
        assert_eq!(n.kv.get("x").map(String::as_str), Some("42"), "{}", n.id);
    }
    let op = st.ops.iter().find(|o| o.id == u64::from(id)).unwrap();
    assert_eq!(op.status, "ok");
    assert_eq!(st.history.linearizable, Some(true));
}

#[wasm_bindgen_test]
fn bad_arguments_are_errors_not_panics() {
    let mut pg = playground(3, 1);
    assert!(pg.kill("n42").is_err());
    assert!(pg.cut("n1", "x").is_err());
    assert!(pg.set_loss(2.0).is_err());
    assert!(pg.set_latency(50.0, 10.0).is_err());
    assert!(pg.get("k".into(), "fast", None).is_err());
    assert!(pg.advance(-1.0).is_err());
    assert!(Playground::new(js_sys_object(12, 1)).is_err());
    assert_eq!(raftkv_web::take_panic_message(), None);
    // Still usable.
    pg.advance(500.0).unwrap();
    assert!(pg.snapshot().violations.is_empty());
}

#[wasm_bindgen_test]
fn same_seed_and_actions_give_the_same_state() {
    let run = || {
        let mut pg = playground(5, 99);
        pg.advance(700.0).unwrap();
        pg.put("a".into(), "1".into(), None).unwrap();
        pg.advance(35.0).unwrap();
        pg.cut_both("n1", "n2").unwrap();
        pg.kill("n3").unwrap();
        pg.set_loss(0.1).unwrap();
        pg.advance(900.0).unwrap();
        pg.restart("n3").unwrap();
        pg.get("a".into(), "readindex", None).unwrap();
        pg.advance(1000.0).unwrap();
        pg.snapshot()
    };
    let (a, b) = (run(), run());
    assert!(a.events > 0);
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

#[wasm_bindgen_test]
fn reads_take_a_consistency_and_a_node() {
    let mut pg = playground(3, 5);
    let st = run_until(&mut pg, 5_000, |s| leader(s).is_some());
    let l = leader(&st).unwrap();
    let f = st.nodes.iter().find(|n| n.id != l).unwrap().id.clone();
    pg.put("k".into(), "v".into(), Some(String::new())).unwrap();
    run_until(&mut pg, 5_000, |s| s.ops[0].status == "ok");
    let lease = pg.get("k".into(), "lease", None).unwrap();
    let stale = pg.get("k".into(), "stale", Some(f.clone())).unwrap();
    let st = run_until(&mut pg, 5_000, |s| {
        s.ops.iter().all(|o| o.status != "pending")
    });
    let op = |id: u32| st.ops.iter().find(|o| o.id == u64::from(id)).unwrap();
    assert_eq!(op(lease).mode.as_deref(), Some("lease"));
    assert_eq!(op(lease).result.as_deref(), Some("value=\"v\""));
    assert_eq!(op(stale).node.as_deref(), Some(&*f));
    assert!(pg.get("k".into(), "lease", Some("n7".into())).is_err());
}

#[wasm_bindgen_test]
fn clocks_drift_and_jump() {
    let mut pg = playground(3, 2);
    pg.set_clock_drift("n1", 50_000.0).unwrap();
    pg.advance(1_000.0).unwrap();
    pg.jump_clock("n2", 300.0).unwrap();
    let st = pg.snapshot();
    // (The run may end a few ms past 1000: check against where it ended.)
    assert_eq!(st.nodes[0].drift_ppm, 50_000);
    assert_eq!(st.nodes[0].clock, st.now * 105 / 100);
    assert_eq!(st.nodes[1].clock, st.now + 300);
    assert_eq!(st.nodes[2].clock, st.now);
    assert!(pg.set_clock_drift("n1", 1e9).is_err());
    assert!(pg.jump_clock("n1", -5.0).is_err());
}

fn member(st: &State, id: &str) -> String {
    st.nodes.iter().find(|n| n.id == id).unwrap().member.clone()
}

/// A 3-node playground whose leader committed an entry of its term (it takes changes then).
fn settled(seed: u64) -> Playground {
    let mut pg = playground(3, seed);
    pg.put("a".into(), "1".into(), None).unwrap();
    run_until(&mut pg, 5_000, |s| s.ops[0].status == "ok");
    pg
}

/// Asks `f` again every 20 ms while it is refused, for at most `max_ms`.
fn retry<T>(
    pg: &mut Playground,
    max_ms: u64,
    mut f: impl FnMut(&mut Playground) -> Result<T, JsError>,
) -> T {
    let end = pg.now() as u64 + max_ms;
    loop {
        match f(pg) {
            Ok(x) => return x,
            Err(_) if (pg.now() as u64) < end => {
                pg.advance(20.0).unwrap();
            }
            Err(e) => panic!("still refused after {max_ms} ms: {:?}", JsValue::from(e)),
        }
    }
}

#[wasm_bindgen_test]
fn membership_changes_through_the_bindings() {
    let mut pg = settled(3);
    let id = pg.add_node().unwrap();
    assert_eq!(id, "n4");
    assert_eq!(pg.node_ids(), ["n1", "n2", "n3", "n4"]);
    assert_eq!(member(&pg.snapshot(), "n4"), "joining");
    assert!(pg.promote("n4").is_err(), "not a learner yet");
    assert!(pg.add_learner("n4").unwrap() > 0.0);
    run_until(&mut pg, 2_000, |s| member(s, "n4") == "learner");
    retry(&mut pg, 3_000, |pg| pg.promote("n4"));
    let st = run_until(&mut pg, 2_000, |s| member(s, "n4") == "voter");
    assert_eq!(st.membership.voters, ["n1", "n2", "n3", "n4"]);
    // Leadership to n4, then n4 replaced by a fresh node: a joint configuration on the way.
    assert_eq!(pg.transfer_leader("n4").unwrap(), leader(&st).unwrap());
    let st = run_until(&mut pg, 3_000, |s| leader(s).as_deref() == Some("n4"));
    assert_eq!(leader(&st).as_deref(), Some("n4"));
    let fresh = pg.add_node().unwrap();
    retry(&mut pg, 2_000, |pg| pg.replace("n4", &fresh));
    let st = run_until(&mut pg, 2_000, |s| s.membership.joint);
    assert!(st.membership.joint, "{:?}", st.membership);
    let st = run_until(&mut pg, 5_000, |s| {
        !s.membership.joint && member(s, "n4") == "removed" && leader(s).is_some_and(|l| l != "n4")
    });
    assert!(st.membership.voters.contains(&fresh), "{:?}", st.membership);
    assert!(st.violations.is_empty(), "{:?}", st.violations);
    // Errors are JS errors with readable text, not panics.
    assert!(pg.remove("n7").is_err());
    assert!(pg.replace("n1", "n1").is_err());
    assert!(pg.transfer_leader("n9").is_err());
    assert_eq!(raftkv_web::take_panic_message(), None);
}
