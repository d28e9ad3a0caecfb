//! The kvserver binary: clear start-up errors with a non-zero exit (never a panic), and a clean
//! stop on SIGTERM that keeps acknowledged writes for the next start, and a backup saved with
//! kvctl restoring into a new node.

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
    start_with(data_dir, &[]).await
}

/// [`start`] with more arguments.
async fn start_with(data_dir: &Path, extra: &[&str]) -> (Child, String) {
    let mut child = kvserver(data_dir, extra).spawn().expect("kvserver starts");
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

/// Every key and value the server at `addr` holds (one range page: the tests hold fewer than
/// the largest page).
async fn all_keys(http: &reqwest::Client, addr: &str) -> Value {
    let page: Value = http
        .get(format!("http://{addr}/kv?limit=10000"))
        .send()
        .await
        .expect("range")
        .json()
        .await
        .expect("JSON");
    assert_eq!(page["more"], json!(false));
    page["kvs"].clone()
}

#[tokio::test]
async fn a_snapshot_saved_with_kvctl_restores_into_a_new_node_on_either_engine() {
    let dir = tempfile::tempdir().expect("temp dir");
    let http = reqwest::Client::new();
    let (_old, addr) = start(&dir.path().join("data")).await;
    let entries: Vec<Value> = (0..300)
        .map(|i| json!({"key": format!("k{i:03}"), "value": format!("v{i}")}))
        .collect();
    let put = http
        .post(format!("http://{addr}/kv/mput"))
        .body(json!({"client_id": "c", "seq": 1, "entries": entries}).to_string())
        .send()
        .await
        .expect("mput");
    assert_eq!(put.status(), 200);
    let want = all_keys(&http, &addr).await;
    assert_eq!(want.as_array().map(Vec::len), Some(300));

    let file = dir.path().join("backup.snap");
    let save = Command::new(env!("CARGO_BIN_EXE_kvctl"))
        .args(["--endpoints", &addr, "snapshot", "save"])
        .arg(&file)
        .output()
        .await
        .expect("kvctl runs");
    let said = String::from_utf8_lossy(&save.stdout);
    assert!(
        save.status.success(),
        "{}",
        String::from_utf8_lossy(&save.stderr)
    );
    assert!(said.contains("at index 2"), "{said}");
    assert!(!dir.path().join("backup.snap.part").exists());

    for engine in ["disk", "memory"] {
        let data = dir.path().join(format!("restored-{engine}"));
        let file = file.to_str().expect("utf-8 path");
        let (_new, addr) = start_with(&data, &["--restore", file, "--engine", engine]).await;
        assert_eq!(all_keys(&http, &addr).await, want, "{engine}");
        // The restored node is a working single-node cluster: it takes writes, and the
        // session restored with the keys still dedupes client c's seq 1.
        let retry = http
            .post(format!("http://{addr}/kv/mput"))
            .body(
                json!({"client_id": "c", "seq": 1, "entries": [{"key": "x", "value": "y"}]})
                    .to_string(),
            )
            .send()
            .await
            .expect("mput");
        assert_eq!(retry.status(), 200);
        assert_eq!(
            all_keys(&http, &addr).await,
            want,
            "the retry applied again"
        );
    }
    // A data dir that holds anything is refused, and so is a file that is not a snapshot.
    let file_arg = file.to_str().expect("utf-8 path");
    fails_with(
        &dir.path().join("data"),
        &["--restore", file_arg],
        "not empty",
    )
    .await;
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"not a snapshot").expect("write");
    let junk = junk.to_str().expect("utf-8 path");
    fails_with(&dir.path().join("fresh"), &["--restore", junk], "snapshot").await;
}
