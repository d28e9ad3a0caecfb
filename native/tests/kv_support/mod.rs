//! Shared by the HTTP API and kvctl tests: an in-process single-node kvserver on 127.0.0.1:0
//! with its own temporary data dir, and a raw HTTP helper that returns status and JSON body.

#![allow(dead_code)] // each test crate uses a different subset

use std::collections::BTreeMap;
use std::path::Path;

use raftkv_core::WriteMode;
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
        let mut req = self.http.request(method, format!("{}{path}", self.base()));
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        let resp = req.send().await.expect("request is sent");
        let status = resp.status();
        let text = resp.text().await.expect("body is read");
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("body of a {status} is not JSON ({e}): {text:?}"));
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
