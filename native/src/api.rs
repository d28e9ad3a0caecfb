//! The client HTTP API (ARCHITECTURE.md, "Client HTTP API"): routes, thin handlers, and the one
//! place that turns results into status codes and JSON bodies ([`write_json`], [`write_error`],
//! [`reply`]).
//!
//! Handlers parse and check the request, call [`DistributedKv`], and hand its answer to [`reply`].
//! Every failure, including axum's own rejections (bad JSON, oversize body, unknown route,
//! wrong method), leaves as `{"ok":false,"err_code":..,"err_msg":..}`. A write, a linearizable
//! read or a leadership transfer at a follower is a 307 to the leader's same URL (503
//! `not_leader` while no leader is known); a write whose outcome is unknown is a 503
//! `unknown_outcome`; a write the leader refuses while too many uncommitted bytes are pending is
//! a 503 `overloaded`, and one it refuses while handing its leadership over a 503
//! `transferring`, both with `Retry-After`. Every write the log took answers its `index`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{QueryRejection, RawPathParamsRejection};
use axum::extract::{
    DefaultBodyLimit, FromRequest, FromRequestParts, Query, RawPathParams, Request, State,
};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, get, post};
use raftkv_core::raft::TransferError;
use raftkv_core::{
    ApplyResult, Command, Entry, LeaderHint, NodeId, OpId, OpResult, OpType, ReadPolicy,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::{IntoParams, ToSchema};

use crate::dkv::{
    DEFAULT_RANGE_LIMIT, DistributedKv, MAX_RANGE_LIMIT, NodeStatus, RangePage, RangeQuery,
    ReadOptions, WriteReply,
};
use crate::node_port::{NodeError, TransferDone};

/// Shared state of every handler.
type Svc = State<Arc<DistributedKv>>;

/// The client API over `svc`, refusing bodies over `max_body_bytes` with 413.
pub fn router(svc: Arc<DistributedKv>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/status", get(status))
        // The batch routes are static paths under /kv/, so they shadow keys of the same names;
        // giving them the key methods too keeps GET/PUT/DELETE /kv/cas working as key "cas".
        .route("/kv/cas", key_methods().post(cas))
        .route("/kv/mget", key_methods().post(mget))
        .route("/kv/mput", key_methods().post(mput))
        .route("/kv/mdelete", key_methods().post(mdelete))
        .route("/kv/{*key}", key_methods())
        .route("/kv", get(range))
        .route("/snapshot", get(snapshot))
        // The wildcard needs at least one character; name the empty key's path so it gets a
        // 400 that says what is wrong rather than a 404.
        .route("/kv/", any(empty_key))
        .route("/ops/{op_id}", get(op_result))
        .route("/cluster/transfer-leader", post(transfer_leader))
        .fallback(not_found)
        // Must follow every route: it applies to the routes added so far.
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(svc)
}

fn key_methods() -> MethodRouter<Arc<DistributedKv>> {
    get(get_key).put(put_key).delete(delete_key)
}

// ---------------------------------------------------------------------------------------------
// The one place that maps outcomes to HTTP.

/// Sends `payload` as JSON with `status`.
pub fn write_json<T: Serialize>(status: StatusCode, payload: &T) -> Response {
    match serde_json::to_vec(payload) {
        Ok(body) => (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => write_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &format!("cannot encode reply: {e}"),
        ),
    }
}

/// Sends `{"ok":false,"err_code":code,"err_msg":msg}` with `status`.
pub fn write_error(status: StatusCode, code: &str, msg: &str) -> Response {
    write_json(status, &ErrorBody::new(code, msg))
}

/// The body of every failure: `{"ok":false,"err_code":..,"err_msg":..}`, and for `not_leader`
/// the leader this node knows of (empty strings while none is known). A refused
/// [`ApplyResult`] (`cas_failed`, `not_found`, ...) has this shape too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Always false.
    pub ok: bool,
    /// A machine-readable error code, such as `bad_request`, `not_leader` or `cas_failed`.
    pub err_code: String,
    /// A human-readable explanation.
    pub err_msg: String,
    /// `not_leader` only: the leader's id ("" while none is known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader_id: Option<String>,
    /// `not_leader` only: the leader's client address ("" while none is known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader_addr: Option<String>,
}

impl ErrorBody {
    /// `{"ok":false,"err_code":code,"err_msg":msg}`.
    pub fn new(code: &str, msg: &str) -> Self {
        ErrorBody {
            ok: false,
            err_code: code.to_string(),
            err_msg: msg.to_string(),
            leader_id: None,
            leader_addr: None,
        }
    }
}

/// `{"ok":true}`: the answer of `/healthz` and `/readyz` when all is well.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct OkBody {
    /// Always true.
    pub ok: bool,
}

/// The answer to a write in async mode (202): fetch its result at `GET /ops/{op_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AcceptedBody {
    /// Always true.
    pub ok: bool,
    /// The id to fetch the write's result with.
    pub op_id: OpId,
}

/// The answer to a leadership transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TransferReply {
    /// Always true.
    pub ok: bool,
    /// The voter the leadership was handed to.
    pub to: NodeId,
    /// The leader this node knows of now (normally `to`).
    pub leader_id: Option<NodeId>,
    /// That leader's client address, if known.
    pub leader_addr: Option<String>,
}

/// The seconds an `overloaded` answer asks the client to wait (`Retry-After`): about what a
/// leader needs to commit what is pending.
pub const OVERLOADED_RETRY_AFTER_SECS: u64 = 1;
/// The seconds a `transferring` answer asks the client to wait (`Retry-After`, whole seconds):
/// a transfer ends within an election timeout, so this is the least the header can say.
pub const TRANSFERRING_RETRY_AFTER_SECS: u64 = 1;

