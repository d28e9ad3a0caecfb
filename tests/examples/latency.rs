//! Latency tolerance: a real cluster whose every peer link gets a one-way delay through the
//! fault proxy, loaded by `kvctl bench` (PUTs, 64 clients), then its leader killed under the
//! delay. Prints the bench's report and how long the new election took.
//!
//! `RAFTKV_KVSERVER=target/release/kvserver RAFTKV_KVCTL=target/release/kvctl \
//!  cargo run --release -p raftkv-tests --example latency -- NODES DELAY_MS [SECONDS]`

use std::time::{Duration, Instant};

use raftkv_tests::{Cluster, ClusterConfig};

#[tokio::main]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, default: u64| -> Result<u64, String> {
        args.get(i).map_or(Ok(default), |s| {
            s.parse().map_err(|e| format!("argument {s}: {e}"))
        })
    };
    let (nodes, delay_ms, secs) = (num(0, 3)?, num(1, 10)?, num(2, 10)?);
    let mut cfg = ClusterConfig::new(nodes as usize);
    // Election timeouts well above a round trip through the delay.
    let min = (300 + 8 * delay_ms).to_string();
    let max = (600 + 16 * delay_ms).to_string();
    cfg.extra_args = vec!["--election-timeout-ms".into(), format!("{min}-{max}")];
    let mut c = Cluster::start(cfg).await?;
    for from in 0..c.size() {
        for to in 0..c.size() {
            if let Some(p) = c.link(from, to) {
                p.set_delay(Duration::from_millis(delay_ms));
            }
        }
    }
    let leader = c.wait_for_leader(Duration::from_secs(30)).await?;
    let endpoints: Vec<String> = (0..c.size()).map(|i| c.addr(i).to_string()).collect();
    let out = tokio::process::Command::new(raftkv_tests::bin::kvctl()?)
        .args([
            "--endpoints",
            &endpoints.join(","),
            "bench",
            "--concurrency",
            "64",
        ])
        .args(["--mix", "put=100", "--duration", &secs.to_string()])
        .output()
        .await
        .map_err(|e| format!("kvctl bench: {e}"))?;
    println!("{nodes} nodes, {delay_ms} ms one-way delay on every peer link, 64 clients, PUT:");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    let killed = Instant::now();
    c.kill(leader)?;
    let next = c.wait_for_leader(Duration::from_secs(60)).await?;
    println!(
        "leader n{} killed under the delay: n{} leads after {} ms",
        leader + 1,
        next + 1,
        killed.elapsed().as_millis()
    );
    Ok(())
}
