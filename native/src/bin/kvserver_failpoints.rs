//! kvserver-failpoints: kvserver built with the `failpoints` feature, under its own name so
//! that building it never replaces the plain `kvserver` in the target dir while other tests
//! run that one (cargo copies a bin to `target/<profile>/<name>` whatever its features). Only
//! tests build it (`tests/src/bin.rs`); the code is kvserver's.

#[path = "kvserver.rs"]
mod kvserver;

fn main() -> std::process::ExitCode {
    kvserver::main()
}