/// The status an `err_code` of an [`ApplyResult`] or of this module's own errors travels with.
/// A [`NodeError`]'s status comes from the error itself ([`status_for_node_error`]).
fn status_for_code(code: &str) -> StatusCode {
    match code {
        "bad_request" => StatusCode::BAD_REQUEST,
        "not_found" => StatusCode::NOT_FOUND,
        "cas_failed" | raftkv_core::kvsm::SESSION_EXPIRED => StatusCode::CONFLICT,
        "method_not_allowed" => StatusCode::METHOD_NOT_ALLOWED,
        "payload_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The status a [`NodeError`] travels with. A malformed request is a 400 and a transfer the
/// cluster's configuration rules out (the target is not a voter, there is no other voter) a
/// 409; every other refusal is a 503, worth retrying: `not_leader` from a follower that knows
/// no leader address to redirect to (with one it is a 307, see [`ApiError::from_node`]),
/// `unknown_outcome` when the write's fate is unknown, `unavailable` once the node stopped,
/// `overloaded` while the leader sheds load, `transferring` while it hands over,
/// `read_timeout` when no quorum confirmed a read, `not_caught_up` when this node has not
/// applied a read's `min_index`, `transfer_abandoned` when the target did not take over.
fn status_for_node_error(e: &NodeError) -> StatusCode {
    match e {
        NodeError::BadRequest(_) => StatusCode::BAD_REQUEST,
        NodeError::TransferRefused(TransferError::NotVoter { .. } | TransferError::NoCandidate) => {
            StatusCode::CONFLICT
        }
        NodeError::NotLeader(_)
        | NodeError::UnknownOutcome(_)
        | NodeError::Unavailable(_)
        | NodeError::Overloaded(_)
        | NodeError::Transferring(_)
        | NodeError::ReadTimeout(_)
        | NodeError::NotCaughtUp(_)
        | NodeError::TransferRefused(TransferError::NotLeader { .. })
        | NodeError::TransferAbandoned(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Sends an [`ApplyResult`]: 200 when ok, otherwise the status of its `err_code`.
pub fn reply(result: ApplyResult) -> Response {
    if result.ok {
        return write_json(StatusCode::OK, &result);
    }
    let code = result.err_code.clone().unwrap_or_else(|| "internal".into());
    let result = ApplyResult {
        err_msg: Some(result.err_msg.unwrap_or_else(|| code.clone())),
        err_code: Some(code.clone()),
        ..result
    };
    write_json(status_for_code(&code), &result)
}

/// A request that fails before or instead of reaching the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    msg: String,
    /// Set for `not_leader`: who leads, and where this request should go instead (boxed: it
    /// is rare, and keeps every `Result<_, ApiError>` small).
    redirect: Option<Box<(LeaderHint, Option<String>)>>,
    /// Seconds for a `Retry-After` header, if the client should wait before it retries.
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(code: &'static str, msg: impl Into<String>) -> Self {
        ApiError {
            status: status_for_code(code),
            code,
            msg: msg.into(),
            redirect: None,
            retry_after: None,
        }
    }

    fn bad_request(msg: impl Into<String>) -> Self {
        ApiError::new("bad_request", msg)
    }

    /// A node error for the request to `uri`. A `not_leader` with a known leader address
    /// becomes a 307 to the leader's same URL; with none known it is a 503 (a redirect without
    /// a Location would leave the client nowhere to go).
    pub(crate) fn from_node(e: NodeError, uri: &Uri) -> Self {
        let mut err = ApiError {
            status: status_for_node_error(&e),
            code: e.code(),
            msg: String::new(),
            redirect: None,
            retry_after: None,
        };
        match e {
            NodeError::NotLeader(hint) => {
                let location = hint.leader_addr.as_ref().map(|addr| {
                    let pq = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
                    format!("http://{addr}{pq}")
                });
                err.msg = "this node is not the leader; retry at the leader".into();
                err.redirect = Some(Box::new((hint, location)));
            }
            NodeError::Overloaded(m) => {
                err.msg = m;
                err.retry_after = Some(OVERLOADED_RETRY_AFTER_SECS);
            }
            NodeError::Transferring(m) => {
                err.msg = m;
                err.retry_after = Some(TRANSFERRING_RETRY_AFTER_SECS);
            }
            NodeError::TransferRefused(e) => err.msg = e.to_string(),
            NodeError::BadRequest(m)
            | NodeError::UnknownOutcome(m)
            | NodeError::Unavailable(m)
            | NodeError::ReadTimeout(m)
            | NodeError::NotCaughtUp(m)
            | NodeError::TransferAbandoned(m) => {
                err.msg = m;
            }
        }
        err
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let Some(redirect) = self.redirect else {
            let mut resp = write_error(self.status, self.code, &self.msg);
            if let Some(secs) = self.retry_after {
                resp.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, secs.into());
            }
            return resp;
        };
        let (hint, location) = *redirect;
        let body = ErrorBody {
            leader_id: Some(hint.leader_id.map(|l| l.0).unwrap_or_default()),
            leader_addr: Some(hint.leader_addr.unwrap_or_default()),
            ..ErrorBody::new(self.code, &self.msg)
        };
        match location {
            Some(loc) => {
                let mut resp = write_json(StatusCode::TEMPORARY_REDIRECT, &body);
                if let Ok(v) = axum::http::HeaderValue::from_str(&loc) {
                    resp.headers_mut().insert(axum::http::header::LOCATION, v);
                }
                resp
            }
            None => write_json(self.status, &body),
        }
    }
}

type ApiResult = Result<Response, ApiError>;

// ---------------------------------------------------------------------------------------------
// Extractors whose rejections are ours.

/// A JSON body decoded into `T`. Unlike `axum::Json` it does not insist on a JSON content type
/// (so `curl -d` works), and its rejections are [`ApiError`]s: 413 `payload_too_large` for a body
/// over the limit, 400 `bad_request` for anything that does not decode.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        decode_json(&bytes).map(JsonBody)
    }
}

/// Like [`JsonBody`], but an empty body (or only whitespace), or JSON `null`, is
/// `T::default()`: for requests whose fields are all optional, so `curl -X POST` without `-d`
/// works.
pub struct OptionalJsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(T::default()));
        }
        decode_json::<Option<T>>(&bytes).map(|b| OptionalJsonBody(b.unwrap_or_default()))
    }
}

