//! What the native session tests share.
#![allow(dead_code)]

use raftkv_web::contract::{Options, SeedValue, State};
use raftkv_web::session::Session;

/// A session of `nodes` nodes from `seed`, default options otherwise.
pub fn session_of(nodes: u32, seed: u64) -> Session {
    Session::new(Options {
        nodes,
        seed: Some(SeedValue::Text(seed.to_string())),
        ..Options::default()
    })
    .unwrap()
}

/// Advances in 10 ms steps until `pred` holds, for at most `max_ms` of simulated time; returns
/// the state then (whether or not `pred` held).
pub fn run_until(s: &mut Session, max_ms: u64, pred: impl Fn(&State) -> bool) -> State {
    let end = s.now() + max_ms;
    loop {
        let st = raftkv_web::view::state(s);
        if pred(&st) || st.now >= end {
            return st;
        }
        s.advance(10.0).unwrap();
    }
}

/// The live leader, if one.
pub fn leader(st: &State) -> Option<String> {
    st.nodes
        .iter()
        .find(|n| n.alive && n.role == "leader")
        .map(|n| n.id.clone())
}
