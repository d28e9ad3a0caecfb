//! A small HTTP client for kvserver's client API that follows leader redirects (307 with
//! `Location`) itself, so tests can see every hop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode, redirect};
use serde_json::{Value, json};

/// Redirects followed before giving up (a leader change mid-request can add a hop).
pub const MAX_REDIRECTS: usize = 5;

/// A response: status and JSON body (`Null` when the body was not JSON).
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// The final HTTP status.
    pub status: u16,
    /// The final body.
    pub body: Value,
    /// Every URL redirected to, in order.
    pub redirects: Vec<String>,
}

impl Reply {
    /// Whether the status is 2xx and the body says `ok: true`.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status) && self.body["ok"] == true
    }
}

/// A client of one node. Writes carry this client's id and the next sequence number, so a
/// retry of the same write would carry a new seq: use [`KvClient::write_with_seq`] to resend.
#[derive(Debug)]
pub struct KvClient {
    http: reqwest::Client,
    base: String,
    client_id: String,
    seq: AtomicU64,
}

/// Distinguishes clients within one test process.
static NEXT_CLIENT: AtomicU64 = AtomicU64::new(1);

impl KvClient {
    /// A client of the node at `addr` (`host:port`).
    pub fn new(addr: &str) -> Self {
        let n = NEXT_CLIENT.fetch_add(1, Ordering::Relaxed);
        KvClient {
            http: reqwest::Client::builder()
                .redirect(redirect::Policy::none())
                .timeout(Duration::from_secs(5))
                .no_proxy()
                .build()
                .unwrap_or_default(),
            base: format!("http://{addr}"),
            client_id: format!("harness-{}-{n}", std::process::id()),
            seq: AtomicU64::new(0),
        }
    }

    /// The client id writes carry.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Sends `method path` with an optional JSON body, following 307/308 redirects to their
    /// `Location` (absolute, or relative to the current node).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Reply, String> {
        let mut url = format!("{}{path}", self.base);
        let mut redirects = Vec::new();
        loop {
            let mut req = self.http.request(method.clone(), &url);
            if let Some(b) = &body {
                req = req.json(b);
            }
            let resp = req
                .send()
                .await
                .map_err(|e| format!("{method} {url}: {e}"))?;
            let status = resp.status();
            if matches!(
                status,
                StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
            ) {
                let location = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .filter(|l| !l.is_empty())
                    .map(str::to_string);
                if let Some(location) = location
                    && redirects.len() < MAX_REDIRECTS
                {
                    url = resp
                        .url()
                        .join(&location)
                        .map_err(|e| format!("bad Location {location:?}: {e}"))?
                        .to_string();
                    redirects.push(url.clone());
                    continue;
                }
            }
            let body = resp.json().await.unwrap_or(Value::Null);
            return Ok(Reply {
                status: status.as_u16(),
                body,
                redirects,
            });
        }
    }

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// `PUT /kv/{key}`.
    pub async fn put(&self, key: &str, value: &str) -> Result<Reply, String> {
        let seq = self.next_seq();
        self.write_with_seq(
            Method::PUT,
            &format!("/kv/{key}"),
            seq,
            json!({"value": value}),
        )
        .await
    }

    /// `DELETE /kv/{key}`.
    pub async fn delete(&self, key: &str) -> Result<Reply, String> {
        let seq = self.next_seq();
        self.write_with_seq(Method::DELETE, &format!("/kv/{key}"), seq, json!({}))
            .await
    }

    /// A write with an explicit `seq`: `fields` plus `client_id` and `seq`.
    pub async fn write_with_seq(
        &self,
        method: Method,
        path: &str,
        seq: u64,
        mut fields: Value,
    ) -> Result<Reply, String> {
        if let Some(obj) = fields.as_object_mut() {
            obj.insert("client_id".into(), json!(self.client_id));
            obj.insert("seq".into(), json!(seq));
        }
        self.request(method, path, Some(fields)).await
    }

    /// `GET /kv/{key}?consistency=stale`, the node's own state (kvserver's default is a
    /// readindex read, which a follower would send to the leader): `Some(value)` on 200,
    /// `None` on 404, an error otherwise.
    pub async fn get(&self, key: &str) -> Result<Option<String>, String> {
        let r = self
            .request(Method::GET, &format!("/kv/{key}?consistency=stale"), None)
            .await?;
        match r.status {
            200 => r.body["value"]
                .as_str()
                .map(|v| Some(v.to_string()))
                .ok_or_else(|| format!("GET {key}: no value in {}", r.body)),
            404 => Ok(None),
            s => Err(format!("GET {key}: status {s}: {}", r.body)),
        }
    }

    /// `GET /status` as JSON.
    pub async fn status(&self) -> Result<Value, String> {
        let r = self.request(Method::GET, "/status", None).await?;
        if r.status == 200 {
            Ok(r.body)
        } else {
            Err(format!("GET /status: status {}: {}", r.status, r.body))
        }
    }

    /// Whether `GET /healthz` answers 200.
    pub async fn healthy(&self) -> bool {
        matches!(self.request(Method::GET, "/healthz", None).await, Ok(r) if r.status == 200)
    }
}