/// The request body within the limit: 413 `payload_too_large` over it.
async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                "payload_too_large",
                "request body is larger than the server's limit",
            )
        } else {
            ApiError::bad_request(format!("cannot read request body: {e}"))
        }
    })
}

fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// The key of a `/kv/{key}` request, percent-decoded; never empty.
pub struct Key(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Key {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("invalid key: {e}")))?;
        let key = match params.iter().find(|(name, _)| *name == "key") {
            Some((_, value)) => value.to_string(),
            // A static route such as /kv/cas matched: its raw path is exactly the key's name.
            None => parts
                .uri
                .path()
                .strip_prefix("/kv/")
                .unwrap_or_default()
                .to_string(),
        };
        if key.is_empty() {
            return Err(ApiError::bad_request("key must not be empty"));
        }
        Ok(Key(key))
    }
}

// ---------------------------------------------------------------------------------------------
// Request bodies. Every write names its client and sequence number for deduplication.

/// The body of `PUT /kv/{key}`. Crate-visible so that `noop-kv` ([`crate::noop`]) parses
/// exactly what kvserver parses.
#[derive(serde::Deserialize, ToSchema)]
pub(crate) struct PutBody {
    /// The client issuing the write (non-empty): with `seq`, names the operation, so a
    /// retry is applied once.
    #[schema(min_length = 1)]
    pub(crate) client_id: String,
    /// The client's sequence number of this operation, above 0.
    #[schema(minimum = 1)]
    pub(crate) seq: u64,
    /// The new value (may be empty).
    pub(crate) value: String,
}

/// The body of `DELETE /kv/{key}`.
#[derive(serde::Deserialize, ToSchema)]
pub(crate) struct DeleteBody {
    /// The client issuing the write (non-empty): with `seq`, names the operation, so a
    /// retry is applied once.
    #[schema(min_length = 1)]
    pub(crate) client_id: String,
    /// The client's sequence number of this operation, above 0.
    #[schema(minimum = 1)]
    pub(crate) seq: u64,
}

/// The body of `POST /kv/cas`: set `key` to `value` if its value is `expected` (a missing key
/// counts as "").
#[derive(serde::Deserialize, ToSchema)]
pub(crate) struct CasBody {
    /// The client issuing the write (non-empty): with `seq`, names the operation, so a
    /// retry is applied once.
    #[schema(min_length = 1)]
    pub(crate) client_id: String,
    /// The client's sequence number of this operation, above 0.
    #[schema(minimum = 1)]
    pub(crate) seq: u64,
    /// The key (non-empty).
    #[schema(min_length = 1)]
    pub(crate) key: String,
    /// The value the key must have now.
    pub(crate) expected: String,
    /// The new value.
    pub(crate) value: String,
}

/// The body of `POST /kv/mget`.
#[derive(serde::Deserialize, ToSchema)]
pub(crate) struct MGetBody {
    /// The keys to read (at least one; no empty key); missing ones are absent from the
    /// answer's `values`.
    #[schema(value_type = Vec<crate::openapi::NonEmptyKey>, min_items = 1)]
    pub(crate) keys: Vec<String>,
}

/// The body of `POST /kv/mput`: every pair is set, atomically.
#[derive(serde::Deserialize, ToSchema)]
pub(crate) struct MPutBody {
    /// The client issuing the write (non-empty): with `seq`, names the operation, so a
    /// retry is applied once.
    #[schema(min_length = 1)]
    pub(crate) client_id: String,
    /// The client's sequence number of this operation, above 0.
    #[schema(minimum = 1)]
    pub(crate) seq: u64,
    /// The pairs to set (at least one; no empty key).
    #[schema(min_items = 1)]
    pub(crate) entries: Vec<Entry>,
}

/// The body of `POST /kv/mdelete`: every key is removed, atomically.
#[derive(serde::Deserialize, ToSchema)]
pub(crate) struct MDeleteBody {
    /// The client issuing the write (non-empty): with `seq`, names the operation, so a
    /// retry is applied once.
    #[schema(min_length = 1)]
    pub(crate) client_id: String,
    /// The client's sequence number of this operation, above 0.
    #[schema(minimum = 1)]
    pub(crate) seq: u64,
    /// The keys to remove (at least one; no empty key).
    #[schema(value_type = Vec<crate::openapi::NonEmptyKey>, min_items = 1)]
    pub(crate) keys: Vec<String>,
}

/// The body of `POST /cluster/transfer-leader` (optional: an empty body hands over to the
/// voter core picks). Unknown fields are refused.
#[derive(serde::Deserialize, Default, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct TransferBody {
    /// The voter to hand over to; absent: the one core picks.
    #[schema(min_length = 1)]
    pub(crate) to: Option<String>,
}

/// The query of a read: its consistency, and the index it must see.
#[derive(serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReadParams {
    /// How to serve the read; absent: the server's `--read-policy`.
    #[param(value_type = Option<ReadPolicy>)]
    consistency: Option<String>,
    /// Answer once this node has applied this log index (a write's `index`), so the read
    /// sees that write.
    min_index: Option<u64>,
    /// How long to wait for `min_index`, in milliseconds, within the server's bound.
    wait_ms: Option<u64>,
}

/// The key of a `/kv/{key}` route.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Documentation only: the [`Key`] extractor reads the path.
pub(crate) struct KeyPath {
    /// The key, percent-encoded (it may contain `/`); never empty.
    #[param(min_length = 1)]
    key: String,
}

