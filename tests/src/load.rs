//! `kvctl bench --verify` as a background load for tests: start it against some endpoints, do
//! something to the cluster, then stop it (SIGINT) and get its report, which must say that no
//! acknowledged put was lost. The child process itself is [`crate::bench::Bench`].

use std::time::Duration;

use crate::bench::{self, VERIFY_UNDER_FAULTS};

/// How long the bench may take to read every key back and report after SIGINT.
const REPORT_TIMEOUT: Duration = Duration::from_secs(120);

/// A running `kvctl bench --verify`.
pub struct Bench {
    bench: bench::Bench,
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
        let load = [
            "--concurrency",
            "8",
            "--mix",
            "put=90,get=10",
            "--keys",
            "50",
            "--duration",
            "300",
        ];
        let args = [&VERIFY_UNDER_FAULTS[..], &load, extra].concat();
        Ok(Bench {
            bench: bench::Bench::start(endpoints, &args)?,
        })
    }

    /// Stops the bench like Ctrl-C (it reads every key back and reports) and returns its
    /// report; fails unless it exited successfully reporting `lost 0, unreadable 0`.
    pub async fn finish(self) -> Result<BenchReport, String> {
        let out = self.bench.interrupt(REPORT_TIMEOUT).await?;
        let report = out.report;
        if !out.success || !report.contains("lost 0, unreadable 0") {
            return Err(format!("bench failed:\n{report}\n{}", out.stderr));
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
