//! An HTTP client for the raftkv client API, used by kvctl and by tests.
//!
//! It owns the client identity that makes writes safe to retry: every write carries
//! `(client_id, seq)`, and a write that fails with a transport error is sent again, with the
//! same pair, to the next endpoint; the state machine's dedupe table makes the retry harmless.
//! A 307 from a follower is followed to the leader (a bounded number of hops).
//!
//! While a cluster elects a new leader every endpoint may be dead, leaderless (503
//! `not_leader`) or unsure of a write's outcome (503 `unknown_outcome`). Those answers are
//! retried, round after round over all endpoints with a growing pause, for up to the client's
//! retry window; each round re-sends the same bytes, so a write is still applied at most once.
//! A leader shedding load (503 `overloaded`) is retried the same way, except that the round ends
//! there (the other endpoints would send the request back to that leader) and the pause is at
//! least the reply's `Retry-After`. A leader handing its leadership over (503 `transferring`)
//! ends the round too, but is asked again after the client's own short pause: a transfer takes
//! about an election timeout, far less than the whole second `Retry-After` can say. A read the
//! leader could not confirm (`read_timeout`) or a node behind a read's `min_index`
//! (`not_caught_up`) moves on to the next endpoint, like `not_leader`.
//!
//! A write refused with 409 `session_expired` comes from a session the servers no longer know
//! (it idled past `--session-ttl`, or was dropped over `--max-sessions`): nothing was applied by
//! that attempt. If no earlier attempt of the write can have applied, the client starts a new
//! session as its [`SessionRenewal`] says (a new id, or seq 1 under the same id) and sends the
//! write again; otherwise the write's outcome is unknown and it fails with
//! [`ClientError::SessionLost`], not retried.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use raftkv_core::{Entry, NodeId, ReadPolicy};
use reqwest::header::{LOCATION, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};

use crate::credentials::Credentials;
use crate::dkv::{RangeQuery, ReadOptions};
use raftkv_core::kvsm::SESSION_EXPIRED;

/// How many 307 hops one request follows before giving up.
pub const MAX_REDIRECTS: usize = 5;

/// The pause before the second round of a retried request; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(20);
/// The longest pause between two rounds of a retried request.
const MAX_PAUSE: Duration = Duration::from_millis(500);

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error: `{"ok":false,"err_code","err_msg"}`.
    #[error("{code}: {msg}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The server's err_code.
        code: String,
        /// The server's err_msg.
        msg: String,
        /// The raw body, for `--json`.
        body: String,
        /// How long the server asked the client to wait before retrying (`Retry-After`).
        retry_after: Option<Duration>,
    },
    /// No endpoint could be reached; holds the last transport error.
    #[error("no endpoint reachable: {0}")]
    Unreachable(String),
    /// Redirects went on for more than [`MAX_REDIRECTS`] hops.
    #[error("more than {MAX_REDIRECTS} redirects; last at {0}")]
    TooManyRedirects(String),
    /// The server's reply is not what the API promises.
    #[error("unexpected reply: {0}")]
    BadReply(String),
    /// The arguments cannot form a request.
    #[error("{0}")]
    Usage(String),
    /// An async write did not become ready in time.
    #[error("op {0} was not ready in time")]
    OpTimeout(String),
    /// A write was refused as from an expired session after an earlier attempt of it that may
    /// have applied: its outcome is unknown, and it was not retried.
    #[error("session_expired: {0}")]
    SessionLost(String),
}

/// What a [`Client`] does when a write is refused as from an expired session and no earlier
/// attempt of it can have applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionRenewal {
    /// Give up: the refusal is the write's error.
    Never,
    /// Start a session under a new random id, from seq 1, and send the write again.
    NewId,
    /// Start the session again under the same id, from seq 1, and send the write again.
    SameId,
}