/// Builds a command for `op`, checking the client identity the API requires (the state machine
/// itself would let an empty id or a zero seq opt out of deduplication).
pub(crate) fn command(op: OpType, client_id: String, seq: u64) -> Result<Command, ApiError> {
    if client_id.is_empty() {
        return Err(ApiError::bad_request(
            "client_id must be a non-empty string",
        ));
    }
    if seq == 0 {
        return Err(ApiError::bad_request("seq must be above 0"));
    }
    Ok(Command::new(op).with_client(client_id, seq))
}

async fn write(svc: &Arc<DistributedKv>, uri: &Uri, cmd: Command) -> ApiResult {
    let written = svc
        .write(cmd)
        .await
        .map_err(|e| ApiError::from_node(e, uri))?;
    Ok(match written {
        WriteReply::Done(result) => reply(result),
        WriteReply::Accepted(op_id) => {
            write_json(StatusCode::ACCEPTED, &AcceptedBody { ok: true, op_id })
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Handlers.

/// 200 while the node can serve; 503 `unavailable` once it has stopped after a storage failure,
/// so a load balancer or supervisor stops sending it traffic (the process itself stays up to
/// answer /status and show why).
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "node",
    responses(
        (status = 200, description = "The node can serve", body = OkBody),
        (status = 503, description = "`unavailable`: the node stopped after a storage failure", body = ErrorBody)
    )
)]
async fn healthz(State(svc): Svc, uri: Uri) -> Response {
    if svc.status().stopped {
        let e = NodeError::Unavailable(
            "the raft node has stopped after a storage failure (see the server log)".into(),
        );
        return ApiError::from_node(e, &uri).into_response();
    }
    write_json(StatusCode::OK, &OkBody { ok: true })
}

#[utoipa::path(
    get,
    path = "/status",
    tag = "node",
    responses(
        (status = 200, description = "This node's Raft status and configuration", body = NodeStatus)
    )
)]
async fn status(State(svc): Svc) -> Response {
    write_json(StatusCode::OK, &svc.status())
}

/// A read's query: `?consistency=stale|readindex|lease` (default: the server's read policy),
/// `?min_index=N` (answer once this node applied N) and `?wait_ms=T` (wait at most T ms for
/// it, within the server's bound).
pub(crate) fn read_options(
    params: Result<Query<ReadParams>, QueryRejection>,
) -> Result<ReadOptions, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let consistency = params
        .consistency
        .map(|c| c.parse::<ReadPolicy>())
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("consistency: {e}")))?;
    Ok(ReadOptions {
        consistency,
        min_index: params.min_index,
        wait: params.wait_ms.map(std::time::Duration::from_millis),
    })
}

#[utoipa::path(
    get,
    path = "/kv/{key}",
    tag = "kv",
    params(KeyPath, ReadParams),
    responses(
        (status = 200, description = "The value (`value`)", body = ApplyResult),
        (status = 307, description = "`not_leader`: this node is a follower; the same request goes to the leader (`Location`)", body = ErrorBody, headers(("Location" = String, description = "The leader's same URL"))),
        (status = 400, description = "`bad_request`: the request is malformed", body = ErrorBody),
        (status = 404, description = "`not_found`: no such key", body = ErrorBody),
        (status = 503, description = "Retry later: `not_leader` (no leader known), `read_timeout` (no quorum confirmed the read), `not_caught_up` (`min_index` not applied in time), `unavailable` (the node stopped)", body = ErrorBody)
    )
)]
async fn get_key(
    State(svc): Svc,
    uri: Uri,
    Key(key): Key,
    params: Result<Query<ReadParams>, QueryRejection>,
) -> ApiResult {
    let opts = read_options(params)?;
    let got = svc.get(&key, opts).await;
    Ok(reply(got.map_err(|e| ApiError::from_node(e, &uri))?))
}

/// The keys of a range read: `?prefix=P` or `?start=A&end=B` (either bound optional), with
/// `?limit=N` and `?continue=<token>` (a page's `next`).
#[derive(serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RangeParams {
    /// Only keys with this prefix (does not combine with `start` or `end`).
    prefix: Option<String>,
    /// The first key to answer.
    start: Option<String>,
    /// The first key not to answer; must come after `start`.
    end: Option<String>,
    /// The most keys in a page.
    #[param(minimum = 1, maximum = 10_000)]
    limit: Option<usize>,
    /// A previous page's `next`: resume there.
    #[serde(rename = "continue")]
    #[param(rename = "continue")]
    cont: Option<String>,
}

/// Builds the range a query asks for; refuses the combinations that mean nothing.
fn range_query(p: RangeParams) -> Result<RangeQuery, ApiError> {
    if p.prefix.is_some() && (p.start.is_some() || p.end.is_some()) {
        return Err(ApiError::bad_request(
            "prefix does not combine with start or end: ask for one or the other",
        ));
    }
    let limit = p.limit.unwrap_or(DEFAULT_RANGE_LIMIT);
    if limit == 0 || limit > MAX_RANGE_LIMIT {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_RANGE_LIMIT}"
        )));
    }
    let from = p.prefix.clone().or(p.start).unwrap_or_default();
    if let Some(end) = p.end.as_deref().filter(|e| *e <= from.as_str()) {
        return Err(ApiError::bad_request(format!(
            "end {end:?} must come after start {from:?}"
        )));
    }
    // A token resumes at or after where the range starts (a token from before it means the
    // start).
    let start = match p.cont {
        Some(c) if c > from => c,
        _ => from,
    };
    Ok(RangeQuery {
        start,
        end: p.end,
        prefix: p.prefix,
        limit,
    })
}

