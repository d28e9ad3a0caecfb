//! Streamed snapshots between real kvserver processes (issue 13): a follower the leader's
//! compacted log left behind catches up through a snapshot sent in many chunks; a link cut in
//! the middle of the transfer resumes from the acknowledged offset instead of starting over;
//! a receiver killed with SIGKILL in the middle restarts consistent and finishes. Node-to-node
//! links go through fault proxies, which count the bytes each direction forwarded. Every wait
//! polls with a deadline.

use std::path::Path;
use std::time::Duration;

use raftkv_tests::wait::poll_until;
use raftkv_tests::{Cluster, ClusterConfig};
use reqwest::Method;
use serde_json::{Value, json};

const LEADER_TIMEOUT: Duration = Duration::from_secs(20);
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(60);
/// 40 batches of 25 keys with 2,000-byte values: a state of about 2 MB.
const BATCHES: usize = 40;
const KEYS_PER_BATCH: usize = 25;
const VALUE_BYTES: usize = 2000;
/// Small chunks, so the transfer takes well over a hundred of them.
const CHUNK_BYTES: &str = "16384";

async fn start() -> Cluster {
    let mut cfg = ClusterConfig::new(3);
    cfg.extra_args = [
        "--election-timeout-ms",
        "300-600",
        "--heartbeat-ms",
        "50",
        "--snapshot-threshold",
        "10",
        "--snapshot-trailing",
        "0",
        "--snapshot-chunk-bytes",
        CHUNK_BYTES,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Cluster::start(cfg).await.expect("cluster starts")
}

fn key(b: usize, k: usize) -> String {
    format!("big/{b:03}/{k:03}")
}

fn value(b: usize, k: usize) -> String {
    let seed = format!("{b}-{k}-");
    seed.repeat(VALUE_BYTES / seed.len() + 1)[..VALUE_BYTES].to_string()
}

async fn status_u64(c: &Cluster, i: usize, field: &str) -> Result<u64, String> {
    let s = c.client(i).status().await?;
    s[field]
        .as_u64()
        .ok_or_else(|| format!("no {field} in {s}"))
}

/// Kills a follower, loads the state through the leader and waits until the leader's snapshot
/// covers everything loaded. Returns (leader, lagging follower, snapshot index).
async fn leave_a_follower_far_behind(c: &mut Cluster) -> (usize, usize, u64) {
    let leader = c.wait_for_leader(LEADER_TIMEOUT).await.unwrap();
    let lagging = (leader + 1) % 3;
    c.kill(lagging).unwrap();
    let client = c.client(leader);
    for b in 0..BATCHES {
        let entries: Vec<Value> = (0..KEYS_PER_BATCH)
            .map(|k| json!({"key": key(b, k), "value": value(b, k)}))
            .collect();
        let r = client
            .write_with_seq(
                Method::POST,
                "/kv/mput",
                b as u64 + 1,
                json!({ "entries": entries }),
            )
            .await
            .unwrap();
        assert!(r.ok(), "mput {b}: {} {}", r.status, r.body);
    }
    let commit = status_u64(c, leader, "commit_index").await.unwrap();
    let snap = poll_until(
        "the leader's snapshot to cover the load",
        TRANSFER_TIMEOUT,
        || {
            let c = &*c;
            async move {
                let s = status_u64(c, leader, "snapshot_index").await?;
                Ok((s + 10 >= commit && s > 0).then_some(s))
            }
        },
    )
    .await
    .unwrap();
    (leader, lagging, snap)
}

/// The bytes of the snapshot files in a data dir (what a full transfer must carry, before
/// base64).
fn snapshot_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    name.starts_with("snapshot") && !name.contains("tmp") && !name.contains("part")
                })
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Waits until the leader has sent at least `bytes` more than `base` to the lagging node while
/// the node has not installed the snapshot yet.
async fn wait_mid_transfer(c: &Cluster, leader: usize, lagging: usize, base: u64, bytes: u64) {
    let link = c.link(leader, lagging).expect("a proxied link");
    poll_until("the transfer to be under way", TRANSFER_TIMEOUT, || async {
        let sent = link.forwarded_bytes() - base;
        Ok((sent >= bytes).then_some(()))
    })
    .await
    .unwrap();
}