impl ClientError {
    /// Whether another round may succeed where this one failed, with the same request bytes:
    /// no endpoint answered, the cluster is between leaders, the leader sheds load or hands
    /// its leadership over, a read could not be confirmed or found its node behind. Everything
    /// else (a 4xx, a failed cas, a redirect loop) would fail the same way again.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Unreachable(_) => true,
            ClientError::Server { status, code, .. } => {
                *status == 503
                    && matches!(
                        code.as_str(),
                        "not_leader"
                            | "unknown_outcome"
                            | "unavailable"
                            | "overloaded"
                            | "transferring"
                            | "read_timeout"
                            | "not_caught_up"
                    )
            }
            _ => false,
        }
    }

    /// Whether the leader refused the request for now because it has too much pending: asking
    /// the other endpoints would only lead back to it.
    pub fn is_overloaded(&self) -> bool {
        self.has_code("overloaded")
    }

    /// Whether the leader refused the request while it hands its leadership over: the other
    /// endpoints would send it back to this leader until the new one is known.
    pub fn is_transferring(&self) -> bool {
        self.has_code("transferring")
    }

    /// Whether the server refused a write as from a session it no longer knows (409
    /// `session_expired`): that attempt applied nothing.
    pub fn is_session_expired(&self) -> bool {
        matches!(self, ClientError::Server { code, .. } if code == SESSION_EXPIRED)
    }

    fn has_code(&self, want: &str) -> bool {
        matches!(self, ClientError::Server { status: 503, code, .. } if code == want)
    }

    /// How long the server asked to wait before a retry, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ClientError::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A successful reply: its status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The HTTP status (2xx).
    pub status: u16,
    /// The body as received.
    pub raw: String,
    /// The body, parsed.
    pub body: Value,
}

impl Reply {
    /// The `value` field (get).
    pub fn value(&self) -> Option<&str> {
        self.body.get("value").and_then(Value::as_str)
    }

    /// The `deleted` field (delete, mdelete).
    pub fn deleted(&self) -> Option<u64> {
        self.body.get("deleted").and_then(Value::as_u64)
    }

    /// The `index` a write was committed at: a read with it as `min_index` sees the write.
    pub fn index(&self) -> Option<u64> {
        self.body.get("index").and_then(Value::as_u64)
    }
}

/// A client of one cluster, with its own `(client_id, seq)` sequence.
pub struct Client {
    http: reqwest::Client,
    /// The TLS trust and token every request goes with.
    creds: Credentials,
    endpoints: Vec<String>,
    /// Index of the endpoint that answered last; requests start there.
    preferred: usize,
    client_id: String,
    next_seq: u64,
    /// How long to wait for an async write's result.
    op_wait: Duration,
    /// In async write mode, return the 202 instead of waiting for the result.
    no_wait: bool,
    /// How long a request keeps retrying transient failures ([`ClientError::is_transient`]).
    retry_for: Duration,
    /// The per-request timeout: a read's wait for its `min_index` stays within it.
    timeout: Duration,
    /// What to do on `session_expired`.
    renewal: SessionRenewal,
    /// Whether an attempt of the current request may have taken effect without an answer
    /// (a transport error, `unknown_outcome`).
    uncertain: bool,
}

impl Client {
    /// A client of `endpoints` (host:port) whose first write uses `first_seq`, over plain
    /// http without a token.
    pub fn new(
        endpoints: Vec<String>,
        client_id: String,
        first_seq: u64,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        Client::with_credentials(
            endpoints,
            client_id,
            first_seq,
            timeout,
            Credentials::default(),
        )
    }

    /// A client of `endpoints` (`host:port` for http, `https://host:port`) whose first write
    /// uses `first_seq`, trusting and sending what `creds` hold.
    pub fn with_credentials(
        endpoints: Vec<String>,
        client_id: String,
        first_seq: u64,
        timeout: Duration,
        creds: Credentials,
    ) -> Result<Self, ClientError> {
        let endpoints: Vec<String> = endpoints
            .into_iter()
            .map(|e| e.trim().trim_end_matches('/').to_string())
            .filter(|e| !e.is_empty())
            .collect();
        if endpoints.is_empty() {
            return Err(ClientError::Usage("no endpoints given".into()));
        }
        if client_id.is_empty() || first_seq == 0 {
            return Err(ClientError::Usage(
                "client id must not be empty and seq must be above 0".into(),
            ));
        }
        let http = creds
            .http_builder()
            // 307s are followed by hand: to re-send the body, to use the leader hint when there
            // is no Location, and to count hops.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
            .map_err(|e| ClientError::Usage(format!("cannot build HTTP client: {e}")))?;
        Ok(Client {
            http,
            creds,
            endpoints,
            preferred: 0,
            client_id,
            next_seq: first_seq,
            op_wait: Duration::from_secs(10),
            no_wait: false,
            retry_for: Duration::ZERO,
            timeout,
            renewal: SessionRenewal::NewId,
            uncertain: false,
        })
    }