#[utoipa::path(
    get,
    path = "/kv",
    tag = "kv",
    params(RangeParams, ReadParams),
    responses(
        (status = 200, description = "One page of keys in order", body = RangePage),
        (status = 307, description = "`not_leader`: this node is a follower; the same request goes to the leader (`Location`)", body = ErrorBody, headers(("Location" = String, description = "The leader's same URL"))),
        (status = 400, description = "`bad_request`: the request is malformed", body = ErrorBody),
        (status = 503, description = "Retry later: `not_leader` (no leader known), `read_timeout` (no quorum confirmed the read), `not_caught_up` (`min_index` not applied in time), `unavailable` (the node stopped)", body = ErrorBody)
    )
)]
async fn range(
    State(svc): Svc,
    uri: Uri,
    range: Result<Query<RangeParams>, QueryRejection>,
    params: Result<Query<ReadParams>, QueryRejection>,
) -> ApiResult {
    let Query(range) = range.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let q = range_query(range)?;
    let opts = read_options(params)?;
    let page = svc
        .range(&q, opts)
        .await
        .map_err(|e| ApiError::from_node(e, &uri))?;
    Ok(write_json(StatusCode::OK, &page))
}

/// `GET /snapshot`: the leader's whole state, streamed in the snapshot format, with its index
/// in the `x-raftkv-snapshot-index` header.
#[utoipa::path(
    get,
    path = "/snapshot",
    tag = "node",
    responses(
        (status = 200, description = "The leader's state in the snapshot format", content_type = "application/octet-stream", body = Vec<u8>, headers(("X-Raftkv-Snapshot-Index" = u64, description = "The log index the snapshot covers"))),
        (status = 307, description = "`not_leader`: this node is a follower; the same request goes to the leader (`Location`)", body = ErrorBody, headers(("Location" = String, description = "The leader's same URL"))),
        (status = 503, description = "Retry later: `not_leader` (no leader known), `read_timeout` (no quorum confirmed the read), `not_caught_up` (`min_index` not applied in time), `unavailable` (the node stopped)", body = ErrorBody)
    )
)]
async fn snapshot(State(svc): Svc, uri: Uri) -> ApiResult {
    let view = svc
        .snapshot_view()
        .await
        .map_err(|e| ApiError::from_node(e, &uri))?;
    let index = view.index();
    let mut resp = Response::new(crate::backup::stream(view));
    let headers = resp.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(
        crate::backup::INDEX_HEADER,
        axum::http::HeaderValue::from(index),
    );
    Ok(resp)
}

#[utoipa::path(
    put,
    path = "/kv/{key}",
    tag = "kv",
    params(KeyPath),
    request_body = PutBody,
    responses(
        (status = 200, description = "Written: `index` is its log index", body = ApplyResult),
        (status = 202, description = "Async write mode: accepted; its result is at `GET /ops/{op_id}`", body = AcceptedBody),
        (status = 307, description = "`not_leader`: this node is a follower; the same request goes to the leader (`Location`)", body = ErrorBody, headers(("Location" = String, description = "The leader's same URL"))),
        (status = 400, description = "`bad_request`: the request is malformed", body = ErrorBody),
        (status = 409, description = "`session_expired`: this client's session was evicted; start a new client id", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the server's limit", body = ErrorBody),
        (status = 503, description = "Retry later: `not_leader` (no leader known), `unknown_outcome` (the write may or may not apply), `overloaded` or `transferring` (with `Retry-After`), `unavailable` (the node stopped)", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait (overloaded, transferring)")))
    )
)]
async fn put_key(
    State(svc): Svc,
    uri: Uri,
    Key(key): Key,
    JsonBody(b): JsonBody<PutBody>,
) -> ApiResult {
    let mut cmd = command(OpType::Put, b.client_id, b.seq)?;
    cmd.key = key;
    cmd.value = b.value;
    write(&svc, &uri, cmd).await
}

#[utoipa::path(
    delete,
    path = "/kv/{key}",
    tag = "kv",
    params(KeyPath),
    request_body = DeleteBody,
    responses(
        (status = 200, description = "Deleted: `deleted` counts the keys removed (0 or 1)", body = ApplyResult),
        (status = 202, description = "Async write mode: accepted; its result is at `GET /ops/{op_id}`", body = AcceptedBody),
        (status = 307, description = "`not_leader`: this node is a follower; the same request goes to the leader (`Location`)", body = ErrorBody, headers(("Location" = String, description = "The leader's same URL"))),
        (status = 400, description = "`bad_request`: the request is malformed", body = ErrorBody),
        (status = 409, description = "`session_expired`: this client's session was evicted; start a new client id", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the server's limit", body = ErrorBody),
        (status = 503, description = "Retry later: `not_leader` (no leader known), `unknown_outcome` (the write may or may not apply), `overloaded` or `transferring` (with `Retry-After`), `unavailable` (the node stopped)", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait (overloaded, transferring)")))
    )
)]
async fn delete_key(
    State(svc): Svc,
    uri: Uri,
    Key(key): Key,
    JsonBody(b): JsonBody<DeleteBody>,
) -> ApiResult {
    let mut cmd = command(OpType::Delete, b.client_id, b.seq)?;
    cmd.key = key;
    write(&svc, &uri, cmd).await
}

#[utoipa::path(
    post,
    path = "/kv/cas",
    tag = "kv",
    request_body = CasBody,
    responses(
        (status = 200, description = "Swapped", body = ApplyResult),
        (status = 202, description = "Async write mode: accepted; its result is at `GET /ops/{op_id}`", body = AcceptedBody),
        (status = 307, description = "`not_leader`: this node is a follower; the same request goes to the leader (`Location`)", body = ErrorBody, headers(("Location" = String, description = "The leader's same URL"))),
        (status = 400, description = "`bad_request`: the request is malformed", body = ErrorBody),
        (status = 409, description = "`cas_failed`: the value was not `expected`; `session_expired`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the server's limit", body = ErrorBody),
        (status = 503, description = "Retry later: `not_leader` (no leader known), `unknown_outcome` (the write may or may not apply), `overloaded` or `transferring` (with `Retry-After`), `unavailable` (the node stopped)", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait (overloaded, transferring)")))
    )
)]
async fn cas(State(svc): Svc, uri: Uri, JsonBody(b): JsonBody<CasBody>) -> ApiResult {
    let mut cmd = command(OpType::Cas, b.client_id, b.seq)?;
    cmd.key = b.key;
    cmd.expected = b.expected;
    cmd.value = b.value;
    write(&svc, &uri, cmd).await
}

