//! The Raft routes a node serves: authenticate, decode, hand to the inbox, answer 202 at once.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use raftkv_core::types::NodeId;

use super::auth::{AuthError, PeerAuth, wall_clock_ms};
use super::client::CLIENT_ADDR_HEADER;
use super::stream::listener::OnHello;
use super::wire::Envelope;
use super::{
    APPEND_ENTRIES_PATH, INSTALL_SNAPSHOT_PATH, InboxError, REQUEST_VOTE_PATH, RaftInbox, path_for,
};

/// The router's state: where messages go, and who may send them.
#[derive(Clone)]
struct Routes {
    inbox: Arc<dyn RaftInbox>,
    auth: Arc<PeerAuth>,
    /// The node the routes belong to (`None`: any addressee is taken).
    me: Option<NodeId>,
    /// Told of the client address an authenticated sender gives.
    on_hello: Option<OnHello>,
}

/// The largest body the Raft routes accept: an AppendEntries at its byte budget, or a snapshot
/// chunk (base64 adds a third); kvserver checks that its `--max-append-bytes` and
/// `--snapshot-chunk-bytes` fit.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The three Raft routes, handing every well-formed message to `inbox`. Merge it into the
/// node's router. Bodies are limited to [`DEFAULT_BODY_LIMIT`] (413 beyond); requests are
/// checked by the default [`PeerAuth`] (cluster id only, any addressee).
pub fn router(inbox: Arc<dyn RaftInbox>) -> Router {
    router_with_limit(inbox, DEFAULT_BODY_LIMIT)
}

/// [`router`] with a body limit of `body_limit` bytes.
pub fn router_with_limit(inbox: Arc<dyn RaftInbox>, body_limit: usize) -> Router {
    router_with(inbox, body_limit, Arc::new(PeerAuth::default()), None)
}

/// The Raft routes of node `me`, taking only requests that `auth` accepts: addressed to `me`,
/// from this cluster, and, with a secret, proving it (see [`super::auth`]).
pub fn router_with(
    inbox: Arc<dyn RaftInbox>,
    body_limit: usize,
    auth: Arc<PeerAuth>,
    me: Option<NodeId>,
) -> Router {
    router_learning(inbox, body_limit, auth, me, None)
}

/// [`router_with`], telling `on_hello` the client address each authenticated sender gives in
/// its [`CLIENT_ADDR_HEADER`].
pub fn router_learning(
    inbox: Arc<dyn RaftInbox>,
    body_limit: usize,
    auth: Arc<PeerAuth>,
    me: Option<NodeId>,
    on_hello: Option<OnHello>,
) -> Router {
    let routes = Routes {
        inbox,
        auth,
        me,
        on_hello,
    };
    let route = |path: &'static str| {
        post(
            move |State(r): State<Routes>, headers: HeaderMap, body: Bytes| async move {
                receive(&r, path, &headers, body)
            },
        )
    };
    Router::new()
        .route(REQUEST_VOTE_PATH, route(REQUEST_VOTE_PATH))
        .route(APPEND_ENTRIES_PATH, route(APPEND_ENTRIES_PATH))
        .route(INSTALL_SNAPSHOT_PATH, route(INSTALL_SNAPSHOT_PATH))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(routes)
}

/// Checks, decodes and delivers one envelope that arrived on `path`. Nothing is decoded
/// before the request is authenticated.
fn receive(r: &Routes, path: &'static str, headers: &HeaderMap, body: Bytes) -> Response {
    let sender = match r
        .auth
        .verify(r.me.as_ref(), path, headers, &body, wall_clock_ms())
    {
        Ok(sender) => sender,
        Err(e @ AuthError::Unauthenticated(_)) => {
            return error(StatusCode::UNAUTHORIZED, "unauthenticated", &e.to_string());
        }
        Err(e @ AuthError::Forbidden(_)) => {
            return error(StatusCode::FORBIDDEN, "forbidden", &e.to_string());
        }
    };
    if let Some(on_hello) = &r.on_hello
        && let Some(addr) = headers
            .get(CLIENT_ADDR_HEADER)
            .and_then(|v| v.to_str().ok())
    {
        on_hello(&sender, addr);
    }
    // A busy node (installing a large snapshot) refuses its leader's retries without decoding
    // them: the CPU is the install's.
    if !r.inbox.has_room(body.len()) {
        return refused(InboxError::Full);
    }
    let envelope: Envelope = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_request", &e.to_string()),
    };
    let (from, msg) = envelope.into_parts();
    // The claimed sender of the message is the one the request authenticated.
    if from != sender {
        let why = format!("a message from {from} in a request from {sender}");
        return error(StatusCode::FORBIDDEN, "forbidden", &why);
    }
    if path_for(&msg) != path {
        let why = format!("a {} message does not belong on {path}", msg.kind());
        return error(StatusCode::BAD_REQUEST, "bad_request", &why);
    }
    match r.inbox.deliver(from, msg, body.len()) {
        Ok(()) => (StatusCode::ACCEPTED, axum::Json(json!({"ok": true}))).into_response(),
        Err(e) => refused(e),
    }
}

/// The sender counts this as a failed send; Raft resends what matters.
fn refused(e: InboxError) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        &e.to_string(),
    )
}

/// The project's JSON error body.
fn error(status: StatusCode, code: &str, msg: &str) -> Response {
    let body = json!({"ok": false, "err_code": code, "err_msg": msg});
    (status, axum::Json(body)).into_response()
}