    /// What to do when a write is refused as from an expired session (default: a new id).
    pub fn set_session_renewal(&mut self, renewal: SessionRenewal) {
        self.renewal = renewal;
    }

    /// A client id unlikely to collide with another invocation's: pid and wall-clock nanos.
    pub fn random_client_id() -> String {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        format!("kvctl-{:x}-{nanos:x}", std::process::id())
    }

    /// In async write mode, return the server's 202 `{"ok":true,"op_id"}` instead of waiting.
    pub fn set_no_wait(&mut self, no_wait: bool) {
        self.no_wait = no_wait;
    }

    /// Keep retrying transient failures (no endpoint reachable, no leader, unknown outcome) for
    /// up to `window` per request; zero (the default) tries each endpoint once.
    pub fn set_retry_for(&mut self, window: Duration) {
        self.retry_for = window;
    }

    /// This client's id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The seq the next write will carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The endpoints, in order.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The TLS trust and token this client's requests go with.
    pub fn credentials(&self) -> &Credentials {
        &self.creds
    }

    /// `GET /kv/{key}`, at `consistency` (`None`: the server's read policy).
    pub async fn get(
        &mut self,
        key: &str,
        consistency: Option<ReadPolicy>,
    ) -> Result<Reply, ClientError> {
        self.get_with(key, consistency.into()).await
    }

    /// `GET /kv/{key}` as `opts` say. A read with a `min_index` asks the server to wait for it
    /// no longer than three quarters of this client's request timeout, so that a node behind
    /// answers `not_caught_up` (and the next endpoint is tried) before the request times out.
    pub async fn get_with(&mut self, key: &str, opts: ReadOptions) -> Result<Reply, ClientError> {
        let path = format!("{}{}", key_path(key)?, self.read_query(opts));
        self.request(Method::GET, &path, None).await
    }

    /// The query string of a read as `opts` say (empty for the defaults).
    fn read_query(&self, opts: ReadOptions) -> String {
        let mut params = Vec::new();
        if let Some(c) = opts.consistency {
            params.push(format!("consistency={c}"));
        }
        if let Some(n) = opts.min_index {
            params.push(format!("min_index={n}"));
            let wait = opts.wait.unwrap_or(self.timeout * 3 / 4);
            params.push(format!("wait_ms={}", wait.as_millis()));
        }
        if params.is_empty() {
            String::new()
        } else {
            format!("?{}", params.join("&"))
        }
    }

    /// `GET /kv?…`: one page of the keys `q` covers, read as `opts` say (`q.start` is where
    /// the page begins: a previous page's `next`).
    pub async fn range(&mut self, q: &RangeQuery, opts: ReadOptions) -> Result<Reply, ClientError> {
        let mut params = vec![format!("limit={}", q.limit)];
        match &q.prefix {
            Some(p) => {
                params.push(format!("prefix={}", encode_segment(p)));
                if q.start.as_str() > p.as_str() {
                    params.push(format!("continue={}", encode_segment(&q.start)));
                }
            }
            None => params.push(format!("start={}", encode_segment(&q.start))),
        }
        if let Some(e) = &q.end {
            params.push(format!("end={}", encode_segment(e)));
        }
        let read = self.read_query(opts);
        if let Some(r) = read.strip_prefix('?') {
            params.push(r.to_string());
        }
        let path = format!("/kv?{}", params.join("&"));
        self.request(Method::GET, &path, None).await
    }

    /// `PUT /kv/{key}`.
    pub async fn put(&mut self, key: &str, value: &str) -> Result<Reply, ClientError> {
        let path = key_path(key)?;
        self.write(Method::PUT, &path, json!({ "value": value }))
            .await
    }

