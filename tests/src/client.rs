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
    /// The final response's headers.
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// Whether the status is 2xx and the body says `ok: true`.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status) && self.body["ok"] == true
    }
}

/// How a [`KvClient`] reaches a node: https or http, the CA it trusts, the client certificate
/// it shows and the bearer token it sends. The default is plain http without a token.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// Use https (with `ca_pem` the only trusted CA; without one nothing is trusted).
    pub https: bool,
    /// The CA to trust, PEM.
    pub ca_pem: Option<Vec<u8>>,
    /// A client certificate and its key, in one PEM.
    pub identity_pem: Option<Vec<u8>>,
    /// The bearer token.
    pub token: Option<String>,
}

impl Access {
    /// This access with `token` instead of its own (`None`: no token).
    pub fn with_token(&self, token: Option<&str>) -> Access {
        Access {
            token: token.map(str::to_string),
            ..self.clone()
        }
    }
}

/// A client of one node. Writes carry this client's id and the next sequence number, so a
/// retry of the same write would carry a new seq: use [`KvClient::write_with_seq`] to resend.
#[derive(Debug)]
pub struct KvClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    client_id: String,
    seq: AtomicU64,
}

/// Distinguishes clients within one test process.
static NEXT_CLIENT: AtomicU64 = AtomicU64::new(1);

impl KvClient {
    /// A client of the node at `addr` (`host:port`), over plain http.
    pub fn new(addr: &str) -> Self {
        KvClient::with_access(addr, &Access::default())
    }

    /// A client of the node at `addr` (`host:port`) as `access` says. Bad PEM in `access` is
    /// a bug of the test: it panics.
    pub fn with_access(addr: &str, access: &Access) -> Self {
        let n = NEXT_CLIENT.fetch_add(1, Ordering::Relaxed);
        let mut builder = reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .timeout(Duration::from_secs(5))
            .no_proxy();
        if let Some(ca) = &access.ca_pem {
            builder = builder.add_root_certificate(
                reqwest::Certificate::from_pem(ca).expect("the test's CA is PEM"),
            );
        }
        if let Some(id) = &access.identity_pem {
            builder = builder
                .identity(reqwest::Identity::from_pem(id).expect("the test's identity is PEM"));
        }
        let scheme = if access.https { "https" } else { "http" };
        KvClient {
            http: builder.build().expect("the test's HTTP client builds"),
            base: format!("{scheme}://{addr}"),
            token: access.token.clone(),
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
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
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
            let headers = resp.headers().clone();
            let body = resp.json().await.unwrap_or(Value::Null);
            return Ok(Reply {
                status: status.as_u16(),
                body,
                redirects,
                headers,
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
