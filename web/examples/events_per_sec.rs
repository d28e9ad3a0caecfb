//! Native events/s of the playground's simulation (the same `Session` the page runs, default
//! options), for comparison with the browser figure:
//!
//! ```text
//! cargo run --release -p raftkv-web --example events_per_sec
//! ```

use std::time::{Duration, Instant};

use raftkv_web::contract::{Options, SeedValue};
use raftkv_web::session::Session;

fn main() {
    for nodes in [5, 9] {
        let mut s = Session::new(Options {
            nodes,
            seed: Some(SeedValue::Text("1".into())),
            ..Options::default()
        })
        .expect("valid options");
        let start = Instant::now();
        let e0 = s.events();
        // The page advances per animation frame; 100 ms of simulated time per call here.
        while start.elapsed() < Duration::from_secs(2) {
            s.advance(100.0).expect("advance");
        }
        let secs = start.elapsed().as_secs_f64();
        let ev = s.events() - e0;
        println!(
            "{nodes} nodes: {ev} events in {secs:.2} s = {:.0} events/s ({} ms simulated)",
            ev as f64 / secs,
            s.now()
        );
    }
}
