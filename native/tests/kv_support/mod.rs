//! Shared by the HTTP API and kvctl tests: an in-process single-node kvserver on 127.0.0.1:0
//! with its own temporary data dir, an in-process cluster of several, and a raw HTTP helper
//! that returns status and JSON body.

#![allow(dead_code)] // each test crate uses a different subset

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use raftkv_core::raft::Role;
use raftkv_core::{NodeId, WriteMode};
use raftkv_native::config::{Peer, TimeoutRange};
use raftkv_native::{RunningServer, ServerConfig};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tempfile::TempDir;

/// A running server and the directory it keeps its data in.
pub struct TestServer {
    pub server: RunningServer,
    pub dir: TempDir,
    pub http: reqwest::Client,
}

/// A config for a fresh single node on a free loopback port.
pub fn config(dir: &Path) -> ServerConfig {
    ServerConfig::single_node("n1", "127.0.0.1:0", dir.join("data"))
}

impl TestServer {
    /// A sync-mode server with default limits.
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// A server whose config `tweak` adjusts.
    pub async fn start_with(tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut c = config(dir.path());
        tweak(&mut c);
        let server = raftkv_native::spawn(c).await.expect("server starts");
        TestServer {
            server,
            dir,
            http: http_client(),
        }
    }

    /// An async-write-mode server.
    pub async fn start_async() -> TestServer {
        TestServer::start_with(|c| c.write_mode = WriteMode::Async).await
    }

    /// `host:port` of the server.
    pub fn endpoint(&self) -> String {
        self.server.addr().to_string()
    }

    /// `http://host:port`.
    pub fn base(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Sends `method path` with an optional raw body; returns the status and the body parsed as
    /// JSON (panicking if it is not JSON: every reply of the API must be).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let (status, json, _) = send(&self.http, &self.endpoint(), method, path, body).await;
        (status, json)
    }

    /// Every key and value in the store.
    pub fn entries(&self) -> BTreeMap<String, String> {
        self.server.service().entries()
    }

    /// The number of writes applied so far.
    pub fn applied(&self) -> u64 {
        self.server.service().status().raft.last_applied
    }
}

/// Sends `method path` to `endpoint` with an optional raw body; returns the status, the body
/// parsed as JSON (panicking if it is not JSON: every reply of the API must be) and the
/// `Location` header.
pub async fn send(
    http: &reqwest::Client,
    endpoint: &str,
    method: Method,
    path: &str,
    body: Option<&str>,
) -> (StatusCode, Value, Option<String>) {
    let mut req = http.request(method, format!("http://{endpoint}{path}"));
    if let Some(b) = body {
        req = req.body(b.to_string());
    }
    let resp = req.send().await.expect("request is sent");
    let status = resp.status();
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(str::to_string);
    let text = resp.text().await.expect("body is read");
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("body of a {status} is not JSON ({e}): {text:?}"));
    (status, json, location)
}

/// An in-process cluster of kvservers on loopback ports, n1..nN, each with its own data dir
/// under one temporary directory.
pub struct TestCluster {
    /// The running servers; `None` once stopped.
    pub nodes: Vec<Option<RunningServer>>,
    /// Each node's client address, `host:port`.
    pub addrs: Vec<String>,
    /// Each node's peer address, `host:port`.
    pub peer_addrs: Vec<String>,
    pub dir: TempDir,
    pub http: reqwest::Client,
}