#[utoipa::path(
    post,
    path = "/kv/mget",
    tag = "kv",
    params(ReadParams),
    request_body = MGetBody,
    responses(
        (status = 200, description = "The values found (`values`; missing keys are absent)", body = ApplyResult),
        (status = 307, description = "`not_leader`: this node is a follower; the same request goes to the leader (`Location`)", body = ErrorBody, headers(("Location" = String, description = "The leader's same URL"))),
        (status = 400, description = "`bad_request`: the request is malformed", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the server's limit", body = ErrorBody),
        (status = 503, description = "Retry later: `not_leader` (no leader known), `read_timeout` (no quorum confirmed the read), `not_caught_up` (`min_index` not applied in time), `unavailable` (the node stopped)", body = ErrorBody)
    )
)]
async fn mget(
    State(svc): Svc,
    uri: Uri,
    params: Result<Query<ReadParams>, QueryRejection>,
    JsonBody(b): JsonBody<MGetBody>,
) -> ApiResult {
    let opts = read_options(params)?;
    let got = svc.mget(&b.keys, opts).await;
    Ok(reply(got.map_err(|e| ApiError::from_node(e, &uri))?))
}

#[utoipa::path(
    post,
    path = "/kv/mput",
    tag = "kv",
    request_body = MPutBody,
    responses(
        (status = 200, description = "Written: `index` is its log index", body = ApplyResult),
        (status = 202, description = "Async write mode: accepted; its result is at `GET /ops/{op_id}`", body = AcceptedBody),
        (status = 307, description = "`not_leader`: this node is a follower; the same request goes to the leader (`Location`)", body = ErrorBody, headers(("Location" = String, description = "The leader's same URL"))),
        (status = 400, description = "`bad_request`: the request is malformed", body = ErrorBody),
        (status = 409, description = "`session_expired`: this client's session was evicted; start a new client id", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the server's limit", body = ErrorBody),
        (status = 503, description = "Retry later: `not_leader` (no leader known), `unknown_outcome` (the write may or may not apply), `overloaded` or `transferring` (with `Retry-After`), `unavailable` (the node stopped)", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait (overloaded, transferring)")))
    )
)]
async fn mput(State(svc): Svc, uri: Uri, JsonBody(b): JsonBody<MPutBody>) -> ApiResult {
    let mut cmd = command(OpType::BatchPut, b.client_id, b.seq)?;
    cmd.entries = b.entries;
    write(&svc, &uri, cmd).await
}

#[utoipa::path(
    post,
    path = "/kv/mdelete",
    tag = "kv",
    request_body = MDeleteBody,
    responses(
        (status = 200, description = "Deleted: `deleted` counts the keys removed", body = ApplyResult),
        (status = 202, description = "Async write mode: accepted; its result is at `GET /ops/{op_id}`", body = AcceptedBody),
        (status = 307, description = "`not_leader`: this node is a follower; the same request goes to the leader (`Location`)", body = ErrorBody, headers(("Location" = String, description = "The leader's same URL"))),
        (status = 400, description = "`bad_request`: the request is malformed", body = ErrorBody),
        (status = 409, description = "`session_expired`: this client's session was evicted; start a new client id", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the server's limit", body = ErrorBody),
        (status = 503, description = "Retry later: `not_leader` (no leader known), `unknown_outcome` (the write may or may not apply), `overloaded` or `transferring` (with `Retry-After`), `unavailable` (the node stopped)", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait (overloaded, transferring)")))
    )
)]
async fn mdelete(State(svc): Svc, uri: Uri, JsonBody(b): JsonBody<MDeleteBody>) -> ApiResult {
    let mut cmd = command(OpType::BatchDelete, b.client_id, b.seq)?;
    cmd.keys = b.keys;
    write(&svc, &uri, cmd).await
}

#[utoipa::path(
    get,
    path = "/ops/{op_id}",
    tag = "kv",
    params(("op_id" = String, Path, description = "An `op_id` from a 202 answer")),
    responses(
        (status = 200, description = "The async write's state (`ready`, and its `result` once ready)", body = OpResult),
        (status = 404, description = "`not_found`: unknown op, or its result expired", body = ErrorBody)
    )
)]
async fn op_result(
    State(svc): Svc,
    params: Result<RawPathParams, RawPathParamsRejection>,
) -> ApiResult {
    let params = params.map_err(|e| ApiError::bad_request(format!("invalid op id: {e}")))?;
    let id = params
        .iter()
        .find(|(name, _)| *name == "op_id")
        .map(|(_, v)| OpId(v.to_string()))
        .ok_or_else(|| ApiError::bad_request("missing op id"))?;
    match svc.op_result(&id) {
        Some(r) => Ok(write_json(StatusCode::OK, &r)),
        None => Err(ApiError::new(
            "not_found",
            format!("op {id} is unknown or its result has expired"),
        )),
    }
}

