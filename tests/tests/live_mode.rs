//! What the playground's live mode stands on, on real processes: `GET /debug/events` of a
//! kvserver streams its status at once and again when it changes (a leader's crash shows as a
//! new term, then a follower's role becoming leader), and the dev routes exist nowhere but in
//! `playground --dev-cluster`: a plain kvserver and a plain playground refuse them with 404.
//! Every wait reads with a deadline.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use raftkv_native::dev_cluster::relay::{data_of, take_events};
use raftkv_tests::{Cluster, ClusterConfig};
use serde_json::Value;
use tokio::time::{Instant, timeout_at};

const LEADER_TIMEOUT: Duration = Duration::from_secs(20);
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

/// Node `i`'s client API URL (the cluster runs without TLS).
fn http(c: &Cluster, i: usize) -> String {
    format!("http://{}", c.addr(i))
}

/// One node's event stream, read event by event.
struct Events {
    resp: reqwest::Response,
    buf: Vec<u8>,
    queued: Vec<Value>,
}

impl Events {
    async fn open(endpoint: &str) -> Events {
        let resp = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("{endpoint}/debug/events"))
            .send()
            .await
            .expect("the stream opens");
        assert_eq!(resp.status(), 200);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        Events {
            resp,
            buf: Vec::new(),
            queued: Vec::new(),
        }
    }

    /// The next event whose data satisfies `pred`, within [`EVENT_TIMEOUT`].
    async fn until(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            while !self.queued.is_empty() {
                let e = self.queued.remove(0);
                if pred(&e) {
                    return e;
                }
                seen.push(e);
            }
            let chunk = timeout_at(deadline, self.resp.chunk())
                .await
                .unwrap_or_else(|_| panic!("no event with {what} in time; saw {seen:?}"))
                .expect("the stream reads")
                .unwrap_or_else(|| panic!("the stream ended before {what}; saw {seen:?}"));
            self.buf.extend_from_slice(&chunk);
            for event in take_events(&mut self.buf) {
                if let Some(data) = data_of(&event) {
                    self.queued
                        .push(serde_json::from_str(&data).expect("an event's data is JSON"));
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_events_stream_the_status_and_its_changes() {
    let mut cfg = ClusterConfig::new(3);
    cfg.extra_args = ["--election-timeout-ms", "300-600", "--heartbeat-ms", "50"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut c = Cluster::start(cfg).await.expect("cluster starts");
    let leader = c.wait_for_leader(LEADER_TIMEOUT).await.expect("a leader");
    let followers: Vec<usize> = (0..3).filter(|i| *i != leader).collect();

    // The first event comes at once: the leader's, with every member's progress.
    let mut at_leader = Events::open(&http(&c, leader)).await;
    let first = at_leader.until("any status", |_| true).await;
    assert_eq!(first["id"], c.id(leader));
    assert_eq!(first["role"], "leader");
    assert_eq!(first["voters"].as_array().map(Vec::len), Some(3));
    let term = first["term"].as_u64().expect("a term");
    let members: Vec<&str> = first["progress"]
        .as_array()
        .expect("progress")
        .iter()
        .map(|p| p["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(members.len(), 3, "{first}");

    // A write shows as a change: commit and applied move past the write's index.
    let put = c.client(leader).put("watched", "1").await.expect("the put");
    let index = put.body["index"].as_u64().expect("the write's index");
    let moved = at_leader
        .until("the write applied", |e| {
            e["last_applied"].as_u64() >= Some(index) && e["commit_index"].as_u64() >= Some(index)
        })
        .await;
    assert_eq!(moved["role"], "leader");

    let mut streams = Vec::new();
    for &f in &followers {
        let mut s = Events::open(&http(&c, f)).await;
        let e = s.until("the follower's status", |_| true).await;
        assert_eq!(e["role"], "follower", "{e}");
        assert_eq!(e["leader_id"], c.id(leader), "{e}");
        assert_eq!(
            e["progress"],
            serde_json::json!([]),
            "a follower has no progress"
        );
        streams.push(s);
    }

    // The leader crashes: one follower's stream shows its role change to leader in a later
    // term. The stream samples the status (every 100 ms), so a leader that lasts less than
    // that may be missed: what is awaited is the one that stays.
    c.kill(leader).expect("kill");
    let old = c.id(leader).to_string();
    let led = |e: &Value| e["role"] == "leader" && e["term"].as_u64() > Some(term);
    let (a, b) = streams.split_at_mut(1);
    let became = tokio::select! {
        e = a[0].until("a role change to leader", led) => e,
        e = b[0].until("a role change to leader", led) => e,
    };
    let new_leader = became["id"].as_str().expect("an id").to_string();
    assert_ne!(new_leader, old);
    assert_eq!(became["leader_id"], new_leader.as_str(), "{became}");
    // The other follower's stream (a fresh one: its first event is its status now) comes to
    // name that leader.
    let other = followers
        .iter()
        .copied()
        .find(|&f| c.id(f) != new_leader)
        .expect("the other follower");
    let mut s = Events::open(&http(&c, other)).await;
    let follows = s
        .until("the new leader named", |e| {
            e["leader_id"] == new_leader.as_str() && e["role"] == "follower"
        })
        .await;
    assert!(
        follows["term"].as_u64() >= became["term"].as_u64(),
        "{follows}"
    );
}

/// The status and body of `method url`.
async fn call(method: reqwest::Method, url: &str) -> (u16, Value) {
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .request(method, url)
        .send()
        .await
        .expect("the request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The dev routes the page's live mode uses.
const DEV_ROUTES: [(&str, &str); 4] = [
    ("GET", "/dev/cluster"),
    ("GET", "/dev/events"),
    ("POST", "/dev/nodes/n1/kill"),
    ("POST", "/dev/links/n1/n2/cut"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_kvserver_and_a_plain_playground_refuse_the_dev_routes() {
    let c = Cluster::start(ClusterConfig::new(1))
        .await
        .expect("a node starts");
    for (method, path) in DEV_ROUTES {
        let (status, body) = call(method.parse().unwrap(), &format!("{}{path}", http(&c, 0))).await;
        assert_eq!(status, 404, "kvserver {method} {path}: {body}");
        assert_eq!(body["err_code"], "not_found", "{body}");
    }

    let bin = raftkv_tests::bin::playground().expect("the playground binary");
    let www = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../www");
    let mut child = Command::new(bin)
        .args(["--addr", "127.0.0.1:0", "--dir"])
        .arg(&www)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the playground starts");
    let url = serving_url(&mut child);
    for (method, path) in DEV_ROUTES {
        let (status, body) = call(method.parse().unwrap(), &format!("{url}{path}")).await;
        assert_eq!(status, 404, "playground {method} {path}: {body}");
        assert_eq!(body["err_code"], "not_found", "{body}");
    }
    // The page itself is served, and told there is no dev cluster (so it offers no Live).
    let page = reqwest::get(format!("{url}/index.html")).await.unwrap();
    assert_eq!(page.status(), 200);
    let (status, about) = call(reqwest::Method::GET, &format!("{url}/playground.json")).await;
    assert_eq!(
        (status, &about["dev_cluster"]),
        (200, &Value::Bool(false)),
        "{about}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// The `http://host:port` the playground prints once it listens (it exits with an error
/// otherwise, which ends the read).
fn serving_url(child: &mut Child) -> String {
    let out = child.stdout.take().expect("stdout");
    for line in BufReader::new(out).lines() {
        let line = line.expect("stdout reads");
        if let Some(rest) = line.split("http://").nth(1) {
            let addr = rest.split('/').next().unwrap_or_default();
            return format!("http://{addr}");
        }
    }
    panic!("the playground exited before serving");
}