/// The proxy of the link from `from` to `to`.
fn link(c: &Cluster, from: usize, to: usize) -> &raftkv_tests::LinkProxy {
    c.link(from, to).expect("a proxied link")
}

/// Waits until node `i` installed a snapshot at or past `snap`.
async fn wait_installed(c: &Cluster, i: usize, snap: u64) {
    poll_until("the lagging node to install", TRANSFER_TIMEOUT, || async {
        let s = status_u64(c, i, "snapshot_index").await?;
        Ok((s >= snap).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", c.log_of(i)));
}

/// Every loaded key reads back at node `i` (its own state, stale reads).
async fn all_keys_present(c: &Cluster, i: usize) {
    let client = c.client(i);
    for b in 0..BATCHES {
        for k in [0, KEYS_PER_BATCH / 2, KEYS_PER_BATCH - 1] {
            let got = client.get(&key(b, k)).await.unwrap();
            assert_eq!(got.as_deref(), Some(value(b, k).as_str()), "{}", key(b, k));
        }
    }
}

/// A link cut in the middle of a transfer: once it heals, the leader resumes from the offset
/// the follower acknowledged, so the whole transfer costs well under two snapshots' worth of
/// bytes (starting over would cost the part already sent plus a whole snapshot).
#[tokio::test]
async fn a_link_cut_mid_transfer_resumes_from_the_acknowledged_offset() {
    let mut c = start().await;
    let (leader, lagging, snap) = leave_a_follower_far_behind(&mut c).await;
    let size = snapshot_bytes(c.data_dir(leader));
    assert!(size > 1_000_000, "snapshot of {size} bytes");
    // Base64 makes every byte four thirds on the wire.
    let wire = size * 4 / 3;
    // Slow enough that the cut lands in the middle.
    link(&c, leader, lagging).set_delay(Duration::from_millis(5));
    let base = link(&c, leader, lagging).forwarded_bytes();
    c.restart(lagging).await.unwrap();
    wait_mid_transfer(&c, leader, lagging, base, wire / 3).await;
    link(&c, leader, lagging).cut();
    let installed_at_cut = status_u64(&c, lagging, "snapshot_index").await.unwrap();
    assert!(
        installed_at_cut < snap,
        "the transfer finished before the cut"
    );
    // The fault itself: the link stays cut for a while (longer than the chunk timeout).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    link(&c, leader, lagging).set_delay(Duration::ZERO);
    link(&c, leader, lagging).heal();
    wait_installed(&c, lagging, snap).await;
    let sent = link(&c, leader, lagging).forwarded_bytes() - base;
    assert!(
        sent < wire + wire / 2,
        "the transfer cost {sent} bytes for a snapshot of {wire} bytes on the wire: it started over"
    );
    all_keys_present(&c, lagging).await;
}

/// A receiver killed with SIGKILL in the middle of a transfer restarts from what was durable
/// (its partial snapshot is discarded, its old state is intact), then receives the snapshot
/// and serves every key.
#[tokio::test]
async fn a_receiver_killed_mid_transfer_restarts_consistent_and_catches_up() {
    let mut c = start().await;
    let (leader, lagging, snap) = leave_a_follower_far_behind(&mut c).await;
    let wire = snapshot_bytes(c.data_dir(leader)) * 4 / 3;
    link(&c, leader, lagging).set_delay(Duration::from_millis(5));
    let base = link(&c, leader, lagging).forwarded_bytes();
    c.restart(lagging).await.unwrap();
    wait_mid_transfer(&c, leader, lagging, base, wire / 2).await;
    assert!(status_u64(&c, lagging, "snapshot_index").await.unwrap() < snap);
    c.kill(lagging).unwrap();
    link(&c, leader, lagging).set_delay(Duration::ZERO);
    c.restart(lagging).await.unwrap();
    wait_installed(&c, lagging, snap).await;
    all_keys_present(&c, lagging).await;
    // And it goes on replicating.
    let r = c.client(leader).put("after", "yes").await.unwrap();
    assert!(r.ok(), "{}", r.body);
    poll_until("the new write to reach it", TRANSFER_TIMEOUT, || async {
        Ok((c.client(lagging).get("after").await? == Some("yes".into())).then_some(()))
    })
    .await
    .unwrap();
}