/// Hands the leader's leadership over, answering once this node knows the new leader:
/// `{"ok":true,"to":..,"leader_id":..,"leader_addr":..}`.
#[utoipa::path(
    post,
    path = "/cluster/transfer-leader",
    tag = "cluster",
    request_body = Option<TransferBody>,
    responses(
        (status = 200, description = "Handed over: the new leader", body = TransferReply),
        (status = 307, description = "`not_leader`: this node is a follower; the same request goes to the leader (`Location`)", body = ErrorBody, headers(("Location" = String, description = "The leader's same URL"))),
        (status = 400, description = "`bad_request`: the request is malformed", body = ErrorBody),
        (status = 409, description = "`not_voter` (the target does not vote) or `no_candidate` (no other voter)", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the server's limit", body = ErrorBody),
        (status = 503, description = "Retry later: `not_leader` (no leader known), `transfer_abandoned` (the target did not take over), `transferring`", body = ErrorBody)
    )
)]
async fn transfer_leader(
    State(svc): Svc,
    uri: Uri,
    OptionalJsonBody(b): OptionalJsonBody<TransferBody>,
) -> ApiResult {
    let to = b.to.map(NodeId::from);
    let TransferDone { to, leader } = svc
        .transfer_leader(to)
        .await
        .map_err(|e| ApiError::from_node(e, &uri))?;
    Ok(write_json(
        StatusCode::OK,
        &TransferReply {
            ok: true,
            to,
            leader_id: leader.leader_id,
            leader_addr: leader.leader_addr,
        },
    ))
}

async fn empty_key() -> ApiError {
    ApiError::bad_request("key must not be empty")
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new("not_found", format!("no route for {method} {}", uri.path()))
}

