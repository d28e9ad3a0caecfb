//! kvserver under its failpoints (a `failpoints` build: `cargo test -p raftkv-native --features
//! failpoints --test failpoints`): an I/O error in the log's fsync (before or after it), in a
//! snapshot's save or before an apply stops the node cleanly: it answers 503 `unavailable`,
//! logs why at ERROR, does not panic, and a restart on the same data dir has every write it
//! acknowledged. A slow fsync only slows it down. Every wait polls with a deadline.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

const DEADLINE: Duration = Duration::from_secs(30);

/// One running kvserver: its process, address, and the lines it has logged so far.
struct Node {
    child: Child,
    addr: String,
    lines: mpsc::UnboundedReceiver<String>,
    log: Vec<String>,
}

impl Node {
    /// Starts a single node on `data`, with `args` and `FAILPOINTS=failpoints`.
    async fn start(data: &Path, args: &[&str], failpoints: &str) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kvserver"))
            .env_clear()
            .env("RUST_LOG", "info")
            .env("FAILPOINTS", failpoints)
            .args(["--id", "n1", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("kvserver starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut r = BufReader::new(stderr).lines();
            while let Ok(Some(l)) = r.next_line().await {
                let _ = tx.send(l);
            }
        });
        let mut node = Node {
            child,
            addr: String::new(),
            lines,
            log: Vec::new(),
        };
        let line = node.wait_line("listening").await;
        node.addr = line
            .split("addr=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .expect("the listening line names the address")
            .to_string();
        node
    }

    /// Waits for a logged line containing `needle`; returns it.
    async fn wait_line(&mut self, needle: &str) -> String {
        if let Some(l) = self.log.iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        let found = tokio::time::timeout(DEADLINE, async {
            while let Some(l) = self.lines.recv().await {
                self.log.push(l.clone());
                if l.contains(needle) {
                    return Some(l);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(l)) => l,
            _ => panic!("no log line with {needle:?}; log:\n{}", self.log.join("\n")),
        }
    }

    /// Everything logged so far.
    fn drain(&mut self) -> &[String] {
        while let Ok(l) = self.lines.try_recv() {
            self.log.push(l);
        }
        &self.log
    }

    async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// `PUT /kv/{key}` as client "fp" with `seq`; the status and body.
async fn put(addr: &str, key: &str, seq: u64) -> (u16, Value) {
    let r = http()
        .put(format!("http://{addr}/kv/{key}"))
        .json(&json!({"value": format!("v{seq}"), "client_id": "fp", "seq": seq}))
        .send()
        .await
        .expect("the node answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(addr: &str, key: &str) -> (u16, Value) {
    let r = http()
        .get(format!("http://{addr}/kv/{key}"))
        .send()
        .await
        .expect("the node answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn set_failpoint(addr: &str, name: &str, actions: &str) {
    let r = http()
        .put(format!("http://{addr}/debug/failpoints/{name}"))
        .body(actions.to_string())
        .send()
        .await
        .expect("the node answers");
    assert_eq!(r.status(), 200, "{name}={actions}");
}

/// Polls until the node's /healthz answers 503 (it stopped).
async fn wait_stopped(addr: &str) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let r = http().get(format!("http://{addr}/healthz")).send().await;
        if matches!(r, Ok(r) if r.status() == 503) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{addr} did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes `acked` keys, turns `point` on, writes until a write is refused (up to `tries`),
/// checks the node stopped cleanly, then restarts it and reads every acknowledged write.
async fn stops_cleanly_and_keeps_acknowledged_writes(point: &str, args: &[&str], tries: u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), args, "").await;
    let mut acked = Vec::new();
    for seq in 1..=5 {
        let key = format!("k{seq}");
        assert_eq!(put(&node.addr, &key, seq).await.0, 200);
        acked.push((key, seq));
    }
    set_failpoint(&node.addr, point, "return").await;
    let mut refused = None;
    for seq in 6..6 + tries {
        let key = format!("k{seq}");
        let (status, body) = put(&node.addr, &key, seq).await;
        match status {
            200 => acked.push((key, seq)),
            _ => {
                refused = Some((status, body));
                break;
            }
        }
    }
    let (status, body) = refused.unwrap_or_else(|| panic!("{point}: no write was refused"));
    assert_eq!(status, 503, "{point}: {body}");
    wait_stopped(&node.addr).await;
    let (status, body) = get(&node.addr, "k1").await;
    assert_eq!(
        (status, body["err_code"].as_str()),
        (503, Some("unavailable")),
        "{point}: a stopped node serves nothing: {body}"
    );
    node.wait_line("stopped after a storage failure").await;
    let log = node.drain().join("\n");
    assert!(
        log.contains(point),
        "{point}: the log names the failpoint:\n{log}"
    );
    assert!(!log.contains("panicked"), "{point}: a panic:\n{log}");
    node.kill().await;

    // The same data dir, without the failpoint: every acknowledged write is there.
    let node = Node::start(dir.path(), args, "").await;
    for (key, seq) in &acked {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let (status, body) = get(&node.addr, key).await;
            if status == 200 {
                assert_eq!(body["value"], format!("v{seq}"), "{point}: {key}");
                break;
            }
            // Until the restarted node leads and has applied its log.
            assert!(
                status == 503 && tokio::time::Instant::now() < deadline,
                "{point}: acknowledged {key} lost after the restart: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    eprintln!(
        "{point}: stopped with 503 after {} acknowledged writes, all there after a restart",
        acked.len()
    );
    node.kill().await;
}

#[tokio::test]
async fn an_error_before_the_logs_fsync_stops_the_node_and_loses_no_acknowledged_write() {
    stops_cleanly_and_keeps_acknowledged_writes("log-before-fsync", &[], 1).await;
}

#[tokio::test]
async fn an_error_after_the_logs_fsync_stops_the_node_and_loses_no_acknowledged_write() {
    stops_cleanly_and_keeps_acknowledged_writes("log-after-fsync", &[], 1).await;
}

#[tokio::test]
async fn an_error_before_an_apply_stops_the_node_and_loses_no_acknowledged_write() {
    stops_cleanly_and_keeps_acknowledged_writes("before-apply", &[], 1).await;
}

/// A snapshot every 3 entries: one of the next writes makes the node snapshot, which fails.
#[tokio::test]
async fn an_error_saving_a_snapshot_stops_the_node_and_loses_no_acknowledged_write() {
    let args = ["--snapshot-threshold", "3", "--snapshot-trailing", "1"];
    stops_cleanly_and_keeps_acknowledged_writes("snapshot-before-save", &args, 20).await;
    stops_cleanly_and_keeps_acknowledged_writes("snapshot-after-save", &args, 20).await;
}

#[tokio::test]
async fn a_slow_fsync_slows_writes_and_breaks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // From the start, through FAILPOINTS: every fsync takes 100 ms more.
    let mut node = Node::start(dir.path(), &[], "log-before-fsync=sleep(100)").await;
    let started = std::time::Instant::now();
    for seq in 1..=3 {
        assert_eq!(put(&node.addr, &format!("k{seq}"), seq).await.0, 200);
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "three synced writes behind a 100 ms fsync took {took:?}: the failpoint did not act"
    );
    assert_eq!(get(&node.addr, "k3").await.1["value"], "v3");
    assert!(!node.drain().join("\n").contains("ERROR"));
    node.kill().await;
}

#[tokio::test]
async fn a_bad_failpoints_list_stops_kvserver_at_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kvserver"))
        .env_clear()
        .env("FAILPOINTS", "no-such-point=return")
        .args(["--id", "n1", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("FAILPOINTS") && err.contains("no-such-point"),
        "{err}"
    );
}
