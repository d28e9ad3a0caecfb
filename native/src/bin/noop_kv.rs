//! noop-kv: kvserver's `PUT`/`GET /kv/{key}` over an in-memory map, with no replication and no
//! disk: the floor `scripts/bench-compare.sh` measures kvserver and etcd against. See
//! `raftkv_native::noop`.

use std::process::ExitCode;

use clap::Parser;

/// noop-kv's command line.
#[derive(Debug, Parser)]
#[command(
    name = "noop-kv",
    version,
    about = "kvserver's client API over a bare in-memory map (no Raft, no disk), for benchmarks."
)]
struct Args {
    /// Where to listen (host:port).
    #[arg(long, default_value = "127.0.0.1:7301")]
    addr: String,
}

fn main() -> ExitCode {
    raftkv_native::server::init_tracing(raftkv_native::config::LogFormat::Text);
    let args = Args::parse();
    // The same multi-threaded runtime kvserver runs on.
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("noop-kv: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind(&args.addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("noop-kv: cannot listen on {}: {e}", args.addr);
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(addr = %args.addr, "noop-kv listening");
        match raftkv_native::noop::serve(listener).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("noop-kv: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