/// 405 `method_not_allowed`, with the `Allow` header RFC 9110 requires: the methods the API
/// documents for the path ([`crate::openapi::allowed_methods`]).
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let mut resp = ApiError::new(
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
    .into_response();
    let allowed = crate::openapi::allowed_methods(uri.path()).join(", ");
    if let Ok(v) = axum::http::HeaderValue::from_str(&allowed) {
        resp.headers_mut().insert(axum::http::header::ALLOW, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::header::{CONTENT_TYPE, LOCATION, RETRY_AFTER};
    use raftkv_core::raft::{Index, Role, Status};
    use raftkv_core::{NodeId, WriteMode};
    use serde_json::{Value, json};
    use tower::ServiceExt;

    use super::*;
    use crate::dkv::DkvConfig;
    use crate::node_port::{BoxFut, RaftHandle};
    use crate::shared_sm::SharedSm;

    /// A leader that refuses every proposal with one error.
    struct RefusingLeader(NodeError);

    impl RaftHandle for RefusingLeader {
        fn propose(&self, _cmd: Command) -> BoxFut<'_, ApplyResult> {
            let e = self.0.clone();
            Box::pin(async move { Err(e) })
        }
        fn is_leader(&self) -> bool {
            true
        }
        fn leader_hint(&self) -> LeaderHint {
            LeaderHint {
                leader_id: Some(NodeId::from("n1")),
                leader_addr: Some("127.0.0.1:1".into()),
            }
        }
        fn read_index(&self) -> BoxFut<'_, Index> {
            let e = self.0.clone();
            Box::pin(async move { Err(e) })
        }
        fn read_lease(&self) -> BoxFut<'_, Index> {
            self.read_index()
        }
        fn applied_index(&self) -> BoxFut<'_, Index> {
            Box::pin(async { Ok(0) })
        }
        fn wait_applied(&self, _index: Index, _timeout: Duration) -> BoxFut<'_, bool> {
            Box::pin(async { Ok(true) })
        }
        fn wait_for_leader(&self, _timeout: Duration) -> BoxFut<'_, ()> {
            Box::pin(async { Ok(()) })
        }
        fn transfer_leader(&self, _to: Option<NodeId>) -> BoxFut<'_, TransferDone> {
            let e = self.0.clone();
            Box::pin(async move { Err(e) })
        }
        fn status(&self) -> Status {
            Status {
                id: NodeId::from("n1"),
                role: Role::Leader,
                term: 1,
                voted_for: Some(NodeId::from("n1")),
                leader_id: Some(NodeId::from("n1")),
                commit_index: 0,
                last_applied: 0,
                last_log_index: 0,
                last_log_term: 0,
                snapshot_index: 0,
                election_timer_start: 0,
                election_deadline: 0,
                membership: Default::default(),
                transfer_to: None,
                lease_until: None,
            }
        }
        fn is_stopped(&self) -> bool {
            false
        }
    }

    /// The answer to a `PUT /kv/a` at a leader that refuses it with `e`: status, the
    /// `Retry-After` and `Location` headers, and the JSON body.
    async fn refused_put(e: NodeError) -> (StatusCode, Option<String>, Option<String>, Value) {
        let req = axum::http::Request::put("/kv/a")
            .body(Body::from(r#"{"client_id":"c","seq":1,"value":"v"}"#))
            .unwrap();
        refused(e, req).await
    }

    /// The answer to `req` at a leader that refuses every proposal, read and transfer with `e`.
    async fn refused(
        e: NodeError,
        req: axum::http::Request<Body>,
    ) -> (StatusCode, Option<String>, Option<String>, Value) {
        let resp = refusing_router(e).oneshot(req).await.unwrap();
        let header = |name| {
            resp.headers()
                .get(name)
                .map(|v: &axum::http::HeaderValue| v.to_str().unwrap().to_string())
        };
        let (status, retry_after, location) =
            (resp.status(), header(RETRY_AFTER), header(LOCATION));
        assert_eq!(header(CONTENT_TYPE).as_deref(), Some("application/json"));
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = serde_json::from_slice(&body).unwrap();
        (status, retry_after, location, body)
    }

    /// The client API over a leader that refuses every proposal, read and transfer with `e`.
    fn refusing_router(e: NodeError) -> Router {
        let dkv = DistributedKv::new(
            Arc::new(RefusingLeader(e)),
            SharedSm::new(),
            DkvConfig {
                id: NodeId::from("n1"),
                peers: Default::default(),
                read_policy: ReadPolicy::Stale,
                write_mode: WriteMode::Sync,
                op_ttl: Duration::from_secs(60),
                leader_wait: Duration::from_millis(10),
                min_index_timeout: Duration::from_millis(10),
                apply_wait: Duration::from_millis(10),
            },
        );
        router(dkv, 1 << 20)
    }

    /// A 405 names the methods the path serves in `Allow` (RFC 9110), with the JSON error.
    #[tokio::test]
    async fn a_method_the_path_does_not_serve_is_a_405_with_allow() {
        let cases = [
            ("POST", "/healthz", "GET, HEAD"),
            ("POST", "/kv/a", "DELETE, GET, HEAD, PUT"),
            ("PATCH", "/kv/mput", "DELETE, GET, HEAD, POST, PUT"),
            ("GET", "/cluster/transfer-leader", "POST"),
        ];
        for (method, path, allow) in cases {
            let req = axum::http::Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap();
            let resp = refusing_router(NodeError::Unavailable("x".into()))
                .oneshot(req)
                .await
                .unwrap();
            assert_eq!(
                resp.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            let got = resp.headers().get(axum::http::header::ALLOW);
            assert_eq!(
                got.and_then(|v| v.to_str().ok()),
                Some(allow),
                "{method} {path}"
            );
            let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            let body: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["err_code"], "method_not_allowed", "{method} {path}");
        }
    }

    /// An overloaded leader, and one handing its leadership over (`transferring`).
    #[tokio::test]
    async fn a_leader_refusing_writes_for_now_answers_503_with_retry_after() {
        let cases = [
            NodeError::Overloaded("too many uncommitted bytes".into()),
            NodeError::Transferring("leadership is moving to n2".into()),
        ];
        for e in cases {
            let (code, msg) = (e.code(), e.to_string());
            assert_eq!(
                refused_put(e).await,
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Some("1".to_string()),
                    None,
                    json!({"ok": false, "err_code": code, "err_msg": msg}),
                )
            );
        }
    }

    #[tokio::test]
    async fn a_read_the_leader_could_not_confirm_answers_503_read_timeout() {
        let req = axum::http::Request::get("/kv/a?consistency=readindex")
            .body(Body::empty())
            .unwrap();
        let (status, retry_after, _, body) =
            refused(NodeError::ReadTimeout("no quorum in time".into()), req).await;
        assert_eq!(
            (status, retry_after),
            (StatusCode::SERVICE_UNAVAILABLE, None)
        );
        assert_eq!(body["err_code"], "read_timeout", "{body}");
    }

    #[tokio::test]
    async fn transfer_refusals_answer_409_and_bad_bodies_400() {
        let post = |body: &'static str| {
            axum::http::Request::post("/cluster/transfer-leader")
                .body(Body::from(body))
                .unwrap()
        };
        let no_one = NodeError::TransferRefused(TransferError::NoCandidate);
        let (status, _, _, body) = refused(no_one.clone(), post("")).await;
        assert_eq!(
            (status, &body["err_code"]),
            (StatusCode::CONFLICT, &json!("no_candidate"))
        );
        let (status, _, _, body) = refused(no_one.clone(), post("null")).await;
        assert_eq!(
            (status, &body["err_code"]),
            (StatusCode::CONFLICT, &json!("no_candidate"))
        );
        let (status, _, _, body) = refused(no_one.clone(), post(r#"{"to":"n2"}"#)).await;
        assert_eq!(
            (status, &body["err_code"]),
            (StatusCode::CONFLICT, &json!("no_candidate"))
        );
        for bad in [r#"{"to":5}"#, r#"{"to":""}"#, r#"{"too":"n2"}"#, "nonsense"] {
            let (status, _, _, body) = refused(no_one.clone(), post(bad)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
            assert_eq!(body["err_code"], "bad_request", "{bad}");
        }
    }

    #[tokio::test]
    async fn every_node_error_answers_its_status_and_code_as_json() {
        let no_leader = LeaderHint {
            leader_id: None,
            leader_addr: None,
        };
        let elsewhere = LeaderHint {
            leader_id: Some(NodeId::from("n2")),
            leader_addr: Some("127.0.0.1:2".into()),
        };
        let cases = [
            (NodeError::BadRequest("no".into()), StatusCode::BAD_REQUEST),
            (
                NodeError::NotLeader(no_leader),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                NodeError::NotLeader(elsewhere),
                StatusCode::TEMPORARY_REDIRECT,
            ),
            (
                NodeError::UnknownOutcome("lost".into()),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                NodeError::Unavailable("stopped".into()),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                NodeError::Overloaded("busy".into()),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                NodeError::Transferring("moving to n2".into()),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                NodeError::ReadTimeout("no quorum".into()),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                NodeError::NotCaughtUp("behind".into()),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                NodeError::TransferRefused(TransferError::NotVoter {
                    id: NodeId::from("n9"),
                }),
                StatusCode::CONFLICT,
            ),
            (
                NodeError::TransferRefused(TransferError::NoCandidate),
                StatusCode::CONFLICT,
            ),
            (
                NodeError::TransferAbandoned("n2 did not take over".into()),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
        ];
        for (e, want) in cases {
            let code = e.code();
            let overloaded = matches!(e, NodeError::Overloaded(_) | NodeError::Transferring(_));
            let (status, retry_after, location, body) = refused_put(e).await;
            assert_eq!(status, want, "{code}");
            assert_eq!(body["ok"], false, "{code}");
            assert_eq!(body["err_code"], code);
            assert!(
                body["err_msg"].as_str().is_some_and(|m| !m.is_empty()),
                "{code}"
            );
            assert_eq!(retry_after.is_some(), overloaded, "{code}");
            assert_eq!(
                location.as_deref(),
                (want == StatusCode::TEMPORARY_REDIRECT).then_some("http://127.0.0.1:2/kv/a"),
                "{code}"
            );
        }
    }
}
