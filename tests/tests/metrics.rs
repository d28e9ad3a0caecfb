//! `GET /metrics` of real kvserver processes, read by an independent parser: the Prometheus
//! project's Python `prometheus_client` (tests/metrics_parse.py, in the venv scripts/setup.sh
//! makes). The text must parse, the families must be there with their types, and the counters
//! must move under writes.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use raftkv_tests::wait::poll_until;
use raftkv_tests::{Cluster, ClusterConfig};
use serde_json::{Map, Value};

const LEADER_TIMEOUT: Duration = Duration::from_secs(20);
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(20);
/// Writes between the two scrapes.
const WRITES: usize = 30;

/// The venv's python: `RAFTKV_TEST_PYTHON`, else `target/py` at the workspace root.
fn python() -> PathBuf {
    let path = std::env::var_os("RAFTKV_TEST_PYTHON").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/py/bin/python"),
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "no Python venv at {}: run scripts/setup.sh (it installs prometheus_client into \
         target/py), or point RAFTKV_TEST_PYTHON at a python that has it",
        path.display()
    );
    path
}

/// A scrape as the Python parser read it.
struct Scrape {
    families: Vec<Value>,
}

impl Scrape {
    fn family(&self, name: &str) -> Option<&Value> {
        self.families.iter().find(|f| f["name"] == name)
    }

    fn type_of(&self, name: &str) -> Option<&str> {
        self.family(name).and_then(|f| f["type"].as_str())
    }

    /// Every sample, whatever its family.
    fn samples(&self) -> impl Iterator<Item = &Value> {
        self.families
            .iter()
            .flat_map(|f| f["samples"].as_array().into_iter().flatten())
    }

    /// The sum of the samples named `sample` whose labels satisfy `pick`.
    fn sum(&self, sample: &str, pick: impl Fn(&Map<String, Value>) -> bool) -> f64 {
        self.samples()
            .filter(|s| s["name"] == sample)
            .filter(|s| s["labels"].as_object().is_some_and(&pick))
            .filter_map(|s| s["value"].as_f64())
            .sum()
    }

    /// The value of the sample named `sample` (summed over its label sets).
    fn value(&self, sample: &str) -> f64 {
        self.sum(sample, |_| true)
    }
}

/// Scrapes node `i`'s /metrics and parses it with the Python parser.
async fn scrape(c: &Cluster, i: usize) -> Scrape {
    let url = format!("http://{}/metrics", c.addr(i));
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let resp = http.get(&url).send().await.expect("GET /metrics");
    assert_eq!(resp.status(), 200, "GET {url}");
    let ctype = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    let text = resp.text().await.expect("the body of /metrics");
    parse(&text)
}

fn parse(text: &str) -> Scrape {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("metrics_parse.py");
    let mut child = Command::new(python())
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tests/metrics_parse.py");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("its stdin");
        stdin.write_all(text.as_bytes()).expect("write the scrape");
    }
    let out = child
        .wait_with_output()
        .expect("tests/metrics_parse.py ends");
    assert!(
        out.status.success(),
        "the Python parser refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Value = serde_json::from_slice(&out.stdout).expect("the parser's JSON");
    Scrape {
        families: parsed["families"].as_array().cloned().unwrap_or_default(),
    }
}

/// Families every node serves, as the parser names them (a counter without `_total`). A
/// labelled family shows once it has a series: the round-trip times only at a leader.
const EXPECTED: &[(&str, &str)] = &[
    ("etcd_server_has_leader", "gauge"),
    ("etcd_server_is_leader", "gauge"),
    ("etcd_server_leader_changes_seen", "counter"),
    ("etcd_server_proposals_committed_total", "gauge"),
    ("etcd_server_proposals_applied_total", "gauge"),
    ("etcd_server_proposals_pending", "gauge"),
    ("etcd_server_proposals_failed", "counter"),
    ("etcd_disk_wal_fsync_duration_seconds", "histogram"),
    ("etcd_network_peer_sent_bytes", "counter"),
    ("etcd_network_peer_received_bytes", "counter"),
    ("etcd_network_peer_sent_failures", "counter"),
    ("etcd_debug_mvcc_db_total_size_in_bytes", "gauge"),
    ("raftkv_raft_term", "gauge"),
    ("raftkv_raft_commit_index", "gauge"),
    ("raftkv_raft_applied_index", "gauge"),
    ("raftkv_raft_last_log_index", "gauge"),
    ("raftkv_driver_turn_duration_seconds", "histogram"),
    ("raftkv_disk_log_size_bytes", "gauge"),
    ("raftkv_disk_snapshot_size_bytes", "gauge"),
    ("raftkv_snapshot_installed", "counter"),
    ("raftkv_snapshot_sends_started", "counter"),
    ("raftkv_network_peer_sent_messages", "counter"),
    ("raftkv_network_peer_received_messages", "counter"),
    ("raftkv_network_peer_queue_dropped", "counter"),
    ("raftkv_peer_listener_accepted_connections", "counter"),
    ("raftkv_http_requests", "counter"),
    ("raftkv_http_request_duration_seconds", "histogram"),
];

fn check_families(s: &Scrape, who: &str) {
    for (name, ty) in EXPECTED {
        assert_eq!(s.type_of(name), Some(*ty), "{who}: family {name}");
    }
}

