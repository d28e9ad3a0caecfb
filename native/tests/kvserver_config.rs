//! kvserver's settings from a TOML file (`--config`) and from `RAFTKV_*` variables, as real
//! processes: a node started each way serves with the settings the same flags give, and a bad
//! value from either stops it at start (exit code 2) with a message naming the source.
//! (`config_file`'s unit tests cover the options one by one.)

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// kvserver with a clean environment but for `RUST_LOG` and `vars`, and `args`.
fn kvserver(args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kvserver"));
    c.env_clear()
        .env("RUST_LOG", "info")
        .envs(vars.iter().copied())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// Starts it and returns it with the address it logged once listening.
async fn start(mut cmd: Command) -> (Child, String) {
    let mut child = cmd.spawn().expect("kvserver starts");
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
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

/// The settings `/status` shows that the test sets: id, read policy, write mode.
async fn settings(addr: &str) -> (String, String, String) {
    let status: Value = reqwest::get(format!("http://{addr}/status"))
        .await
        .expect("status")
        .json()
        .await
        .expect("JSON");
    let field = |name: &str| status[name].as_str().unwrap_or("?").to_string();
    (field("id"), field("read_policy"), field("write_mode"))
}

fn file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the config file");
    path.display().to_string()
}

#[tokio::test]
async fn a_node_starts_the_same_from_flags_a_config_file_and_variables() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = |name: &str| dir.path().join(name).display().to_string();

    let (flags_data, file_data, env_data) = (data("flags"), data("file"), data("env"));
    let flags = kvserver(
        &[
            "--id",
            "cfg1",
            "--addr",
            "127.0.0.1:0",
            "--data-dir",
            &flags_data,
            "--read-policy",
            "lease",
            "--write-mode",
            "async",
            "--heartbeat-ms",
            "40",
        ],
        &[],
    );
    let (_a, addr) = start(flags).await;
    let expected = settings(&addr).await;
    assert_eq!(
        expected,
        ("cfg1".to_string(), "lease".to_string(), "async".to_string())
    );

    let toml = format!(
        "id = \"cfg1\"\naddr = \"127.0.0.1:0\"\ndata-dir = \"{file_data}\"\n\
         read-policy = \"lease\"\nwrite-mode = \"async\"\nheartbeat-ms = 40\n"
    );
    let config = file(dir.path(), "kvserver.toml", &toml);
    let (_b, addr) = start(kvserver(&["--config", &config], &[])).await;
    assert_eq!(settings(&addr).await, expected, "from --config");

    let vars = [
        ("RAFTKV_ID", "cfg1"),
        ("RAFTKV_ADDR", "127.0.0.1:0"),
        ("RAFTKV_DATA_DIR", env_data.as_str()),
        ("RAFTKV_READ_POLICY", "lease"),
        ("RAFTKV_WRITE_MODE", "async"),
        ("RAFTKV_HEARTBEAT_MS", "40"),
    ];
    let (_c, addr) = start(kvserver(&[], &vars)).await;
    assert_eq!(settings(&addr).await, expected, "from RAFTKV_* variables");
}

async fn fails_with(cmd: Command, message: &str) {
    let mut cmd = cmd;
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("kvserver exits")
        .expect("kvserver runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "kvserver's exit: {err}");
    assert!(err.contains(message), "stderr lacks {message:?}: {err}");
    assert!(!err.contains("panicked"), "kvserver panicked: {err}");
}

#[tokio::test]
async fn a_bad_value_in_the_file_or_a_variable_stops_kvserver_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data").display().to_string();
    let config = file(dir.path(), "bad.toml", "heartbeat-ms = \"often\"\n");
    fails_with(
        kvserver(&["--data-dir", &data, "--config", &config], &[]),
        &format!("kvserver: --config {config}: heartbeat-ms: invalid value 'often'"),
    )
    .await;
    let config = file(
        dir.path(),
        "typo.toml",
        "election_timeout_ms = \"100-200\"\n",
    );
    fails_with(
        kvserver(&["--config", &config], &[]),
        "election_timeout_ms: unknown key (the flag is --election-timeout-ms",
    )
    .await;
    fails_with(
        kvserver(&["--data-dir", &data], &[("RAFTKV_WRITE_MODE", "later")]),
        "kvserver: RAFTKV_WRITE_MODE: invalid value 'later'",
    )
    .await;
    // The variable naming the file is a source like any other.
    fails_with(
        kvserver(&[], &[("RAFTKV_CONFIG", "/nonexistent/raftkv.toml")]),
        "kvserver: --config /nonexistent/raftkv.toml: cannot read it",
    )
    .await;
    assert!(
        !dir.path().join("data").exists(),
        "nothing is started or created"
    );
}
