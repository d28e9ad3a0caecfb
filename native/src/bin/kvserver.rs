//! kvserver: one raftkv node. See `kvserver --help` and ARCHITECTURE.md.

use std::process::ExitCode;

use raftkv_native::config::ServerConfig;
use raftkv_native::{backup, config_file, failpoints, server};

/// Also the whole of `kvserver-failpoints` (src/bin/kvserver_failpoints.rs).
pub(crate) fn main() -> ExitCode {
    // Flags, RAFTKV_* variables and the --config file (config_file's doc).
    let args = config_file::parse_or_exit();
    server::init_tracing(args.log_format);
    // Tests' failpoints (a `failpoints` build only; see raftkv_native::failpoints).
    if let Some(list) = std::env::var_os("FAILPOINTS").filter(|l| !l.is_empty())
        && let Err(e) = failpoints::configure(&list.to_string_lossy())
    {
        eprintln!("kvserver: FAILPOINTS: {e}");
        return ExitCode::from(2);
    }
    let restore = args.restore.clone();
    let config = match ServerConfig::try_from(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kvserver: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(file) = restore {
        match backup::restore(&config, &file) {
            Ok(index) => tracing::info!(
                file = %file.display(),
                index,
                data_dir = %config.data_dir.display(),
                "restored the snapshot into a new single-node data dir"
            ),
            Err(e) => {
                eprintln!("kvserver: --restore {}: {e}", file.display());
                return ExitCode::from(2);
            }
        }
    }
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