/// `PUT /kv/{*key}` answered 200, as the request counter labels it.
fn puts_ok(s: &Scrape) -> f64 {
    s.sum("raftkv_http_requests_total", |l| {
        l.get("method").is_some_and(|v| v == "PUT")
            && l.get("route").is_some_and(|v| v == "/kv/{*key}")
            && l.get("status").is_some_and(|v| v == "200")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_move_under_writes_at_the_leader_and_a_follower() {
    let mut cfg = ClusterConfig::new(3);
    cfg.extra_args = ["--election-timeout-ms", "200-400", "--heartbeat-ms", "40"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut c = Cluster::start(cfg).await.expect("cluster starts");
    let leader = c.wait_for_leader(LEADER_TIMEOUT).await.expect("a leader");
    let follower = (0..3).find(|i| *i != leader).expect("a follower");
    let client = c.client(leader);
    // One write first, so the leader has answered a follower's append (round trips) and the
    // follower has a leader's frames to count.
    assert!(client.put("metrics-warmup", "x").await.unwrap().ok());
    let leader_id = c.id(leader).to_string();
    poll_until(
        "the follower to apply the warm-up write",
        CONVERGE_TIMEOUT,
        || {
            let c = &c;
            async move {
                let s = scrape(c, follower).await;
                Ok((s.value("raftkv_raft_applied_index") >= 2.0).then_some(()))
            }
        },
    )
    .await
    .unwrap();

    let before = scrape(&c, leader).await;
    let f_before = scrape(&c, follower).await;
    check_families(&before, "leader");
    check_families(&f_before, "follower");
    assert_eq!(before.value("etcd_server_is_leader"), 1.0);
    assert_eq!(before.value("etcd_server_has_leader"), 1.0);
    assert_eq!(f_before.value("etcd_server_is_leader"), 0.0);
    assert_eq!(f_before.value("etcd_server_has_leader"), 1.0);
    assert_eq!(
        before.type_of("etcd_network_peer_round_trip_time_seconds"),
        Some("histogram")
    );
    assert!(
        before.value("etcd_network_peer_round_trip_time_seconds_count") >= 1.0,
        "the leader timed round trips"
    );

    for n in 0..WRITES {
        let r = client
            .put(&format!("metrics-key-{n}"), "value")
            .await
            .unwrap();
        assert!(r.ok(), "{r:?}");
    }
    let after = scrape(&c, leader).await;
    let grew = |name: &str, b: &Scrape, a: &Scrape| (b.value(name), a.value(name));

    let (b, a) = grew("etcd_server_proposals_committed_total", &before, &after);
    assert!(a >= b + WRITES as f64, "committed {b} -> {a}");
    let (b, a) = (puts_ok(&before), puts_ok(&after));
    assert!(a >= b + WRITES as f64, "PUT 200 {b} -> {a}");
    let (b, a) = grew(
        "etcd_disk_wal_fsync_duration_seconds_count",
        &before,
        &after,
    );
    assert!(a > b, "leader fsyncs {b} -> {a}");
    let (b, a) = grew("etcd_network_peer_sent_bytes_total", &before, &after);
    assert!(a > b, "leader sent bytes {b} -> {a}");
    let (b, a) = grew("raftkv_network_peer_sent_messages_total", &before, &after);
    assert!(a > b, "leader sent messages {b} -> {a}");
    // Keys never become label values: the route is the template.
    assert!(
        !after
            .samples()
            .any(|s| s["labels"].as_object().is_some_and(|l| l
                .values()
                .any(|v| v.as_str().is_some_and(|v| v.contains("metrics-key"))))),
        "a raw path in a label"
    );

    // The follower applies the writes too: its own fsyncs and what it received from the
    // leader grow.
    let want = after.value("raftkv_raft_commit_index");
    let f_after = poll_until("the follower to apply the writes", CONVERGE_TIMEOUT, || {
        let c = &c;
        async move {
            let s = scrape(c, follower).await;
            Ok((s.value("raftkv_raft_applied_index") >= want).then_some(s))
        }
    })
    .await
    .unwrap();
    let (b, a) = grew(
        "etcd_disk_wal_fsync_duration_seconds_count",
        &f_before,
        &f_after,
    );
    assert!(a > b, "follower fsyncs {b} -> {a}");
    let from_leader = |s: &Scrape| {
        s.sum("etcd_network_peer_received_bytes_total", |l| {
            l.get("From").is_some_and(|v| *v == leader_id)
        })
    };
    let (b, a) = (from_leader(&f_before), from_leader(&f_after));
    assert!(a > b, "follower received from {leader_id}: {b} -> {a}");
    assert_eq!(f_after.value("etcd_server_proposals_pending"), 0.0);
}

#[test]
fn the_python_parser_refuses_what_is_not_the_text_format() {
    // The test's parser is no rubber stamp: a broken line fails it.
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("metrics_parse.py");
    let mut child = Command::new(python())
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tests/metrics_parse.py");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("its stdin");
        stdin
            .write_all(b"# TYPE x counter\nx_total{oops 1\n")
            .expect("write");
    }
    assert!(!child.wait().expect("it ends").success());
}