    /// `DELETE /kv/{key}`.
    pub async fn delete(&mut self, key: &str) -> Result<Reply, ClientError> {
        let path = key_path(key)?;
        self.write(Method::DELETE, &path, json!({})).await
    }

    /// `POST /kv/cas`.
    pub async fn cas(
        &mut self,
        key: &str,
        expected: &str,
        value: &str,
    ) -> Result<Reply, ClientError> {
        let body = json!({ "key": key, "expected": expected, "value": value });
        self.write(Method::POST, "/kv/cas", body).await
    }

    /// `POST /kv/mget`, read as `opts` say.
    pub async fn mget(&mut self, keys: &[String], opts: ReadOptions) -> Result<Reply, ClientError> {
        let body = json!({ "keys": keys }).to_string().into_bytes();
        let path = format!("/kv/mget{}", self.read_query(opts));
        self.request(Method::POST, &path, Some(body)).await
    }

    /// `POST /kv/mput`.
    pub async fn mput(&mut self, entries: &[Entry]) -> Result<Reply, ClientError> {
        self.write(Method::POST, "/kv/mput", json!({ "entries": entries }))
            .await
    }

    /// `POST /kv/mdelete`.
    pub async fn mdelete(&mut self, keys: &[String]) -> Result<Reply, ClientError> {
        self.write(Method::POST, "/kv/mdelete", json!({ "keys": keys }))
            .await
    }

    /// `POST /cluster/transfer-leader`: hands the leader's leadership to `to` (`None`: the
    /// voter the leader picks) and answers once the node asked knows the new leader. One round
    /// over the endpoints (following the redirect to the leader), never retried later: a second
    /// transfer after a first that worked but whose answer was lost would move leadership again.
    pub async fn transfer_leader(&mut self, to: Option<&NodeId>) -> Result<Reply, ClientError> {
        let body = match to {
            Some(id) => json!({ "to": id }),
            None => json!({}),
        };
        let body = body.to_string().into_bytes();
        self.round(&Method::POST, "/cluster/transfer-leader", Some(&body))
            .await
    }

    /// `GET /status` of the first endpoint that answers.
    pub async fn status(&mut self) -> Result<Reply, ClientError> {
        self.request(Method::GET, "/status", None).await
    }

    /// `GET /status` of one endpoint, without failing over.
    pub async fn status_of(&self, endpoint: &str) -> Result<Reply, ClientError> {
        let url = endpoint_url(endpoint, "/status")?;
        let resp = self
            .creds
            .authorize(self.http.get(url))
            .send()
            .await
            .map_err(|e| {
                ClientError::Unreachable(format!("{endpoint}: {}", self.creds.describe(&e)))
            })?;
        read_reply(resp).await
    }

    /// `GET /ops/{op_id}`.
    pub async fn op_result(&mut self, op_id: &str) -> Result<Reply, ClientError> {
        let path = format!("/ops/{}", encode_segment(op_id));
        self.request(Method::GET, &path, None).await
    }

