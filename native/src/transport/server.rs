//! The Raft routes a node serves: decode, hand to the inbox, answer 202 at once.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::wire::Envelope;
use super::{
    APPEND_ENTRIES_PATH, INSTALL_SNAPSHOT_PATH, InboxError, REQUEST_VOTE_PATH, RaftInbox, path_for,
};

/// The router's state: where messages go.
type Inbox = State<Arc<dyn RaftInbox>>;

/// The largest body the Raft routes accept: an AppendEntries at its byte budget, or a snapshot
/// chunk (base64 adds a third); kvserver checks that its `--max-append-bytes` and
/// `--snapshot-chunk-bytes` fit.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The three Raft routes, handing every well-formed message to `inbox`. Merge it into the
/// node's router. Bodies are limited to [`DEFAULT_BODY_LIMIT`] (413 beyond).
pub fn router(inbox: Arc<dyn RaftInbox>) -> Router {
    router_with_limit(inbox, DEFAULT_BODY_LIMIT)
}

/// [`router`] with a body limit of `body_limit` bytes.
pub fn router_with_limit(inbox: Arc<dyn RaftInbox>, body_limit: usize) -> Router {
    Router::new()
        .route(
            REQUEST_VOTE_PATH,
            post(|State(inbox): Inbox, body: Bytes| async move {
                receive(inbox, REQUEST_VOTE_PATH, body)
            }),
        )
        .route(
            APPEND_ENTRIES_PATH,
            post(|State(inbox): Inbox, body: Bytes| async move {
                receive(inbox, APPEND_ENTRIES_PATH, body)
            }),
        )
        .route(
            INSTALL_SNAPSHOT_PATH,
            post(|State(inbox): Inbox, body: Bytes| async move {
                receive(inbox, INSTALL_SNAPSHOT_PATH, body)
            }),
        )
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(inbox)
}

/// Decodes one envelope that arrived on `path` and delivers it.
fn receive(inbox: Arc<dyn RaftInbox>, path: &'static str, body: Bytes) -> Response {
    // A busy node (installing a large snapshot) refuses its leader's retries without decoding
    // them: the CPU is the install's.
    if !inbox.has_room(body.len()) {
        return refused(InboxError::Full);
    }
    let envelope: Envelope = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_request", &e.to_string()),
    };
    let (from, msg) = envelope.into_parts();
    if path_for(&msg) != path {
        let why = format!("a {} message does not belong on {path}", msg.kind());
        return error(StatusCode::BAD_REQUEST, "bad_request", &why);
    }
    match inbox.deliver(from, msg, body.len()) {
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
