//! kvserver: one raftkv node. See `kvserver --help` and ARCHITECTURE.md.

use std::process::ExitCode;

use clap::Parser;
use raftkv_native::config::{Args, ServerConfig};
use raftkv_native::server;

fn main() -> ExitCode {
    server::init_tracing();
    let config = match ServerConfig::try_from(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kvserver: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kvserver: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(server::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kvserver: {e}");
            ExitCode::FAILURE
        }
    }
}