    /// `method path` with an optional JSON body, over the endpoints like every request
    /// (redirects followed, transient failures retried): for the admin routes, such as
    /// `/cluster`.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, ClientError> {
        let body = body.map(|b| b.to_string().into_bytes());
        self.request(method, path, body).await
    }

    /// Sends a write with the next `(client_id, seq)`. In async write mode it waits for the
    /// result unless told not to, so callers see the same reply in both modes.
    async fn write(
        &mut self,
        method: Method,
        path: &str,
        mut body: Value,
    ) -> Result<Reply, ClientError> {
        let mut renewed = false;
        loop {
            let seq = self.next_seq;
            self.next_seq += 1;
            if let Some(obj) = body.as_object_mut() {
                obj.insert("client_id".into(), json!(self.client_id));
                obj.insert("seq".into(), json!(seq));
            }
            self.uncertain = false;
            let reply = self
                .request(method.clone(), path, Some(body.to_string().into_bytes()))
                .await;
            let reply = match reply {
                Ok(r) => match r.body.get("op_id").and_then(Value::as_str) {
                    Some(op_id) if r.status == 202 && !self.no_wait => {
                        let op_id = op_id.to_string();
                        self.wait_for_op(&op_id).await
                    }
                    _ => Ok(r),
                },
                Err(e) => Err(e),
            };
            match reply {
                Err(e) if e.is_session_expired() => {
                    if self.uncertain {
                        return Err(ClientError::SessionLost(format!(
                            "client {:?} seq {seq}: the session expired after an attempt that                              may have applied; the write's outcome is unknown",
                            self.client_id
                        )));
                    }
                    // This attempt applied nothing, and no other one can have.
                    match self.renewal {
                        _ if renewed => return Err(e),
                        SessionRenewal::Never => return Err(e),
                        SessionRenewal::NewId => self.client_id = Client::random_client_id(),
                        SessionRenewal::SameId => {}
                    }
                    self.next_seq = 1;
                    renewed = true;
                }
                other => return other,
            }
        }
    }

    /// Polls `/ops/{op_id}` until the op is ready, and returns its result as the reply.
    async fn wait_for_op(&mut self, op_id: &str) -> Result<Reply, ClientError> {
        let deadline = Instant::now() + self.op_wait;
        let mut pause = Duration::from_millis(2);
        loop {
            let r = self.op_result(op_id).await?;
            if r.body.get("ready").and_then(Value::as_bool) == Some(true) {
                let result = r.body.get("result").cloned().unwrap_or(Value::Null);
                return result_reply(result);
            }
            if Instant::now() >= deadline {
                return Err(ClientError::OpTimeout(op_id.to_string()));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// Sends one request in rounds over the endpoints ([`Client::round`]) until one answers for
    /// good or the retry window closes. The body is re-sent unchanged each time, so a write
    /// keeps its `(client_id, seq)`.
    async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Reply, ClientError> {
        let deadline = Instant::now() + self.retry_for;
        let mut pause = FIRST_PAUSE;
        loop {
            match self.round(&method, path, body.as_deref()).await {
                Err(e) if e.is_transient() => {
                    // A server that said when to come back is not asked again sooner; but a
                    // transfer ends well within the whole second its Retry-After says.
                    let wait = match e.retry_after() {
                        Some(r) if !e.is_transferring() => r.max(pause),
                        _ => pause,
                    };
                    if Instant::now() + wait >= deadline {
                        return Err(e);
                    }
                    tokio::time::sleep(wait).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                }
                done => return done,
            }
        }
    }

    /// One round: each endpoint in turn from the preferred one, following 307s, moving on after
    /// a transport error or a transient 503; returns the first final answer, an `overloaded` or
    /// `transferring` leader's answer, or the last transient failure when every endpoint gave
    /// one.
    async fn round(
        &mut self,
        method: &Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Reply, ClientError> {
        let n = self.endpoints.len();
        let mut last_err = ClientError::Unreachable(String::new());
        for i in 0..n {
            let idx = (self.preferred + i) % n;
            let mut url = endpoint_url(&self.endpoints[idx], path)?;
            let mut hops = 0;
            loop {
                // The token goes with every hop: the redirects are to the cluster's own nodes.
                let mut req = self
                    .creds
                    .authorize(self.http.request(method.clone(), url.clone()));
                if let Some(b) = body {
                    req = req
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(b.to_vec());
                }
                let resp = match req.send().await {
                    Ok(resp) => resp,
                    Err(e) => {
                        // The request may have reached the server.
                        self.uncertain |= body.is_some() && !e.is_connect();
                        last_err =
                            ClientError::Unreachable(format!("{url}: {}", self.creds.describe(&e)));
                        break;
                    }
                };
                if resp.status() != StatusCode::TEMPORARY_REDIRECT {
                    let reply = read_reply(resp).await;
                    match reply {
                        // The connection broke mid-reply, or this node is between leaders or
                        // unsure of the outcome: the write may or may not have been applied,
                        // and the retry's (client_id, seq) makes either case safe.
                        Err(e)
                            if e.is_transient() && !e.is_overloaded() && !e.is_transferring() =>
                        {
                            self.uncertain |= matches!(e, ClientError::Unreachable(_))
                                || e.has_code("unknown_outcome")
                                || e.has_code("unavailable");
                            last_err = e;
                            break;
                        }
                        _ => {}
                    }
                    // Start the next request where this one ended (the leader, after a
                    // redirect), if that is one of our endpoints: saves a hop per request.
                    self.preferred = self.endpoint_of(&url).unwrap_or(idx);
                    return reply;
                }
                hops += 1;
                if hops > MAX_REDIRECTS {
                    return Err(ClientError::TooManyRedirects(url.to_string()));
                }
                match redirect_target(&url, resp).await {
                    Some(next) => url = next,
                    None => {
                        // A follower that knows no leader yet: try the next endpoint.
                        last_err = ClientError::Unreachable(format!("{url}: no leader known"));
                        break;
                    }
                }
            }
        }
        Err(last_err)
    }
}

/// Where a 307 points: its `Location`, else the `leader_addr` of its body.
impl Client {
    /// The position of the endpoint `url` points at, if it is one of ours.
    fn endpoint_of(&self, url: &Url) -> Option<usize> {
        let host = url.host_str()?;
        let port = url.port_or_known_default()?;
        let authority = format!("{host}:{port}");
        self.endpoints.iter().position(|e| {
            let e = e
                .strip_prefix("http://")
                .or_else(|| e.strip_prefix("https://"))
                .unwrap_or(e);
            e == authority
        })
    }
}

async fn redirect_target(from: &Url, resp: reqwest::Response) -> Option<Url> {
    if let Some(loc) = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok())
        && let Ok(next) = from.join(loc)
    {
        return Some(next);
    }
    let body: Value = resp.json().await.ok()?;
    let leader = body.get("leader_addr")?.as_str()?;
    if leader.is_empty() {
        return None;
    }
    let mut next = from.clone();
    let with_port = Url::parse(&format!("http://{leader}/")).ok()?;
    next.set_host(with_port.host_str()).ok()?;
    next.set_port(with_port.port()).ok()?;
    Some(next)
}

/// A response's status, body text and that text as JSON (a body that is not JSON is a
/// [`ClientError::BadReply`]). Shared with the etcd bench target, whose gateway answers JSON too.
pub(crate) async fn json_body(
    resp: reqwest::Response,
) -> Result<(reqwest::StatusCode, String, Value), ClientError> {
    let status = resp.status();
    let raw = resp
        .text()
        .await
        .map_err(|e| ClientError::Unreachable(format!("reading reply: {e}")))?;
    let body: Value = serde_json::from_str(&raw)
        .map_err(|_| ClientError::BadReply(format!("HTTP {status}, body is not JSON: {raw:?}")))?;
    Ok((status, raw, body))
}

/// Reads a non-redirect response: 2xx becomes a [`Reply`], anything else a
/// [`ClientError::Server`].
async fn read_reply(resp: reqwest::Response) -> Result<Reply, ClientError> {
    let retry_after = retry_after(resp.headers());
    let (status, raw, body) = json_body(resp).await?;
    if status.is_success() {
        return Ok(Reply {
            status: status.as_u16(),
            raw,
            body,
        });
    }
    let field = |name| {
        body.get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Err(ClientError::Server {
        status: status.as_u16(),
        code: field("err_code"),
        msg: field("err_msg"),
        body: raw,
        retry_after,
    })
}

/// A `Retry-After` in seconds; the HTTP-date form (which kvserver does not send) is ignored.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// Turns an async op's `result` into the reply a sync write would have given.
fn result_reply(result: Value) -> Result<Reply, ClientError> {
    let raw = result.to_string();
    if result.get("ok").and_then(Value::as_bool) == Some(true) {
        return Ok(Reply {
            status: 200,
            raw,
            body: result,
        });
    }
    let field = |name| {
        result
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Err(ClientError::Server {
        status: 200,
        code: field("err_code"),
        msg: field("err_msg"),
        body: raw,
        retry_after: None,
    })
}

fn endpoint_url(endpoint: &str, path: &str) -> Result<Url, ClientError> {
    let base = if endpoint.contains("://") {
        endpoint.to_string()
    } else {
        format!("http://{endpoint}")
    };
    Url::parse(&format!("{base}{path}"))
        .map_err(|e| ClientError::Usage(format!("bad endpoint {endpoint:?}: {e}")))
}

fn key_path(key: &str) -> Result<String, ClientError> {
    if key.is_empty() {
        return Err(ClientError::Usage("key must not be empty".into()));
    }
    Ok(format!("/kv/{}", encode_segment(key)))
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so that a key with slashes,
/// spaces, `?`, `#` or non-ASCII text travels as one path segment and the server decodes it back.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_one_encoded_segment() {
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(encode_segment("é?#%"), "%C3%A9%3F%23%25");
        assert_eq!(encode_segment("Az09-._~"), "Az09-._~");
        assert!(key_path("").is_err());
    }

    #[test]
    fn endpoints_may_omit_the_scheme() {
        let u = endpoint_url("127.0.0.1:7001", "/kv/a%2Fb").unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:7001/kv/a%2Fb");
        let u = endpoint_url("http://localhost:9", "/status").unwrap();
        assert_eq!(u.as_str(), "http://localhost:9/status");
    }

    #[test]
    fn an_async_result_becomes_a_reply_or_an_error() {
        let ok = result_reply(json!({"ok": true, "deleted": 1})).unwrap();
        assert_eq!(ok.deleted(), Some(1));
        let err = result_reply(json!({"ok": false, "err_code": "cas_failed", "err_msg": "no"}));
        assert!(matches!(err, Err(ClientError::Server { code, .. }) if code == "cas_failed"));
    }

    #[test]
    fn overloaded_is_retried_after_the_servers_delay() {
        let server = |status, code: &str, retry_after| ClientError::Server {
            status,
            code: code.into(),
            msg: String::new(),
            body: String::new(),
            retry_after,
        };
        let busy = server(503, "overloaded", Some(Duration::from_secs(1)));
        assert!(busy.is_transient() && busy.is_overloaded());
        assert_eq!(busy.retry_after(), Some(Duration::from_secs(1)));
        let lost = server(503, "unknown_outcome", None);
        assert!(lost.is_transient() && !lost.is_overloaded());
        // An async op's result carries the code with a 200: not a retryable answer.
        assert!(!server(200, "overloaded", None).is_transient());

        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn transferring_read_timeout_and_not_caught_up_are_retried() {
        let server = |code: &str| ClientError::Server {
            status: 503,
            code: code.into(),
            msg: String::new(),
            body: String::new(),
            retry_after: Some(Duration::from_secs(1)),
        };
        let moving = server("transferring");
        assert!(moving.is_transient() && moving.is_transferring() && !moving.is_overloaded());
        for code in ["read_timeout", "not_caught_up"] {
            let e = server(code);
            assert!(e.is_transient() && !e.is_transferring(), "{code}");
        }
        for code in ["transfer_abandoned", "no_candidate", "not_voter"] {
            assert!(!server(code).is_transient(), "{code}");
        }
    }

    #[test]
    fn a_min_index_read_asks_for_a_wait_within_the_request_timeout() {
        let c = Client::new(vec!["h:1".into()], "c".into(), 1, Duration::from_secs(4)).unwrap();
        assert_eq!(c.read_query(ReadOptions::default()), "");
        let opts = ReadOptions {
            consistency: Some(ReadPolicy::Lease),
            min_index: Some(7),
            wait: None,
        };
        assert_eq!(
            c.read_query(opts),
            "?consistency=lease&min_index=7&wait_ms=3000"
        );
    }

    #[test]
    fn a_client_needs_an_endpoint_and_an_identity() {
        let t = Duration::from_secs(1);
        assert!(Client::new(vec![], "c".into(), 1, t).is_err());
        assert!(Client::new(vec![" ".into()], "c".into(), 1, t).is_err());
        assert!(Client::new(vec!["h:1".into()], "".into(), 1, t).is_err());
        assert!(Client::new(vec!["h:1".into()], "c".into(), 0, t).is_err());
        let c = Client::new(vec!["h:1/".into()], "c".into(), 7, t).unwrap();
        assert_eq!(c.endpoints(), ["h:1"]);
        assert_eq!(c.next_seq(), 7);
    }
}
