//! `kvctl bench` as a child process against a cluster: started with its arguments, stopped
//! with SIGINT (it then finishes its requests in flight, reads back with `--verify`, and
//! reports, as after Ctrl-C).

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// The start of a `--verify` run under faults: 2 s per request, each retried for up to 10 s
/// (through a failover), then `bench --verify`; add the bench's own options after it.
pub const VERIFY_UNDER_FAULTS: [&str; 6] = [
    "--timeout-ms",
    "2000",
    "--retry-ms",
    "10000",
    "bench",
    "--verify",
];

/// A running `kvctl ... bench`.
pub struct Bench {
    child: Child,
}

/// What a bench printed once it ended.
pub struct BenchOutput {
    /// It exited 0.
    pub success: bool,
    /// Its report (stdout).
    pub report: String,
    /// Its progress lines and errors (stderr).
    pub stderr: String,
}

impl Bench {
    /// Starts `kvctl --endpoints <endpoints> <args...>` (the args name `bench` themselves, after
    /// any global flags).
    pub fn start(endpoints: &[String], args: &[&str]) -> Result<Bench, String> {
        let child = Command::new(crate::bin::kvctl()?)
            .args(["--endpoints", &endpoints.join(",")])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting kvctl bench: {e}"))?;
        Ok(Bench { child })
    }

    /// Sends SIGINT and waits up to `timeout` for the report.
    pub async fn interrupt(self, timeout: Duration) -> Result<BenchOutput, String> {
        let pid = self.child.id().ok_or("kvctl bench already exited")?;
        let sent = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .map_err(|e| format!("kill -INT {pid}: {e}"))?;
        if !sent.success() {
            return Err(format!("kill -INT {pid} failed: {sent}"));
        }
        let out = tokio::time::timeout(timeout, self.child.wait_with_output())
            .await
            .map_err(|_| format!("kvctl bench did not end within {timeout:?} of SIGINT"))?
            .map_err(|e| format!("waiting for kvctl bench: {e}"))?;
        Ok(BenchOutput {
            success: out.status.success(),
            report: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}
