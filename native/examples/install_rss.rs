//! Measures the disk engine's peak memory while it installs a big snapshot:
//! `cargo run --release -p raftkv-native --example install_rss -- [keys] [value_bytes]`.
//! Writes a snapshot of `keys` keys (default 1,000,000) with values of `value_bytes` bytes
//! (default 256) to a temp file, checks it as a receiving follower does, installs it into a
//! fresh disk engine with a page cache of `CACHE_MIB` MiB (default 64), and prints the check
//! and install times and the process's peak RSS (VmHWM) before and after the install.

use std::io::{BufReader, BufWriter};

use raftkv_core::kvsnap::{Encoder, Header};
use raftkv_native::engine::{DiskEngine, Engine, disk::DiskOptions};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let keys: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let value_bytes: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(256);
    let dir = tempfile::tempdir()?;
    let snap = dir.path().join("snap");
    {
        let f = BufWriter::new(std::fs::File::create(&snap)?);
        let mut e = Encoder::new(
            f,
            Header {
                index: 10,
                log_time: 1,
            },
        )?;
        let value = "v".repeat(value_bytes);
        for i in 0..keys {
            e.kv(&format!("key-{i:09}"), &value)?;
        }
        e.finish()?;
    }
    let size = std::fs::metadata(&snap)?.len();
    let engine = DiskEngine::open(
        &dir.path().join("state.redb"),
        DiskOptions {
            cache_bytes: std::env::var("CACHE_MIB")
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
                .unwrap_or(64)
                << 20,
            ..DiskOptions::default()
        },
    )?;
    let checked = std::time::Instant::now();
    <raftkv_core::KvStateMachine as raftkv_core::StateMachine>::check_snapshot(
        10,
        &mut BufReader::new(std::fs::File::open(&snap)?),
    )?;
    println!("check {:.1} s", checked.elapsed().as_secs_f64());
    let before = peak_rss_kib();
    let started = std::time::Instant::now();
    engine.install(10, &mut BufReader::new(std::fs::File::open(&snap)?))?;
    let after = peak_rss_kib();
    println!(
        "keys {keys}, snapshot {} MiB, install {:.1} s, peak RSS {} MiB before, {} MiB after (+{} MiB)",
        size >> 20,
        started.elapsed().as_secs_f64(),
        before >> 10,
        after >> 10,
        (after - before) >> 10
    );
    Ok(())
}
