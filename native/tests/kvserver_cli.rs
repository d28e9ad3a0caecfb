//! The kvserver binary: clear start-up errors with a non-zero exit (never a panic), and a clean
//! stop on SIGTERM that keeps acknowledged writes for the next start.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn kvserver(data_dir: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kvserver"));
    c.args(["--id", "n1", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

async fn fails_with(data_dir: &Path, extra: &[&str], message: &str) {
    let out = tokio::time::timeout(Duration::from_secs(30), kvserver(data_dir, extra).output())
        .await
        .expect("kvserver exits")
        .expect("kvserver runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "kvserver should fail: {err}");
    assert!(err.contains(message), "stderr lacks {message:?}: {err}");
    assert!(!err.contains("panicked"), "kvserver panicked: {err}");
}

#[tokio::test]
async fn kvserver_refuses_peers_that_do_not_list_itself() {
    // Multi-node clusters are supported; a member list without this node is a mistake.
    let dir = tempfile::tempdir().expect("temp dir");
    let peers = ["--peers", "n2=127.0.0.1:7002,n3=127.0.0.1:7003"];
    fails_with(dir.path(), &peers, "--peers must list this node (n1)").await;
}

#[tokio::test]
async fn kvserver_refuses_a_data_dir_that_is_a_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"not a directory").expect("write");
    fails_with(&file, &[], "not a directory").await;
    // Below a file, the directory cannot be created either.
    fails_with(&file.join("sub"), &[], "data dir").await;
}

/// Starts kvserver and returns it with the address it logged once listening.
async fn start(data_dir: &Path) -> (Child, String) {
    let mut child = kvserver(data_dir, &[]).spawn().expect("kvserver starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read stderr") {
            if line.contains("listening")
                && let Some(rest) = line.split("addr=").nth(1)
            {
                return rest.split_whitespace().next().map(str::to_string);
            }
        }
        None
    })
    .await
    .expect("kvserver logs its address in time")
    .expect("kvserver logs its address");
    // Keep draining stderr so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

#[tokio::test]
async fn kvserver_stops_cleanly_on_sigterm_and_keeps_writes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let http = reqwest::Client::new();

    let (mut child, addr) = start(&data).await;
    let health: Value = http
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .expect("healthz")
        .json()
        .await
        .expect("JSON");
    assert_eq!(health, json!({"ok": true}));
    let put = http
        .put(format!("http://{addr}/kv/kept"))
        .body(json!({"client_id": "c", "seq": 1, "value": "yes"}).to_string())
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), 200);

    let pid = child.id().expect("pid").to_string();
    let kill = Command::new("sh")
        .args(["-c", &format!("kill -TERM {pid}")])
        .status()
        .await
        .expect("kill runs");
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("kvserver stops after SIGTERM")
        .expect("wait");
    assert!(status.success(), "exit status after SIGTERM: {status}");

    let (_child, addr) = start(&data).await;
    let got: Value = http
        .get(format!("http://{addr}/kv/kept"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("JSON");
    assert_eq!(got, json!({"ok": true, "value": "yes"}));
}