impl TestCluster {
    /// `n` nodes with election timeouts of `election_ms` (heartbeats a tenth of its min) and
    /// whatever else `tweak` sets.
    pub async fn start(
        n: usize,
        election_ms: TimeoutRange,
        tweak: impl Fn(&mut ServerConfig),
    ) -> TestCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        // Free ports (a client and a peer port each), held until just before each node binds.
        let reserved: Vec<std::net::TcpListener> = (0..2 * n)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
            .collect();
        let all: Vec<String> = reserved
            .iter()
            .map(|l| l.local_addr().expect("addr").to_string())
            .collect();
        let (addrs, peer_addrs) = (all[..n].to_vec(), all[n..].to_vec());
        let peers: Vec<Peer> = peer_addrs
            .iter()
            .enumerate()
            .map(|(i, a)| Peer {
                id: NodeId(format!("n{}", i + 1)),
                addr: a.clone(),
            })
            .collect();
        let mut nodes = Vec::new();
        drop(reserved);
        for i in 0..n {
            let mut c = ServerConfig::single_node(
                &format!("n{}", i + 1),
                &addrs[i],
                dir.path().join(format!("n{}", i + 1)),
            );
            c.peer_addr = Some(peer_addrs[i].clone());
            c.peers = peers.clone();
            c.election_timeout_ms = election_ms;
            c.heartbeat_ms = (election_ms.min / 10).max(1);
            tweak(&mut c);
            nodes.push(Some(raftkv_native::spawn(c).await.expect("node starts")));
        }
        TestCluster {
            nodes,
            addrs,
            peer_addrs,
            dir,
            http: http_client(),
        }
    }

    /// The node every running node agrees leads (polled until `timeout`).
    pub async fn leader(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let statuses: Vec<_> = self
                .nodes
                .iter()
                .flatten()
                .map(|n| n.service().status().raft)
                .collect();
            if let Some(l) = statuses.iter().find(|s| s.role == Role::Leader)
                && statuses.iter().all(|s| s.leader_id.as_ref() == Some(&l.id))
            {
                let i = self.addrs.len();
                return (0..i)
                    .find(|&i| format!("n{}", i + 1) == l.id.as_str())
                    .expect("a member leads");
            }
            assert!(Instant::now() < deadline, "no agreed leader: {statuses:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The running server `i`.
    pub fn node(&self, i: usize) -> &RunningServer {
        self.nodes[i].as_ref().expect("node is running")
    }

    /// Sends a request to node `i`, without following redirects: status, JSON body, Location.
    pub async fn send(
        &self,
        i: usize,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> (StatusCode, Value, Option<String>) {
        send(&self.http, &self.addrs[i], method, path, body).await
    }

    /// Sends write `body` (which carries its own `client_id` and `seq`) to the leader until a
    /// definite answer: a leadership change under a loaded machine answers 503 (or redirects),
    /// and the resend of the same `(client_id, seq)` gets the original outcome, never a second
    /// apply. Returns the leader that answered and its reply.
    pub async fn write_to_leader(
        &self,
        method: Method,
        path: &str,
        body: &str,
        timeout: Duration,
    ) -> (usize, (StatusCode, Value, Option<String>)) {
        let deadline = Instant::now() + timeout;
        loop {
            let leader = self.leader(timeout).await;
            let reply = self.send(leader, method.clone(), path, Some(body)).await;
            let retry = reply.0 == StatusCode::SERVICE_UNAVAILABLE
                || reply.0 == StatusCode::TEMPORARY_REDIRECT;
            if !retry || Instant::now() >= deadline {
                return (leader, reply);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops node `i` (gracefully: in-flight requests finish, its stores are released).
    pub async fn stop(&mut self, i: usize) {
        if let Some(n) = self.nodes[i].take() {
            n.shutdown().await.expect("clean stop");
        }
    }
}

/// A reqwest client that does not follow redirects, so tests see exactly what the server says.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client")
}

/// Asserts that a reply is the documented error shape with `status` and `code`.
#[track_caller]
pub fn assert_error(got: &(StatusCode, Value), status: StatusCode, code: &str) {
    let (s, body) = got;
    assert_eq!(*s, status, "status of {body}");
    assert_eq!(body["ok"], Value::Bool(false), "ok of {body}");
    assert_eq!(body["err_code"], code, "err_code of {body}");
    assert!(
        body["err_msg"].as_str().is_some_and(|m| !m.is_empty()),
        "err_msg of {body}"
    );
}
