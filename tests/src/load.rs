//! `kvctl bench --verify` as a background load for tests: start it against some endpoints, do
//! something to the cluster, then stop it (SIGINT) and get its report, which must say that no
//! acknowledged put was lost.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// How long the bench may take to read every key back and report after SIGINT.
const REPORT_TIMEOUT: Duration = Duration::from_secs(120);

/// A running `kvctl bench --verify`.
#[derive(Debug)]
pub struct Bench {
    child: Child,
}

/// What a verified bench run reported.
#[derive(Clone, Debug)]
pub struct BenchReport {
    /// The whole report (stdout).
    pub report: String,
    /// Puts acknowledged over the keys read back.
    pub acked_puts: u64,
}

impl Bench {
    /// Starts `kvctl --endpoints <endpoints> bench --verify` with eight workers on fifty keys
    /// each, mostly puts, until stopped; `extra` is added to bench's arguments.
    pub fn start(endpoints: &[String], extra: &[&str]) -> Result<Bench, String> {
        let kvctl = crate::bin::kvctl()?;
        let child = Command::new(kvctl)
            .args(["--endpoints", &endpoints.join(","), "--timeout-ms", "2000"])
            .args(["--retry-ms", "10000", "bench", "--verify"])
            .args([
                "--concurrency",
                "8",
                "--mix",
                "put=90,get=10",
                "--keys",
                "50",
            ])
            .args(["--duration", "300"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting kvctl bench: {e}"))?;
        Ok(Bench { child })
    }

    /// Stops the bench like Ctrl-C (it reads every key back and reports) and returns its
    /// report; fails unless it exited successfully reporting `lost 0, unreadable 0`.
    pub async fn finish(self) -> Result<BenchReport, String> {
        let pid = self
            .child
            .id()
            .ok_or("the bench already exited")?
            .to_string();
        let sent = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .map_err(|e| format!("kill -INT {pid}: {e}"))?;
        if !sent.success() {
            return Err(format!("kill -INT {pid} failed: {sent}"));
        }
        let out = tokio::time::timeout(REPORT_TIMEOUT, self.child.wait_with_output())
            .await
            .map_err(|_| format!("the bench did not report within {REPORT_TIMEOUT:?}"))?
            .map_err(|e| format!("waiting for the bench: {e}"))?;
        let report = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || !report.contains("lost 0, unreadable 0") {
            return Err(format!(
                "bench failed ({}):\n{report}\n{stderr}",
                out.status
            ));
        }
        let acked_puts = report
            .lines()
            .find(|l| l.starts_with("verify: "))
            .and_then(|l| l.split(", ").nth(1))
            .and_then(|p| p.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        Ok(BenchReport { report, acked_puts })
    }
}
