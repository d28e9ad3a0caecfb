//! Core's linearizability checker over history files (the JSON-lines format of
//! `core/src/sim/history.rs`, as the simulator and the Jepsen suite write them): the same check
//! the Jepsen suite runs, from the command line, beside `scripts/check_history.py`.
//!
//! ```text
//! cargo run -p raftkv-core --example check_history -- FILE.jsonl [FILE.jsonl ...]
//! ```
//!
//! Stale reads are left out, as the suite does. Exits 1 if any file is not linearizable (or
//! cannot be read), naming the offending operation.

use std::process::ExitCode;
use std::time::Instant;

use raftkv_core::sim::history::History;
use raftkv_core::sim::linearizability;

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: check_history FILE.jsonl [FILE.jsonl ...]");
        return ExitCode::from(2);
    }
    let mut failed = false;
    for file in &files {
        let started = Instant::now();
        let outcome = std::fs::read_to_string(file)
            .map_err(|e| e.to_string())
            .and_then(|text| History::from_jsonl(&text).map_err(|e| e.to_string()))
            .and_then(|h| {
                let checked = h.without_stale_reads();
                linearizability::check(&checked)
                    .map(|()| checked.ops.len())
                    .map_err(|e| e.to_string())
            });
        let secs = started.elapsed().as_secs_f64();
        match outcome {
            Ok(n) => {
                println!("{file}: {n} operations (stale reads left out) linearizable ({secs:.1} s)")
            }
            Err(e) => {
                failed = true;
                println!("{file}: {e} ({secs:.1} s)");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
